/* The fake request: what a test sets up, what the plugin reads and changes through the host
 * table, and what the test then checks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "testkit-internal.h"

static struct lk_req *kit(lintel_req *r)
{
    return r->kit;
}

static struct lintel_str str(const char *s)
{
    return s ? (struct lintel_str){s, strlen(s)} : (struct lintel_str){NULL, 0};
}

/* ---- test side ---------------------------------------------------------------------------- */

struct lk_req *lk_req_new(const char *method, const char *target)
{
    static unsigned next_id;
    struct lk_req *r = lk_must(calloc(1, sizeof(*r)));
    r->arena = lk_must(lintel_arena_new(4096));
    r->handle.kit = r;
    r->start_ms = lk_now();
    r->target = lk_must(lk_strdup(r->arena, target, strlen(target)));
    r->method = lk_must(lk_strdup(r->arena, method, strlen(method)));
    const char *q = strchr(target, '?');
    size_t plen = q ? (size_t)(q - target) : strlen(target);
    r->path = lk_must(lk_strdup(r->arena, target, plen));
    if (q)
        r->query = lk_must(lk_strdup(r->arena, q + 1, strlen(q + 1)));
    r->client = lk_must(lk_strdup(r->arena, "127.0.0.1", 9));
    char id[32];
    snprintf(id, sizeof(id), "testkit-%u", ++next_id);
    r->request_id = lk_must(lk_strdup(r->arena, id, strlen(id)));
    return r;
}

void lk_req_set_header(struct lk_req *r, const char *name, const char *value)
{
    if (lk_headers_add(r->arena, &r->headers, name, value, strlen(value), false) < 0)
        lk_must(NULL);
    /* lintel takes the first id the client sends (after checking it; the kit trusts tests). */
    if (strcasecmp(name, "X-Request-Id") == 0)
        r->request_id = lk_headers_find(&r->headers, name)->value;
}

void lk_req_set_client(struct lk_req *r, const char *ip)
{
    r->client = lk_must(lk_strdup(r->arena, ip, strlen(ip)));
}

void lk_req_set_route(struct lk_req *r, const char *name)
{
    r->route = lk_must(lk_strdup(r->arena, name, strlen(name)));
}

void lk_req_set_upstream(struct lk_req *r, const char *name)
{
    r->upstream = lk_must(lk_strdup(r->arena, name, strlen(name)));
}

void lk_req_set_body(struct lk_req *r, const void *body, size_t len, int arrived)
{
    r->body_in = body ? body : "";
    r->body_in_len = len;
    r->body_arrived = arrived != 0;
}

/* Upstreams of the "current configuration" (lk_declare_upstream); process-wide, never freed
 * (still reachable at exit). */
static struct {
    char **names;
    int *healthy; /* lk_set_upstream_healthy, 1 by default */
    size_t n;
} declared;

void lk_declare_upstream(const char *name)
{
    declared.names = lk_must(realloc(declared.names, (declared.n + 1) * sizeof(char *)));
    declared.healthy = lk_must(realloc(declared.healthy, (declared.n + 1) * sizeof(int)));
    declared.healthy[declared.n] = 1;
    declared.names[declared.n++] = lk_must(strdup(name));
}

static size_t declared_index(const char *name)
{
    size_t i = 0;
    while (i < declared.n && strcmp(declared.names[i], name) != 0)
        i++;
    return i;
}

void lk_set_upstream_healthy(const char *name, int healthy)
{
    size_t i = declared_index(name);
    if (i == declared.n)
        lk_declare_upstream(name);
    declared.healthy[i] = healthy;
}

int lk_upstream_healthy_fn(lintel_req *r, const char *name)
{
    (void)r;
    if (!name)
        return -1;
    size_t i = declared_index(name);
    if (i < declared.n)
        return declared.healthy[i];
    return declared.n ? -1 : 1; /* until an upstream is declared, every name exists */
}

int lk_upstream_exists_fn(const lintel_instance *self, const char *name)
{
    (void)self;
    if (!name)
        return 0;
    return !declared.n || declared_index(name) < declared.n; /* as lk_upstream_healthy_fn */
}

void lk_req_free(struct lk_req *r)
{
    if (!r)
        return;
    lk_timers_cancel_req(r);
    for (struct lk_ctx *c = r->ctxs; c; c = c->next)
        if (c->cleanup)
            c->cleanup(c->data);
    lintel_arena_free(r->arena);
    free(r);
}

const char *lk_req_method(const struct lk_req *r)
{
    return r->method;
}

const char *lk_req_path(const struct lk_req *r)
{
    return r->path;
}

const char *lk_req_query(const struct lk_req *r)
{
    return r->query;
}

const char *lk_req_header(const struct lk_req *r, const char *name)
{
    const struct lk_header *h = lk_headers_find(&r->headers, name);
    return h ? h->value : NULL;
}

const char *lk_upstream(const struct lk_req *r)
{
    return r->upstream;
}

const char *lk_consumer_name(const struct lk_req *r)
{
    return r->consumer_name;
}

