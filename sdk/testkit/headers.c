/* Header lists of the fake request and response (also the access record), and the checks
 * lintel applies to what plugins write into them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "testkit-internal.h"

void *lk_must(void *p)
{
    if (!p) {
        fputs("lintel testkit: out of memory\n", stderr);
        abort();
    }
    return p;
}

char *lk_strdup(struct lintel_arena *a, const char *s, size_t len)
{
    return lintel_arena_strndup(a, s ? s : "", s ? len : 0);
}

/* RFC 9110 token characters. */
static bool tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

bool lk_token_ok(const char *s, size_t len)
{
    if (!s || len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!tchar((unsigned char)s[i]))
            return false;
    return true;
}

bool lk_header_name_ok(const char *name)
{
    return name && lk_token_ok(name, strlen(name));
}

/* Field values: visible characters, spaces, tabs and obs-text; no CR, LF, NUL or other controls
 * (they would split the header on the wire). */
bool lk_header_value_ok(const char *value, size_t len)
{
    if (!value && len)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

const struct lk_header *lk_headers_find(const struct lk_headers *h, const char *name)
{
    for (const struct lk_header *e = h->head; e; e = e->next)
        if (!e->deleted && strcasecmp(e->name, name) == 0)
            return e;
    return NULL;
}

int lk_headers_add(struct lintel_arena *a, struct lk_headers *h, const char *name,
                   const char *value, size_t len, bool deleted)
{
    struct lk_header *e = lintel_arena_calloc(a, sizeof(*e));
    if (!e || !(e->name = lk_strdup(a, name, strlen(name))) ||
        !(e->value = lk_strdup(a, value, len)))
        return -1;
    e->value_len = value ? len : 0;
    e->deleted = deleted;
    struct lk_header **tail = &h->head;
    while (*tail)
        tail = &(*tail)->next;
    *tail = e;
    return 0;
}

void lk_headers_remove(struct lk_headers *h, const char *name)
{
    for (struct lk_header *e = h->head; e; e = e->next)
        if (strcasecmp(e->name, name) == 0)
            e->deleted = true;
}

int lk_headers_at(const struct lk_headers *h, size_t i, struct lintel_str *name,
                  struct lintel_str *value)
{
    for (const struct lk_header *e = h->head; e; e = e->next) {
        if (e->deleted || i-- > 0)
            continue;
        if (name)
            *name = (struct lintel_str){e->name, strlen(e->name)};
        if (value)
            *value = (struct lintel_str){e->value, e->value_len};
        return 0;
    }
    return -1;
}
