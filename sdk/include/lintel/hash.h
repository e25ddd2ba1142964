/* Hashing helpers for plugins: FNV-1a 64 and a 64-bit finaliser. They are static inline, so
 * using them adds nothing to the ABI. Results are stable across builds and releases: plugins
 * use them for sticky buckets (abtest, canary) and sampling (mirror) that users can predict. */
#ifndef LINTEL_HASH_H
#define LINTEL_HASH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LINTEL_FNV1A64_OFFSET UINT64_C(0xcbf29ce484222325)

/* FNV-1a 64 of p[0..n), continuing from h (LINTEL_FNV1A64_OFFSET to start). */
static inline uint64_t lintel_fnv1a64(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * UINT64_C(0x100000001b3);
    return h;
}

/* Spreads every bit of h over the others (MurmurHash3's 64-bit finaliser): FNV-1a alone leaves
 * the low bits weakly mixed for keys that differ only in their last characters. */
static inline uint64_t lintel_mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    return h;
}

#ifdef __cplusplus
}
#endif

#endif
