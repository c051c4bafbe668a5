#include "crc32c_hw.h"

#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>

int lu_crc32c_hw_available(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2) != 0;
}

/* Compiled for SSE4.2 only here; callers check lu_crc32c_hw_available. */
__attribute__((target("sse4.2"))) uint32_t lu_crc32c_hw(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t c = crc;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t word;
        memcpy(&word, p, 8); /* unaligned load */
        c = _mm_crc32_u64(c, word);
    }
    uint32_t c32 = (uint32_t)c;
    for (; len > 0; p++, len--) c32 = _mm_crc32_u8(c32, *p);
    return c32;
}

#else /* other CPUs: the table-driven CRC in Swift (only x86-64 is built and tested here) */

int lu_crc32c_hw_available(void) { return 0; }

uint32_t lu_crc32c_hw(uint32_t crc, const void *data, size_t len)
{
    (void)data;
    (void)len;
    return crc;
}

#endif
