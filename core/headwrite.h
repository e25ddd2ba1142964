/* Writing HTTP heads without printf: the caller computes an upper bound of the head's size,
 * reserves that much once (evbuffer_reserve_space, or the arena) and writes into it with these.
 * Nothing here checks the bound: the caller's sum must cover every byte it writes. */
#ifndef LINTEL_HEADWRITE_H
#define LINTEL_HEADWRITE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct lintel_hw {
    char *p; /* where the next byte goes */
};

/* The most lintel_hw_u64 writes. */
#define LINTEL_HW_U64_MAX 20

static inline void lintel_hw_put(struct lintel_hw *w, const void *s, size_t n)
{
    memcpy(w->p, s, n);
    w->p += n;
}

/* A string literal (its size is known at compile time). */
#define lintel_hw_lit(w, s) lintel_hw_put((w), (s), sizeof(s) - 1)

/* v in decimal. */
static inline void lintel_hw_u64(struct lintel_hw *w, uint64_t v)
{
    char tmp[LINTEL_HW_U64_MAX];
    size_t n = 0;
    do {
        tmp[sizeof(tmp) - ++n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    lintel_hw_put(w, tmp + sizeof(tmp) - n, n);
}

/* The low `digits` hex digits of v, lower case, zero-padded (digits <= 16). */
static inline void lintel_hw_hex(struct lintel_hw *w, uint64_t v, unsigned digits)
{
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = digits; i-- > 0; v >>= 4)
        w->p[i] = hex[v & 15];
    w->p += digits;
}

/* "name: value\r\n" (name_len + value_len + 4 bytes). */
static inline void lintel_hw_header(struct lintel_hw *w, const char *name, size_t name_len,
                                    const char *value, size_t value_len)
{
    lintel_hw_put(w, name, name_len);
    lintel_hw_lit(w, ": ");
    lintel_hw_put(w, value, value_len);
    lintel_hw_lit(w, "\r\n");
}

#endif
