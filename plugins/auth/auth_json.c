/* auth: the little JSON a JWT needs: top-level members of one object, string and number values.
 * Strict (RFC 8259): a token whose header or payload is not well-formed JSON is refused. */
#include <stdlib.h>
#include <string.h>

#include "auth-internal.h"

#define JSON_DEPTH_MAX 32

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static int hex4(const char *p, const char *end, unsigned *out)
{
    if (end - p < 4)
        return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v << 4 | (unsigned)d;
    }
    *out = v;
    return 0;
}

/* p at '"': the end of the string (past the closing quote), or NULL. Sets *escaped when it holds
 * a backslash. */
static const char *skip_string(const char *p, const char *end, int *escaped)
{
    for (p++; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c < 0x20)
            return NULL;
        if (c == '\\') {
            *escaped = 1;
            if (++p >= end)
                return NULL;
            unsigned u;
            if (*p == 'u') {
                if (hex4(p + 1, end, &u) < 0)
                    return NULL;
                p += 4;
            } else if (!*p || !strchr("\"\\/bfnrt", *p)) {
                return NULL;
            }
        }
    }
    return NULL;
}

static const char *skip_digits(const char *p, const char *end)
{
    const char *s = p;
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    return p > s ? p : NULL;
}

static const char *skip_number(const char *p, const char *end)
{
    if (p < end && *p == '-')
        p++;
    if (p < end && *p == '0')
        p++;
    else if (!(p = skip_digits(p, end)))
        return NULL;
    if (p < end && *p == '.' && !(p = skip_digits(p + 1, end)))
        return NULL;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (!(p = skip_digits(p, end)))
            return NULL;
    }
    return p;
}

static const char *skip_value(const char *p, const char *end, int depth);

/* p at '{' or '[': past the matching close, or NULL. */
static const char *skip_container(const char *p, const char *end, int depth)
{
    char close = *p == '{' ? '}' : ']';
    int object = *p == '{', escaped = 0;
    if (depth >= JSON_DEPTH_MAX)
        return NULL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == close)
        return p + 1;
    for (;;) {
        if (object) {
            if (p >= end || *p != '"' || !(p = skip_string(p, end, &escaped)))
                return NULL;
            p = skip_ws(p, end);
            if (p >= end || *p != ':')
                return NULL;
            p = skip_ws(p + 1, end);
        }
        if (!(p = skip_value(p, end, depth + 1)))
            return NULL;
        p = skip_ws(p, end);
        if (p < end && *p == ',')
            p = skip_ws(p + 1, end);
        else if (p < end && *p == close)
            return p + 1;
        else
            return NULL;
    }
}

static const char *skip_value(const char *p, const char *end, int depth)
{
    int escaped = 0;
    if (p >= end)
        return NULL;
    switch (*p) {
    case '{':
    case '[':
        return skip_container(p, end, depth);
    case '"':
        return skip_string(p, end, &escaped);
    case 't':
        return end - p >= 4 && memcmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f':
        return end - p >= 5 && memcmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n':
        return end - p >= 4 && memcmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default:
        return skip_number(p, end);
    }
}

int auth_json_members(const char *json, size_t len, const char *const *names, size_t n,
                      struct lintel_str *out)
{
    const char *p = json, *end = json + len;
    for (size_t i = 0; i < n; i++)
        out[i] = (struct lintel_str){NULL, 0};
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return -1;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}')
        return skip_ws(p + 1, end) == end ? 0 : -1;
    for (;;) {
        int escaped = 0;
        const char *key = p;
        if (p >= end || *p != '"' || !(p = skip_string(p, end, &escaped)) || escaped)
            return -1; /* an escaped name could spell a wanted one in a second way */
        size_t key_len = (size_t)(p - key) - 2;
        p = skip_ws(p, end);
        if (p >= end || *p != ':')
            return -1;
        const char *val = skip_ws(p + 1, end);
        if (!(p = skip_value(val, end, 1)))
            return -1;
        for (size_t i = 0; i < n; i++) {
            if (strlen(names[i]) != key_len || memcmp(names[i], key + 1, key_len) != 0)
                continue;
            if (out[i].ptr)
                return -1; /* a duplicate: which one counts would depend on the reader */
            out[i] = (struct lintel_str){val, (size_t)(p - val)};
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',')
            p = skip_ws(p + 1, end);
        else if (p < end && *p == '}')
            return skip_ws(p + 1, end) == end ? 0 : -1;
        else
            return -1;
    }
}

