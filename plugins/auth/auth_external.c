/* auth: the external method at request time (workers). The request's credential headers go to a
 * forward-auth service with host->http_call; the handler pauses and the answer resumes it:
 *   2xx           allowed: chosen response headers are copied upstream, the decision is cached
 *   3xx, 4xx      refused: the service's own answer goes back to the client (if no later method
 *                 or anonymous lets the request in)
 *   5xx, failure  the service is down: 503, or let through with allow_degradation
 * Cached decisions are keyed by the SHA-256 of the forwarded headers (and of the instance's
 * external settings), never by the credential's text, and live in the host's shared cache (all
 * workers; survives a plugin version swap). */
#include <stdio.h>
#include <string.h>

#include "auth-internal.h"

/* One call in flight: the attempt it continues and the cache key of its credential. */
struct ext_call {
    struct auth_attempt at;
    char cache_key[4 + 2 * AUTH_DIGEST_LEN + 1]; /* "ext:" + hex; "" when not cacheable */
};

/* A cached allow: for the consumer header, then each upstream header in config order, one byte
 * present (0/1), two bytes length (big-endian), the value. */
static size_t cache_put_value(unsigned char *out, size_t o, struct lintel_str v)
{
    if (o + 3 + v.len > AUTH_CACHE_VALUE_MAX)
        return AUTH_CACHE_VALUE_MAX + 1;
    out[o] = v.ptr != NULL;
    out[o + 1] = (unsigned char)(v.len >> 8);
    out[o + 2] = (unsigned char)v.len;
    if (v.len)
        memcpy(out + o + 3, v.ptr, v.len);
    return o + 3 + v.len;
}

/* Reads the next value of a cached allow at *o; -1 when the entry is malformed. */
static int cache_get_value(const unsigned char *in, size_t len, size_t *o, struct lintel_str *v)
{
    if (*o + 3 > len)
        return -1;
    size_t n = (size_t)in[*o + 1] << 8 | in[*o + 2];
    if (*o + 3 + n > len)
        return -1;
    *v = in[*o] ? (struct lintel_str){(const char *)in + *o + 3, n} : (struct lintel_str){NULL, 0};
    *o += 3 + n;
    return 0;
}

/* Names the consumer the service vouched for: a declared one, else the name alone. */
static int set_consumer(struct auth_attempt *at, struct lintel_str name)
{
    uint32_t i;
    if (!name.ptr || name.len == 0)
        return 0;
    if (auth_table_get(&at->a->by_name, at->a->sha256, name.ptr, name.len, &i) == 0) {
        at->consumer = i;
        return 0;
    }
    at->name = auth_strdup(at, name.ptr, name.len);
    return at->name ? 0 : -1;
}

/* hide_credentials: the forwarded headers were the credential. 0 / -1. */
static int hide_forwarded(struct auth_attempt *at)
{
    const struct auth *a = at->a;
    for (size_t i = 0; a->hide_credentials && i < a->ext.forward.n; i++)
        if (a->host->req_header_remove(at->r, a->ext.forward.v[i]) < 0)
            return -1;
    return 0;
}

