/* One worker's store of last good responses: a chained hash table for lookups and a recency
 * list for eviction (least recently served or captured goes first), bounded by entry count and
 * bytes. Each worker has its own, touched by no other thread, so nothing here locks. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lintel/hash.h>

#include "fallback.h"

/* What an entry costs besides its key, headers and body (the struct, the allocator's share). */
#define ENTRY_OVERHEAD 64

uint64_t fb_hash(const void *key, size_t len)
{
    return lintel_fnv1a64(LINTEL_FNV1A64_OFFSET, key, len);
}

int fb_store_init(struct fb_store *s, size_t max_entries, uint64_t max_bytes)
{
    size_t n = 16;
    while (n < max_entries && n < ((size_t)1 << 24))
        n <<= 1;
    memset(s, 0, sizeof(*s));
    s->buckets = calloc(n, sizeof(*s->buckets));
    if (!s->buckets)
        return -1;
    s->mask = n - 1;
    s->max_entries = max_entries;
    s->max_bytes = max_bytes;
    return 0;
}

void fb_entry_free(struct fb_entry *e)
{
    if (!e)
        return;
    free(e->body);
    free(e);
}

void fb_store_free(struct fb_store *s)
{
    struct fb_entry *e = s->head;
    while (e) {
        struct fb_entry *next = e->next;
        fb_entry_free(e);
        e = next;
    }
    free(s->buckets);
    memset(s, 0, sizeof(*s));
}

static void list_unlink(struct fb_store *s, struct fb_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        s->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        s->tail = e->prev;
    e->prev = e->next = NULL;
}

static void list_push_front(struct fb_store *s, struct fb_entry *e)
{
    e->prev = NULL;
    e->next = s->head;
    if (s->head)
        s->head->prev = e;
    else
        s->tail = e;
    s->head = e;
}

struct fb_entry *fb_store_get(struct fb_store *s, const char *key, size_t len, uint64_t hash,
                              bool touch)
{
    if (!s->buckets)
        return NULL;
    for (struct fb_entry *e = s->buckets[hash & s->mask]; e; e = e->hnext) {
        if (e->hash != hash || e->key_len != len || memcmp(e->key, key, len) != 0)
            continue;
        if (touch && s->head != e) {
            list_unlink(s, e);
            list_push_front(s, e);
        }
        return e;
    }
    return NULL;
}

void fb_store_remove(struct fb_store *s, struct fb_entry *e)
{
    struct fb_entry **pp = &s->buckets[e->hash & s->mask];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    list_unlink(s, e);
    s->count--;
    s->bytes -= e->bytes;
    fb_entry_free(e);
}

/* Hop-by-hop headers (RFC 9110 7.6.1) and the framing ones (the host frames the replayed body
 * itself), the ones the plugin sets when it serves (Age, X-Fallback) and the request's id (the
 * host sends the new request's). */
static bool is_framing(struct lintel_str name)
{
    static const char *const names[] = {
        "Connection", "Keep-Alive",        "Proxy-Connection", "TE",
        "Trailer",    "Transfer-Encoding", "Upgrade",          "Content-Length",
        "Age",        "X-Fallback",        "X-Request-Id",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == name.len && strncasecmp(names[i], name.ptr, name.len) == 0)
            return true;
    return false;
}

/* Whether name is listed in a Connection header of the response (a hop-by-hop header the
 * upstream declared). */
static bool in_connection(const struct lintel_host_api *h, lintel_req *r, struct lintel_str name)
{
    struct lintel_str n, v;
    for (size_t i = 0; h->resp_header_at(r, i, &n, &v) == 0; i++) {
        if (n.len != 10 || strncasecmp(n.ptr, "Connection", 10) != 0)
            continue;
        size_t p = 0;
        while (p < v.len) {
            while (p < v.len && (v.ptr[p] == ' ' || v.ptr[p] == '\t' || v.ptr[p] == ','))
                p++;
            size_t start = p;
            while (p < v.len && v.ptr[p] != ',' && v.ptr[p] != ' ' && v.ptr[p] != '\t')
                p++;
            if (p - start == name.len && strncasecmp(v.ptr + start, name.ptr, name.len) == 0)
                return true;
        }
    }
    return false;
}

static bool is_content_type(struct lintel_str name)
{
    return name.len == 12 && strncasecmp(name.ptr, "Content-Type", 12) == 0;
}

struct fb_entry *fb_entry_new(const struct lintel_host_api *h, lintel_req *r, const char *key,
                              size_t key_len, uint64_t hash,
                              bool (*skip)(const void *arg, struct lintel_str name),
                              const void *arg)
{
    struct lintel_str n, v;
    size_t room = 0, kept = 0;
    struct lintel_str type = {NULL, 0};
    /* Two passes over the headers: size, then copy, so the entry is one allocation. */
    for (size_t i = 0; h->resp_header_at(r, i, &n, &v) == 0; i++) {
        if (is_content_type(n)) {
            if (!type.ptr)
                type = v;
            continue;
        }
        if (is_framing(n) || skip(arg, n) || in_connection(h, r, n))
            continue;
        room += n.len + v.len + 2;
        kept++;
    }
    size_t type_room = type.ptr ? type.len + 1 : 0;
    struct fb_entry *e = malloc(sizeof(*e) + key_len + room + type_room);
    if (!e)
        return NULL;
    memset(e, 0, sizeof(*e));
    char *p = (char *)(e + 1);
    memcpy(p, key, key_len);
    e->key = p;
    e->key_len = key_len;
    e->hash = hash;
    p += key_len;
    e->headers = p;
    for (size_t i = 0; kept && h->resp_header_at(r, i, &n, &v) == 0; i++) {
        if (is_content_type(n) || is_framing(n) || skip(arg, n) || in_connection(h, r, n))
            continue;
        memcpy(p, n.ptr, n.len);
        p[n.len] = '\0';
        p += n.len + 1;
        memcpy(p, v.ptr, v.len);
        p[v.len] = '\0';
        p += v.len + 1;
        if (++e->nheaders == kept)
            break;
    }
    if (type.ptr) {
        memcpy(p, type.ptr, type.len);
        p[type.len] = '\0';
        e->content_type = p;
    }
    e->bytes = ENTRY_OVERHEAD + sizeof(*e) + key_len + room + type_room;
    return e;
}

void fb_store_put(struct fb_store *s, struct fb_entry *e, char *body, size_t body_len,
                  uint64_t stored_ms)
{
    e->body = body;
    e->body_len = body_len;
    e->bytes += body_len;
    e->stored_ms = stored_ms;
    if (!s->buckets || e->bytes > s->max_bytes) {
        fb_entry_free(e);
        return;
    }
    struct fb_entry *old = fb_store_get(s, e->key, e->key_len, e->hash, false);
    if (old)
        fb_store_remove(s, old);
    struct fb_entry **bucket = &s->buckets[e->hash & s->mask];
    e->hnext = *bucket;
    *bucket = e;
    list_push_front(s, e);
    s->count++;
    s->bytes += e->bytes;
    while (s->tail != e && (s->count > s->max_entries || s->bytes > s->max_bytes))
        fb_store_remove(s, s->tail);
}