/* Writes code point u as UTF-8 at out[*o]; -1 when it does not fit. */
static int put_utf8(char *out, size_t cap, size_t *o, unsigned long u)
{
    unsigned char b[4];
    size_t n;
    if (u < 0x80) {
        b[0] = (unsigned char)u;
        n = 1;
    } else if (u < 0x800) {
        b[0] = (unsigned char)(0xc0 | u >> 6);
        b[1] = (unsigned char)(0x80 | (u & 0x3f));
        n = 2;
    } else if (u < 0x10000) {
        b[0] = (unsigned char)(0xe0 | u >> 12);
        b[1] = (unsigned char)(0x80 | (u >> 6 & 0x3f));
        b[2] = (unsigned char)(0x80 | (u & 0x3f));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xf0 | u >> 18);
        b[1] = (unsigned char)(0x80 | (u >> 12 & 0x3f));
        b[2] = (unsigned char)(0x80 | (u >> 6 & 0x3f));
        b[3] = (unsigned char)(0x80 | (u & 0x3f));
        n = 4;
    }
    if (cap - *o < n)
        return -1;
    memcpy(out + *o, b, n);
    *o += n;
    return 0;
}

long auth_json_string(struct lintel_str raw, char *out, size_t cap)
{
    int escaped = 0;
    if (!raw.ptr || raw.len < 2 || *raw.ptr != '"')
        return -1;
    const char *p = raw.ptr, *end = raw.ptr + raw.len;
    if (skip_string(p, end, &escaped) != end)
        return -1;
    size_t o = 0;
    for (p++, end--; p < end; p++) {
        unsigned long u = (unsigned char)*p;
        if (*p == '\\') {
            p++;
            static const char from[] = "bfnrt", to[] = "\b\f\n\r\t";
            const char *e = strchr(from, *p); /* skip_string checked every escape */
            if (*p != 'u') {
                u = e ? (unsigned char)to[e - from] : (unsigned char)*p; /* or \" \\ \/ */
            } else {
                unsigned hi, lo;
                hex4(p + 1, end, &hi);
                p += 4;
                u = hi;
                if (hi >= 0xd800 && hi < 0xdc00 && end - p > 6 && p[1] == '\\' && p[2] == 'u' &&
                    hex4(p + 3, end, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
                    u = 0x10000 + ((unsigned long)(hi - 0xd800) << 10) + (lo - 0xdc00);
                    p += 6;
                } else if (hi >= 0xd800 && hi < 0xe000) {
                    u = 0xfffd; /* a lone surrogate */
                }
            }
            if (put_utf8(out, cap, &o, u) < 0)
                return -1;
            continue;
        }
        if (o >= cap)
            return -1;
        out[o++] = (char)u;
    }
    return (long)o;
}

int auth_json_seconds(struct lintel_str raw, int64_t *out)
{
    char buf[64];
    if (!raw.ptr || raw.len == 0 || raw.len >= sizeof(buf) ||
        skip_number(raw.ptr, raw.ptr + raw.len) != raw.ptr + raw.len)
        return -1;
    memcpy(buf, raw.ptr, raw.len);
    buf[raw.len] = '\0';
    double v = strtod(buf, NULL); /* the grammar was checked: strtod reads all of it */
    if (!(v >= -9.2e18 && v <= 9.2e18))
        return -1;
    int64_t s = (int64_t)v; /* toward zero; the claims want toward minus infinity */
    *out = (double)s > v ? s - 1 : s;
    return 0;
}