const char *lk_log_field(const struct lk_req *r, const char *key)
{
    for (const struct lk_header *f = r->fields.head; f; f = f->next)
        if (strcmp(f->name, key) == 0)
            return f->value;
    return NULL;
}

/* ---- host side: method, path, query ------------------------------------------------------- */

struct lintel_str lk_req_method_fn(lintel_req *r)
{
    return str(kit(r)->method);
}

int lk_req_set_method_fn(lintel_req *r, const char *m, size_t len)
{
    if (!lk_token_ok(m, len)) /* a method is a token, like a header name */
        return -1;
    char *copy = lk_strdup(kit(r)->arena, m, len);
    if (!copy)
        return -1;
    kit(r)->method = copy;
    return 0;
}

struct lintel_str lk_req_path_fn(lintel_req *r)
{
    return str(kit(r)->path);
}

/* Path and query text may not hold what would end or split the request target. */
static bool target_chars_ok(const char *s, size_t len, const char *also_refused)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f || strchr(also_refused, c))
            return false;
    }
    return true;
}

int lk_req_set_path_fn(lintel_req *r, const char *p, size_t len)
{
    if (!p || len == 0 || p[0] != '/' || !target_chars_ok(p, len, "?#"))
        return -1;
    char *copy = lk_strdup(kit(r)->arena, p, len);
    if (!copy)
        return -1;
    kit(r)->path = copy;
    return 0;
}

struct lintel_str lk_req_query_fn(lintel_req *r)
{
    return str(kit(r)->query);
}

int lk_req_set_query_fn(lintel_req *r, const char *q, size_t len)
{
    if (len == 0) {
        kit(r)->query = NULL;
        return 0;
    }
    if (!q || !target_chars_ok(q, len, "#"))
        return -1;
    char *copy = lk_strdup(kit(r)->arena, q, len);
    if (!copy)
        return -1;
    kit(r)->query = copy;
    return 0;
}

struct lintel_str lk_req_arg_fn(lintel_req *r, const char *name)
{
    const char *q = kit(r)->query;
    return lintel_query_arg(q, q ? strlen(q) : 0, name);
}

/* As lintel does: the first match over every Cookie header. */
struct lintel_str lk_req_cookie_fn(lintel_req *r, const char *name)
{
    for (const struct lk_header *h = kit(r)->headers.head; h; h = h->next) {
        if (h->deleted || strcasecmp(h->name, "Cookie") != 0)
            continue;
        struct lintel_str v = lintel_cookie_in(h->value, h->value_len, name);
        if (v.ptr)
            return v;
    }
    return (struct lintel_str){NULL, 0};
}

/* ---- host side: headers ------------------------------------------------------------------- */

struct lintel_str lk_req_header_fn(lintel_req *r, const char *name)
{
    const struct lk_header *h = name ? lk_headers_find(&kit(r)->headers, name) : NULL;
    return h ? (struct lintel_str){h->value, h->value_len} : (struct lintel_str){NULL, 0};
}

int lk_req_header_at_fn(lintel_req *r, size_t i, struct lintel_str *name, struct lintel_str *value)
{
    return lk_headers_at(&kit(r)->headers, i, name, value);
}

/* As lintel does: every header called name goes, the new one comes last. */
int lk_req_header_set_fn(lintel_req *r, const char *name, const char *value, size_t len)
{
    if (!lk_header_name_ok(name) || !lk_header_value_ok(value, len))
        return -1;
    lk_headers_remove(&kit(r)->headers, name);
    return lk_headers_add(kit(r)->arena, &kit(r)->headers, name, value, len, false);
}

int lk_req_header_add_fn(lintel_req *r, const char *name, const char *value, size_t len)
{
    if (!lk_header_name_ok(name) || !lk_header_value_ok(value, len))
        return -1;
    return lk_headers_add(kit(r)->arena, &kit(r)->headers, name, value, len, false);
}

int lk_req_header_remove_fn(lintel_req *r, const char *name)
{
    if (!lk_header_name_ok(name))
        return -1;
    lk_headers_remove(&kit(r)->headers, name);
    return 0;
}

/* ---- host side: who and where ------------------------------------------------------------- */

struct lintel_str lk_req_client_addr_fn(lintel_req *r)
{
    return str(kit(r)->client);
}

struct lintel_str lk_req_route_fn(lintel_req *r)
{
    return str(kit(r)->route);
}

struct lintel_str lk_req_id_fn(lintel_req *r)
{
    return str(kit(r)->request_id);
}

int lk_consumer_set_fn(lintel_req *r, const char *name, const char *id)
{
    struct lk_req *k = kit(r);
    char *n = name ? lk_strdup(k->arena, name, strlen(name)) : NULL;
    char *i = id ? lk_strdup(k->arena, id, strlen(id)) : NULL;
    if ((name && !n) || (id && !i))
        return -1;
    k->consumer_name = n;
    k->consumer_id = i;
    return 0;
}

struct lintel_str lk_consumer_name_fn(lintel_req *r)
{
    return str(kit(r)->consumer_name);
}

struct lintel_str lk_consumer_id_fn(lintel_req *r)
{
    return str(kit(r)->consumer_id);
}

