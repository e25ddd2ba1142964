/* Text checks for plugins, as lintel applies them: RFC 9110 tokens (header names, methods).
 * static inline, so using them adds nothing to the ABI. Thread: any. */
#ifndef LINTEL_TEXT_H
#define LINTEL_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* RFC 9110 tchar: a letter, a digit or one of !#$%&'*+-.^_`|~ */
static inline bool lintel_is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Whether s[0..len) is a token: at least one tchar and nothing else. */
static inline bool lintel_is_token(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!lintel_is_tchar((unsigned char)s[i]))
            return false;
    return true;
}

/* A Content-Length value s[0..len) of at most max: true with *out set; false when it is empty,
 * holds anything but digits or exceeds max (no overflow: digits stop being read past max). */
static inline bool lintel_parse_length(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t n = 0;
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || n > max)
            return false;
        n = n * 10 + (uint64_t)(s[i] - '0');
    }
    *out = n;
    return n <= max;
}

#ifdef __cplusplus
}
#endif

#endif
