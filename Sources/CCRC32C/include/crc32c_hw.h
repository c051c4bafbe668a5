/* CRC-32C with the CPU's crc32 instruction (SSE4.2 on x86-64), for
 * LuigiCore's CRC32C. Internal: not part of the
 * C ABI in luigi.h (hence no luigi_ prefix: libluigi.so does not export it). */
#ifndef CRC32C_HW_H
#define CRC32C_HW_H

#include <stddef.h>
#include <stdint.h>

/* 1 when this CPU has the instruction, else 0 (then never call lu_crc32c_hw). */
int lu_crc32c_hw_available(void);

/* Continues a CRC-32C over `len` bytes: `crc` is the running register
 * (start with 0xFFFFFFFF, invert the result at the end). */
uint32_t lu_crc32c_hw(uint32_t crc, const void *data, size_t len);

#endif