int lk_set_target_fn(lintel_req *r, const char *address)
{
    struct lk_req *k = kit(r);
    if (!address || !*address || (k->phase > LINTEL_PHASE_BALANCE && !k->resending))
        return -1;
    k->chosen_target = lk_strdup(k->arena, address, strlen(address));
    return 0;
}

const char *lk_target(const struct lk_req *r)
{
    return r->chosen_target;
}

int lk_set_upstream_fn(lintel_req *r, const char *name)
{
    struct lk_req *k = kit(r);
    if (!name || !*name || (k->phase > LINTEL_PHASE_BALANCE && !k->resending))
        return -1;
    if (!lk_upstream_exists_fn(NULL, name))
        return -1;
    char *copy = lk_strdup(k->arena, name, strlen(name));
    if (!copy)
        return -1;
    k->upstream = copy;
    return 0;
}

struct lintel_str lk_upstream_name_fn(lintel_req *r)
{
    return str(lk_upstream(kit(r)));
}

/* ---- host side: per-request memory and context -------------------------------------------- */

void *lk_ctx_get_fn(lintel_req *r, const lintel_instance *self)
{
    for (struct lk_ctx *c = kit(r)->ctxs; c; c = c->next)
        if (c->owner == self)
            return c->data;
    return NULL;
}

/* Setting again replaces data and cleanup; the replaced cleanup is not called (the plugin holds
 * the old data when it replaces it). */
int lk_ctx_set_fn(lintel_req *r, const lintel_instance *self, void *data, lintel_cleanup_fn cleanup)
{
    struct lk_req *k = kit(r);
    if (!self)
        return -1;
    struct lk_ctx *c = k->ctxs;
    while (c && c->owner != self)
        c = c->next;
    if (!c) {
        c = lintel_arena_calloc(k->arena, sizeof(*c));
        if (!c)
            return -1;
        c->owner = self;
        c->next = k->ctxs;
        k->ctxs = c;
    }
    c->data = data;
    c->cleanup = cleanup;
    return 0;
}

void *lk_alloc_fn(lintel_req *r, size_t n)
{
    return lintel_arena_alloc(kit(r)->arena, n);
}

/* ---- host side: access record and facts -------------------------------------------------- */

int lk_log_field_fn(lintel_req *r, const char *key, const char *value, size_t len)
{
    if (!key || !*key || (!value && len))
        return -1;
    return lk_headers_add(kit(r)->arena, &kit(r)->fields, key, value, len, false);
}

int lk_log_field_at_fn(lintel_req *r, size_t i, struct lintel_str *key, struct lintel_str *value)
{
    return lk_headers_at(&kit(r)->fields, i, key, value);
}

/* Made-up but consistent facts: the clock is the virtual one, started at a fixed date. */
int lk_req_info_fn(lintel_req *r, struct lintel_req_info *out)
{
    const uint64_t epoch_us = 1700000000ull * 1000000; /* 2023-11-14T22:13:20Z */
    struct lk_req *k = kit(r);
    if (!out || out->struct_size < sizeof(out->struct_size))
        return -1;
    const struct lk_header *host = lk_headers_find(&k->headers, "Host");
    struct lintel_req_info info = {
        .struct_size = sizeof(info),
        .status = k->status,
        .start_unix_us = epoch_us + k->start_ms * 1000,
        .duration_us = (lk_now() - k->start_ms) * 1000,
        .bytes_in = k->body_buffered ? k->body_in_len : 0,
        .bytes_out = k->body_len,
        .host =
            host ? (struct lintel_str){host->value, host->value_len} : (struct lintel_str){NULL, 0},
        .target = str(k->target),
        .http_minor = 1,
        .upstream = str(k->upstream),
    };
    size_t n = out->struct_size < sizeof(info) ? out->struct_size : sizeof(info);
    memcpy(out, &info, n);
    out->struct_size = (uint32_t)n;
    return 0;
}

unsigned lk_req_worker_fn(lintel_req *r)
{
    return 0;
}

/* ---- host side: the request body ---------------------------------------------------------- */

int lk_req_body_buffer_fn(lintel_req *r, size_t cap)
{
    struct lk_req *k = kit(r);
    if (k->body_buffered)
        return 1;
    if (k->phase > LINTEL_PHASE_BALANCE)
        return -1;
    k->body_cap = cap;
    if (k->body_in_len == 0) { /* nothing to wait for */
        k->body_buffered = true;
        return 1;
    }
    if (!k->body_arrived) {
        k->rerun = true; /* lk_run delivers it once the handler has returned PAUSE */
        return 0;
    }
    if (k->body_in_len > cap) {
        k->deferred_status = 413; /* answered once the handler returns */
        return -1;
    }
    k->body_buffered = true;
    return 1;
}

struct lintel_str lk_req_body_fn(lintel_req *r)
{
    struct lk_req *k = kit(r);
    if (!k->body_buffered)
        return (struct lintel_str){NULL, 0};
    return (struct lintel_str){k->body_in ? k->body_in : "", k->body_in_len};
}
