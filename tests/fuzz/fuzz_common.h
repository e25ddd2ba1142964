/* Shared by the libFuzzer targets in tests/fuzz: invariant checks that abort with a message (so
 * that libFuzzer records the input as a crash), a small deterministic PRNG for split points, and
 * the head serialisation used by the round-trip checks. Header-only: each target is one file. */
#ifndef LINTEL_FUZZ_COMMON_H
#define LINTEL_FUZZ_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "http1.h"

/* An invariant failed: print what and where, then abort (libFuzzer saves the input). */
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond);           \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* xorshift64*: split points and chunk sizes derived from a seed the input carries. */
static inline uint64_t fuzz_rand(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* Writes a parsed head back as bytes the way a proxy would: first line, every header as
 * "Name: value", the empty line. Requests keep their raw request-target. */
static inline void fuzz_head_serialize(const struct lintel_head *h, struct evbuffer *out)
{
    if (h->is_request)
        evbuffer_add_printf(out, "%s %s HTTP/%u.%u\r\n", h->method_str, h->target,
                            (unsigned)h->http_major, (unsigned)h->http_minor);
    else if (h->reason && h->reason[0])
        evbuffer_add_printf(out, "HTTP/%u.%u %03d %s\r\n", (unsigned)h->http_major,
                            (unsigned)h->http_minor, h->status, h->reason);
    else
        evbuffer_add_printf(out, "HTTP/%u.%u %03d\r\n", (unsigned)h->http_major,
                            (unsigned)h->http_minor, h->status);
    for (size_t i = 0; i < h->headers.n; i++) {
        const struct lintel_header *x = &h->headers.v[i];
        evbuffer_add(out, x->name, x->name_len);
        evbuffer_add(out, ": ", 2);
        evbuffer_add(out, x->value, x->value_len);
        evbuffer_add(out, "\r\n", 2);
    }
    evbuffer_add(out, "\r\n", 2);
}

static inline bool fuzz_str_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (!a || !b)
        return a == b;
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* Whether two buffers hold the same bytes (an empty buffer's pullup is NULL). */
static inline bool fuzz_evbuf_eq(struct evbuffer *a, struct evbuffer *b)
{
    size_t n = evbuffer_get_length(a);
    if (n != evbuffer_get_length(b))
        return false;
    return n == 0 || memcmp(evbuffer_pullup(a, -1), evbuffer_pullup(b, -1), n) == 0;
}

/* Checks what lintel promises about any head it accepted. */
static inline void fuzz_head_check_accepted(const struct lintel_head *h)
{
    for (size_t i = 0; i < h->headers.n; i++) {
        const struct lintel_header *x = &h->headers.v[i];
        FUZZ_CHECK(x->name_len > 0, "empty header name accepted");
        FUZZ_CHECK(strlen(x->name) == x->name_len, "header name with NUL or wrong length");
        FUZZ_CHECK(strlen(x->value) == x->value_len, "header value with NUL or wrong length");
        for (uint32_t j = 0; j < x->name_len; j++)
            FUZZ_CHECK(lintel_http1_is_tchar((unsigned char)x->name[j]), "header %zu name byte %u",
                       i, j);
        for (uint32_t j = 0; j < x->value_len; j++)
            FUZZ_CHECK(lintel_http1_is_field_char((unsigned char)x->value[j]),
                       "header %zu value byte %u is 0x%02x", i, j, (unsigned char)x->value[j]);
        if (x->value_len) {
            FUZZ_CHECK(x->value[0] != ' ' && x->value[0] != '\t', "leading OWS kept");
            FUZZ_CHECK(x->value[x->value_len - 1] != ' ' && x->value[x->value_len - 1] != '\t',
                       "trailing OWS kept");
        }
        /* Framing and routing headers are never made hop-by-hop (smuggling by Connection). */
        if (!strcasecmp(x->name, "Host") || !strcasecmp(x->name, "Content-Length") ||
            !strcasecmp(x->name, "Transfer-Encoding"))
            FUZZ_CHECK(!(x->flags & LINTEL_HDR_HOP), "%s flagged hop-by-hop", x->name);
    }
    FUZZ_CHECK(h->http_major == 1 && h->http_minor <= 1, "version %u.%u accepted", h->http_major,
               h->http_minor);
    FUZZ_CHECK(lintel_headers_get(&h->headers, "Content-Length", 14) == NULL ||
                   lintel_headers_get(&h->headers, "Transfer-Encoding", 17) == NULL,
               "both Content-Length and Transfer-Encoding accepted");
    if (h->is_request) {
        FUZZ_CHECK(h->method >= 0, "request without a method number");
        FUZZ_CHECK(h->path && strlen(h->path) == h->path_len, "path length");
        FUZZ_CHECK(!h->query || strlen(h->query) == h->query_len, "query length");
        FUZZ_CHECK(h->path_len > 0, "empty path");
        FUZZ_CHECK(h->path[0] == '/' || (h->path[0] == '*' && h->path_len == 1), "path '%s'",
                   h->path);
        FUZZ_CHECK(h->http_minor == 0 || h->host, "HTTP/1.1 request without a host");
        FUZZ_CHECK(h->body != LINTEL_BODY_CLOSE, "request framed by close");
    } else {
        FUZZ_CHECK(h->status >= 100 && h->status <= 999, "status %d", h->status);
        if (h->status < 200 || h->status == 204 || h->status == 304)
            FUZZ_CHECK(h->body == LINTEL_BODY_NONE, "status %d with a body", h->status);
    }
}

/* Two parses of the same message must agree on everything a hop acts on. */
static inline void fuzz_head_compare(const struct lintel_head *a, const struct lintel_head *b)
{
    FUZZ_CHECK(a->is_request == b->is_request, "kind");
    FUZZ_CHECK(a->http_major == b->http_major && a->http_minor == b->http_minor, "version");
    if (a->is_request) {
        FUZZ_CHECK(a->method == b->method && strcmp(a->method_str, b->method_str) == 0,
                   "method %s / %s", a->method_str, b->method_str);
        FUZZ_CHECK(fuzz_str_eq(a->target, a->target_len, b->target, b->target_len), "target");
        FUZZ_CHECK(fuzz_str_eq(a->path, a->path_len, b->path, b->path_len), "path");
        FUZZ_CHECK(fuzz_str_eq(a->query, a->query_len, b->query, b->query_len), "query");
        FUZZ_CHECK(fuzz_str_eq(a->host, a->host_len, b->host, b->host_len), "host");
        FUZZ_CHECK(a->expect_continue == b->expect_continue, "expect");
    } else {
        FUZZ_CHECK(a->status == b->status, "status %d / %d", a->status, b->status);
    }
    FUZZ_CHECK(a->headers.n == b->headers.n, "header count %zu / %zu", a->headers.n, b->headers.n);
    for (size_t i = 0; i < a->headers.n; i++) {
        const struct lintel_header *x = &a->headers.v[i], *y = &b->headers.v[i];
        FUZZ_CHECK(fuzz_str_eq(x->name, x->name_len, y->name, y->name_len), "header %zu name", i);
        FUZZ_CHECK(fuzz_str_eq(x->value, x->value_len, y->value, y->value_len), "header %zu value",
                   i);
        FUZZ_CHECK(x->flags == y->flags, "header %zu flags %u / %u", i, x->flags, y->flags);
    }
    FUZZ_CHECK(a->body == b->body, "body framing %d / %d", a->body, b->body);
    FUZZ_CHECK(a->body != LINTEL_BODY_LENGTH || a->content_length == b->content_length,
               "content length");
    FUZZ_CHECK(a->keepalive == b->keepalive, "keepalive");
    FUZZ_CHECK(a->upgrade == b->upgrade, "upgrade");
}

/* Serialises h, parses the bytes again and compares (the differential round trip). Limits for
 * the second parse are generous: "Name:value" grows by a space when written back. */
static inline void fuzz_head_round_trip(const struct lintel_head *h)
{
    struct evbuffer *b = evbuffer_new();
    FUZZ_CHECK(b != NULL, "out of memory");
    fuzz_head_serialize(h, b);
    size_t len = evbuffer_get_length(b);
    const char *p = (const char *)evbuffer_pullup(b, -1);
    struct lintel_head_limits lim = {len + 1, (unsigned)h->headers.n + 1};
    size_t skip = 0;
    char err[256] = "";
    ssize_t end = lintel_head_find_end(p, len, &lim, &skip, err, sizeof(err));
    FUZZ_CHECK(end == (ssize_t)len && skip == 0, "re-serialised head not delimited: %zd (%s)", end,
               err);
    struct lintel_arena *arena = lintel_arena_new(4096);
    FUZZ_CHECK(arena != NULL, "out of memory");
    struct lintel_head again;
    int rc = lintel_head_parse(&again, h->is_request, p, len, &lim, arena, err, sizeof(err));
    FUZZ_CHECK(rc == 0, "re-serialised head refused with %d: %s\n%.*s", rc, err, (int)len, p);
    fuzz_head_check_accepted(&again);
    fuzz_head_compare(h, &again);
    lintel_arena_free(arena);
    evbuffer_free(b);
}

/* Decodes a chunked body from in[0..len) feeding the decoder pieces of random sizes (seeded).
 * Appends the data to data_out; returns the decoder's last result (1 complete, 0 more needed,
 * -1 error) and sets *used to the bytes consumed. Checks the step contract on every call. */
static inline int fuzz_chunked_decode(const unsigned char *in, size_t len, uint64_t seed,
                                      struct evbuffer *data_out, size_t *used)
{
    struct lintel_chunked c;
    lintel_chunked_init(&c);
    size_t pos = 0, avail_end = 0;
    char err[128];
    int rc = 0;
    while (pos < len || avail_end < len) {
        /* The caller may see more bytes arrive at any point: extend the window randomly. */
        if (seed) {
            size_t grow = (size_t)(fuzz_rand(&seed) % 17);
            avail_end = avail_end + grow > len ? len : avail_end + grow;
        } else {
            avail_end = len;
        }
        if (avail_end <= pos) {
            if (avail_end == len)
                break;
            continue;
        }
        size_t skip = 99, data = 99;
        rc = lintel_chunked_step(&c, (const char *)in + pos, avail_end - pos, &skip, &data, err,
                                 sizeof(err));
        if (rc < 0) {
            FUZZ_CHECK(skip == 0 && data == 0, "error with skip %zu data %zu", skip, data);
            break;
        }
        FUZZ_CHECK(skip + data <= avail_end - pos, "consumed past the input");
        if (rc == 0)
            FUZZ_CHECK(skip + data > 0, "no progress on %zu bytes", avail_end - pos);
        evbuffer_add(data_out, in + pos + skip, data);
        pos += skip + data;
        if (rc == 1) {
            /* Done is sticky and consumes nothing more. */
            size_t s2 = 99, d2 = 99;
            if (pos < len) {
                int again = lintel_chunked_step(&c, (const char *)in + pos, len - pos, &s2, &d2,
                                                err, sizeof(err));
                FUZZ_CHECK(again == 1 && s2 == 0 && d2 == 0, "step after the end consumed");
            }
            break;
        }
    }
    *used = pos;
    return rc;
}

#endif
