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

#elif defined(__aarch64__) && defined(__linux__)
#include <arm_acle.h>
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif

int lu_crc32c_hw_available(void)
{
    return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0;
}

__attribute__((target("crc"))) uint32_t lu_crc32c_hw(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        crc = __crc32cd(crc, word);
    }
    for (; len > 0; p++, len--) crc = __crc32cb(crc, *p);
    return crc;
}

#else

int lu_crc32c_hw_available(void) { return 0; }

uint32_t lu_crc32c_hw(uint32_t crc, const void *data, size_t len)
{
    (void)data;
    (void)len;
    return crc;
}

#endif