/* Applies a cached allow; -1 when the entry is malformed (then it counts as a miss). */
static int apply_cached(struct auth_attempt *at, const unsigned char *v, size_t len)
{
    const struct auth *a = at->a;
    struct lintel_str consumer, hv[AUTH_UPSTREAM_HEADERS_MAX];
    size_t o = 0, n = a->ext.upstream.n;
    if (cache_get_value(v, len, &o, &consumer) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (cache_get_value(v, len, &o, &hv[i]) < 0)
            return -1;
    if (o != len)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (hv[i].ptr &&
            a->host->req_header_set(at->r, a->ext.upstream.v[i], hv[i].ptr, hv[i].len) < 0)
            return -1;
    return set_consumer(at, consumer);
}

static enum lintel_result on_allow(struct ext_call *c, const struct lintel_http_response *resp)
{
    struct auth_attempt *at = &c->at;
    const struct auth *a = at->a;
    const struct lintel_host_api *h = a->host;
    unsigned char value[AUTH_CACHE_VALUE_MAX];
    struct lintel_str consumer = a->ext.consumer_header ? resp->header(resp, a->ext.consumer_header)
                                                        : (struct lintel_str){NULL, 0};
    size_t o = cache_put_value(value, 0, consumer);
    for (size_t i = 0; i < a->ext.upstream.n; i++) {
        struct lintel_str v = resp->header(resp, a->ext.upstream.v[i]);
        if (v.ptr && h->req_header_set(at->r, a->ext.upstream.v[i], v.ptr, v.len) < 0)
            return LINTEL_ERROR;
        if (o <= AUTH_CACHE_VALUE_MAX)
            o = cache_put_value(value, o, v);
    }
    if (set_consumer(at, consumer) < 0)
        return LINTEL_ERROR;
    /* Only an allow is cached, only for a credential, and only when it fits; a cache that is
     * full just means asking the service again next time. */
    if (c->cache_key[0] && o <= AUTH_CACHE_VALUE_MAX)
        h->cache_set(a->self, c->cache_key, value, o, a->ext.cache_ttl_ms);
    if (hide_forwarded(at) < 0)
        return LINTEL_ERROR;
    at->method = AUTH_EXTERNAL;
    return auth_attempt_allow(at);
}

static void on_answer(void *arg, const struct lintel_http_response *resp)
{
    struct ext_call *c = arg;
    struct auth_attempt *at = &c->at;
    const struct auth *a = at->a;
    enum lintel_result res;
    if (resp->status >= 200 && resp->status < 300) {
        res = on_allow(c, resp);
    } else if (resp->status == 0 || resp->status >= 500) {
        if (resp->status)
            a->host->log(a->self, LINTEL_LOG_LEVEL_WARN, "external auth %s answered %d", a->ext.url,
                         resp->status);
        else
            a->host->log(a->self, LINTEL_LOG_LEVEL_WARN, "external auth %s: %s", a->ext.url,
                         resp->error ? resp->error : "failed");
        a->host->metric_add(a->self, "external_unavailable", 1);
        at->ext = AUTH_EXT_DOWN;
        res = auth_attempt_run(at);
    } else {
        at->ext = AUTH_EXT_DENIED;
        at->denial = resp; /* borrowed for this callback only: used before it returns */
        res = auth_attempt_run(at);
        at->denial = NULL;
    }
    a->host->resume(at->r, res);
}

enum lintel_result auth_external_deny(struct auth_attempt *at)
{
    const struct auth *a = at->a;
    const struct lintel_host_api *h = a->host;
    const struct lintel_http_response *resp = at->denial;
    for (size_t i = 0; i < a->ext.denial.n; i++) {
        struct lintel_str v = resp->header(resp, a->ext.denial.v[i]);
        if (v.ptr && h->resp_header_set(at->r, a->ext.denial.v[i], v.ptr, v.len) < 0)
            return LINTEL_ERROR;
    }
    struct lintel_str ct = resp->header(resp, "Content-Type");
    const char *type = ct.ptr ? auth_strdup(at, ct.ptr, ct.len) : NULL;
    if (ct.ptr && !type)
        return LINTEL_ERROR;
    static const char reason[] = "refused by the external service";
    h->log_field(at->r, "auth_error", reason, sizeof(reason) - 1);
    h->metric_add(a->self, "deny", 1);
    if (h->respond(at->r, resp->status, type, resp->body.ptr ? resp->body.ptr : "",
                   resp->body.len) < 0)
        return LINTEL_ERROR;
    return LINTEL_RESPOND;
}

/* Appends "Name: " + v[0] + v[1] + v[2] to lines[*n] (request memory); -1 when out of memory. */
static int add_line(struct auth_attempt *at, const char **lines, size_t *n, const char *name,
                    struct lintel_str v0, struct lintel_str v1, struct lintel_str v2)
{
    const struct lintel_str v[3] = {v0, v1, v2};
    size_t len = strlen(name) + 2 + v0.len + v1.len + v2.len;
    char *s = at->a->host->alloc(at->r, len + 1);
    if (!s)
        return -1;
    size_t o = (size_t)sprintf(s, "%s: ", name);
    for (int i = 0; i < 3; i++) {
        if (v[i].len)
            memcpy(s + o, v[i].ptr, v[i].len);
        o += v[i].len;
    }
    s[len] = '\0';
    lines[(*n)++] = s;
    return 0;
}

/* Sets key to "ext:" + hex(SHA-256 of the instance's identity and the forwarded lines), ""
 * when no credential header was forwarded. */
static int credential_key(const struct auth *a, const char *const *lines, size_t n,
                          char key[4 + 2 * AUTH_DIGEST_LEN + 1])
{
    unsigned char d[AUTH_DIGEST_LEN];
    key[0] = '\0';
    if (n == 0)
        return 0;
    if (auth_sha256_list(a->sha256, a->ext.identity, AUTH_DIGEST_LEN, lines, n, d) < 0)
        return -1;
    memcpy(key, "ext:", 4);
    for (size_t i = 0; i < AUTH_DIGEST_LEN; i++)
        snprintf(key + 4 + 2 * i, 3, "%02x", d[i]);
    return 0;
}

enum auth_outcome auth_external_run(struct auth_attempt *at)
{
    const struct auth *a = at->a;
    const struct auth_external *e = &a->ext;
    const struct lintel_host_api *h = a->host;
    static const struct lintel_str none = {NULL, 0};
    const char **lines = h->alloc(at->r, (e->forward.n + 4 + 1) * sizeof(*lines));
    struct ext_call *c = h->alloc(at->r, sizeof(*c));
    size_t n = 0;
    if (!lines || !c)
        return AUTH_FAILED;
    for (size_t i = 0; i < e->forward.n; i++) {
        struct lintel_str v = h->req_header(at->r, e->forward.v[i]);
        if (v.ptr && add_line(at, lines, &n, e->forward.v[i], v, none, none) < 0)
            return AUTH_FAILED;
    }
    if (credential_key(a, lines, n, c->cache_key) < 0)
        return AUTH_FAILED;
    if (c->cache_key[0] && e->cache_ttl_ms) {
        unsigned char v[AUTH_CACHE_VALUE_MAX];
        long len = h->cache_get(a->self, c->cache_key, v, sizeof(v));
        if (len >= 0 && (size_t)len <= sizeof(v) && apply_cached(at, v, (size_t)len) == 0) {
            h->metric_add(a->self, "external_cache_hit", 1);
            return hide_forwarded(at) < 0 ? AUTH_FAILED : AUTH_ALLOWED;
        }
    }
    if (!e->cache_ttl_ms)
        c->cache_key[0] = '\0';

    /* What the request is, for services that decide by it (the names Traefik uses). */
    struct lintel_str path = h->req_path(at->r), query = h->req_query(at->r);
    struct lintel_str q = query.ptr ? (struct lintel_str){"?", 1} : none;
    struct lintel_str host = h->req_header(at->r, "Host");
    if (add_line(at, lines, &n, "X-Forwarded-Method", h->req_method(at->r), none, none) < 0 ||
        add_line(at, lines, &n, "X-Forwarded-Uri", path, q, query) < 0 ||
        (host.ptr && add_line(at, lines, &n, "X-Forwarded-Host", host, none, none) < 0) ||
        add_line(at, lines, &n, "X-Forwarded-For", h->req_client_addr(at->r), none, none) < 0)
        return AUTH_FAILED;
    lines[n] = NULL;

    c->at = *at;
    struct lintel_http_request spec = {
        .struct_size = sizeof(spec),
        .method = e->method,
        .url = e->url,
        .headers = lines,
        .timeout_ms = e->timeout_ms,
    };
    h->metric_add(a->self, "external_call", 1);
    if (h->http_call(at->r, &spec, on_answer, c) < 0) {
        h->log(a->self, LINTEL_LOG_LEVEL_WARN, "external auth %s: call not started", e->url);
        h->metric_add(a->self, "external_unavailable", 1);
        at->ext = AUTH_EXT_DOWN;
        return AUTH_ABSENT;
    }
    return AUTH_PAUSED;
}
