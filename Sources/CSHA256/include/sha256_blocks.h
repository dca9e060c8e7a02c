#ifndef SHA256_BLOCKS_H
#define SHA256_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

/// Runs the SHA-256 compression function (FIPS 180-4, section 6.2.2) over `blocks` consecutive 64-byte blocks of
/// `data`, updating the eight state words in place. Uses the CPU's SHA extensions when it has them.
void sha256_blocks(uint32_t state[8], const uint8_t *data, size_t blocks);

/// The same function in plain C, for CPUs without the SHA extensions (and for tests that compare the two).
void sha256_blocks_portable(uint32_t state[8], const uint8_t *data, size_t blocks);

/// 1 when this CPU has the x86 SHA extensions, so that `sha256_blocks_accelerated` may be called.
int sha256_accelerated_available(void);

/// The same function on the x86 SHA extensions; call it only when `sha256_accelerated_available()` is 1.
void sha256_blocks_accelerated(uint32_t state[8], const uint8_t *data, size_t blocks);

#endif
