/* Config readers and request-text parsing shared by the gateway and the test kit (plugin_read.h). */
#include "plugin_read.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ynode.h"

#define YN(n) ((const struct lintel_ynode *)(n))

static struct lintel_str str_of(const char *p, size_t n)
{
    struct lintel_str s = {p, p ? n : 0};
    return s;
}

enum lintel_cfg_type lintel_cfg_type(const lintel_cfg *n)
{
    if (!n)
        return LINTEL_CFG_NONE;
    switch (YN(n)->type) {
    case LINTEL_YNODE_SCALAR:
        return LINTEL_CFG_SCALAR;
    case LINTEL_YNODE_SEQ:
        return LINTEL_CFG_LIST;
    case LINTEL_YNODE_MAP:
        return LINTEL_CFG_MAP;
    }
    return LINTEL_CFG_NONE;
}

const lintel_cfg *lintel_cfg_get(const lintel_cfg *map, const char *key)
{
    return map && key ? (const lintel_cfg *)lintel_ynode_get(YN(map), key) : NULL;
}

size_t lintel_cfg_len(const lintel_cfg *n)
{
    return n && YN(n)->type != LINTEL_YNODE_SCALAR ? YN(n)->len : 0;
}

const lintel_cfg *lintel_cfg_at(const lintel_cfg *n, size_t i)
{
    return n && YN(n)->type != LINTEL_YNODE_SCALAR && i < YN(n)->len
               ? (const lintel_cfg *)YN(n)->items[i]
               : NULL;
}

const char *lintel_cfg_key_at(const lintel_cfg *n, size_t i)
{
    return n && YN(n)->type == LINTEL_YNODE_MAP && i < YN(n)->len ? YN(n)->keys[i]->scalar : NULL;
}

const char *lintel_cfg_str(const lintel_cfg *n)
{
    return n && YN(n)->type == LINTEL_YNODE_SCALAR ? YN(n)->scalar : NULL;
}

int lintel_cfg_int(const lintel_cfg *n, int64_t *out)
{
    const char *s = lintel_cfg_str(n);
    if (!s || !((*s >= '0' && *s <= '9') || (*s == '-' && s[1] >= '0' && s[1] <= '9')))
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = (int64_t)v;
    return 0;
}

int lintel_cfg_bool(const lintel_cfg *n, int *out)
{
    const char *s = lintel_cfg_str(n);
    if (s && strcmp(s, "true") == 0)
        *out = 1;
    else if (s && strcmp(s, "false") == 0)
        *out = 0;
    else
        return -1;
    return 0;
}

int lintel_cfg_duration_ms(const lintel_cfg *n, uint64_t *out)
{
    const char *s = lintel_cfg_str(n);
    return s ? lintel_parse_duration_ms(s, out) : -1;
}

int lintel_cfg_size(const lintel_cfg *n, uint64_t *out)
{
    const char *s = lintel_cfg_str(n);
    return s ? lintel_parse_size(s, out) : -1;
}

struct lintel_str lintel_query_arg(const char *q, size_t qlen, const char *name)
{
    if (!q || !name)
        return str_of(NULL, 0);
    size_t nlen = strlen(name);
    const char *end = q + qlen;
    while (q) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - q) >= nlen && memcmp(q, name, nlen) == 0 &&
            (q + nlen == stop || q[nlen] == '=')) {
            const char *v = q + nlen == stop ? stop : q + nlen + 1;
            return str_of(v, (size_t)(stop - v));
        }
        q = amp ? amp + 1 : NULL;
    }
    return str_of(NULL, 0);
}

struct lintel_str lintel_cookie_in(const char *value, size_t len, const char *name)
{
    if (!value || !name)
        return str_of(NULL, 0);
    size_t nlen = strlen(name);
    const char *p = value, *end = value + len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ';'))
            p++;
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi ? semi : end;
        if ((size_t)(stop - p) > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=')
            return str_of(p + nlen + 1, (size_t)(stop - p) - nlen - 1);
        p = stop;
    }
    return str_of(NULL, 0);
}
