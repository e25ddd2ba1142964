/* fallback: the client keeps getting data when the upstream fails.
 *
 *     plugins: [{ name: fallback, config: { static: { body: '{"items":[]}' } } }]
 *
 * BALANCE marks the request as going upstream and, with a breaker that is open, answers at once
 * (a fallback, or 503) without contacting the upstream. RESPONSE_HEADERS sees every response:
 * a trigger (the gateway's own failure answer, or a listed upstream status) is replaced by the
 * last good response of the request's key, else by the static one; a 200 of a captured method
 * starts a capture, which RESPONSE_BODY fills and stores on the last chunk in this worker's
 * store. The plugin runs first in RESPONSE_HEADERS (priority 10000), so it captures the
 * upstream's headers before other plugins add theirs, and those plugins then decorate the
 * fallback it serves (cors, ratelimit headers). BALANCE runs after every ACCESS plugin: an open
 * breaker never answers a request that authentication would refuse. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lintel/text.h>

#include "fallback.h"

#define FALLBACK_PRIORITY 10000

static const char open_body[] = "{\"status\":503,\"error\":\"upstream circuit open\"}\n";

/* What one request is to this instance (request arena; the buffers are malloc'd and freed by
 * on_request_end unless a store adopted them). */
struct fb_req {
    struct fallback *fb;
    bool upstream;            /* passed BALANCE towards the upstream: its answer counts */
    bool served;              /* the plugin made the response: leave it alone */
    bool probe;               /* the breaker's half-open probe, outcome not yet reported */
    struct fb_entry *capture; /* the 200 being captured: key and headers */
    char *body;               /* its body so far */
    size_t len, cap;
    bool known_length; /* cap is the Content-Length */
};

/* ---- instances (create, destroy: main thread) --------------------------------------------- */

static int create(const struct lintel_host_api *host, lintel_instance *self,
                  const lintel_cfg *config, lintel_cfg_error *err, void **instance)
{
    struct fallback *fb = calloc(1, sizeof(*fb));
    if (!fb) {
        host->cfg_error(err, config, "out of memory");
        return -1;
    }
    fb->host = host;
    fb->self = self;
    if (fb_config_parse(fb, config, err) < 0) {
        free(fb);
        return -1;
    }
    if (fb->breaker.enabled)
        host->metric_set(self, "breaker_state", FB_CLOSED);
    *instance = fb;
    return 0;
}

static void destroy(void *instance)
{
    struct fallback *fb = instance;
    fb_config_free(fb);
    free(fb);
}

/* ---- the request's key --------------------------------------------------------------------- */

/* Appends one optional part: 0x01 value when present, 0x02 when absent, so that an empty value
 * and a missing one are different keys. */
static size_t key_part(char *out, struct lintel_str v)
{
    if (!v.ptr) {
        if (out)
            out[0] = '\2';
        return 1;
    }
    if (out) {
        out[0] = '\1';
        memcpy(out + 1, v.ptr, v.len);
    }
    return v.len + 1;
}

/* method \0 path \0 then each configured argument, header and the consumer. Written twice:
 * once to size it (out NULL), once into the arena. */
static size_t key_write(const struct fallback *fb, lintel_req *r, char *out)
{
    const struct lintel_host_api *h = fb->host;
    struct lintel_str m = h->req_method(r), p = h->req_path(r);
    size_t n = 0;
    if (out) {
        memcpy(out, m.ptr, m.len);
        out[m.len] = '\0';
        memcpy(out + m.len + 1, p.ptr, p.len);
        out[m.len + 1 + p.len] = '\0';
    }
    n = m.len + p.len + 2;
    for (size_t i = 0; i < fb->nkey_args; i++)
        n += key_part(out ? out + n : NULL, h->req_arg(r, fb->key_args[i]));
    for (size_t i = 0; i < fb->nkey_headers; i++)
        n += key_part(out ? out + n : NULL, h->req_header(r, fb->key_headers[i]));
    if (fb->key_consumer)
        n += key_part(out ? out + n : NULL, h->consumer_name(r));
    return n;
}

/* The request's key in the arena, or {NULL,0} when out of memory. */
static struct lintel_str request_key(const struct fallback *fb, lintel_req *r)
{
    size_t n = key_write(fb, r, NULL);
    char *k = fb->host->alloc(r, n);
    if (!k)
        return (struct lintel_str){NULL, 0};
    key_write(fb, r, k);
    return (struct lintel_str){k, n};
}

static struct fb_store *worker_store(const struct fallback *fb, lintel_req *r)
{
    unsigned w = fb->host->req_worker(r);
    return fb->last_good && w < fb->nstores ? &fb->stores[w] : NULL;
}

/* ---- serving ------------------------------------------------------------------------------- */

/* Adds the entry's headers after respond, except the names the response already has (headers
 * other plugins set before, which respond keeps: theirs are current). */
static int add_stored_headers(const struct lintel_host_api *h, lintel_req *r,
                              const struct fb_entry *e)
{
    bool *present = e->nheaders ? h->alloc(r, e->nheaders) : NULL;
    if (e->nheaders && !present)
        return -1;
    const char *p = e->headers;
    for (size_t i = 0; i < e->nheaders; i++) {
        size_t nlen = strlen(p);
        present[i] = h->resp_header(r, p).ptr != NULL;
        p += nlen + 1;
        p += strlen(p) + 1;
    }
    int rc = 0;
    p = e->headers;
    for (size_t i = 0; i < e->nheaders; i++) {
        const char *name = p, *value = p + strlen(p) + 1;
        p = value + strlen(value) + 1;
        if (!present[i])
            rc |= h->resp_header_add(r, name, value, strlen(value));
    }
    return rc;
}

/* Answers with the last good response of the request's key, if one is young enough. 1 served,
 * 0 none, -1 failed (out of memory). */
static int serve_last_good(struct fallback *fb, lintel_req *r)
{
    const struct lintel_host_api *h = fb->host;
    struct fb_store *s = worker_store(fb, r);
    if (!s)
        return 0;
    struct lintel_str key = request_key(fb, r);
    if (!key.ptr)
        return -1;
    struct fb_entry *e = fb_store_get(s, key.ptr, key.len, fb_hash(key.ptr, key.len), true);
    if (!e)
        return 0;
    uint64_t now = h->now_ms(), age_ms = now > e->stored_ms ? now - e->stored_ms : 0;
    if (age_ms > fb->max_age_ms) {
        fb_store_remove(s, e);
        return 0;
    }
    char age[24];
    int alen = snprintf(age, sizeof(age), "%" PRIu64, age_ms / 1000);
    if (h->respond(r, 200, e->content_type, e->body, e->body_len) < 0)
        return -1;
    int rc = add_stored_headers(h, r, e);
    rc |= h->resp_header_set(r, "X-Fallback", "last-good", 9);
    rc |= h->resp_header_set(r, "Age", age, (size_t)alen);
    h->metric_add(fb->self, "served_last_good", 1);
    return rc ? -1 : 1;
}

static int serve_static(struct fallback *fb, lintel_req *r)
{
    const struct lintel_host_api *h = fb->host;
    if (!fb->has_static)
        return 0;
    if (h->respond(r, fb->static_status, fb->static_type, fb->static_body, fb->static_body_len) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < fb->nstatic_headers; i++) {
        const struct fb_header *x = &fb->static_headers[i];
        rc |= h->resp_header_set(r, x->name, x->value, strlen(x->value));
    }
    rc |= h->resp_header_set(r, "X-Fallback", "static", 6);
    h->metric_add(fb->self, "served_static", 1);
    return rc ? -1 : 1;
}

/* The fallback for r: last good, else static. 1 served, 0 none applies, -1 failed. */
static int serve(struct fallback *fb, struct fb_req *q, lintel_req *r)
{
    int rc = serve_last_good(fb, r);
    if (rc == 0)
        rc = serve_static(fb, r);
    if (rc != 0)
        q->served = true;
    return rc;
}

/* ---- capture -------------------------------------------------------------------------------- */

static bool skip_header(const void *arg, struct lintel_str name)
{
    const struct fallback *fb = arg;
    for (size_t i = 0; i < fb->nskip_headers; i++)
        if (strlen(fb->skip_headers[i]) == name.len &&
            strncasecmp(fb->skip_headers[i], name.ptr, name.len) == 0)
            return true;
    return false;
}

static bool method_captured(const struct fallback *fb, lintel_req *r)
{
    struct lintel_str m = fb->host->req_method(r);
    for (size_t i = 0; i < fb->nmethods; i++)
        if (strlen(fb->methods[i]) == m.len && memcmp(fb->methods[i], m.ptr, m.len) == 0)
            return true;
    return false;
}

/* Cache-Control no-store or private: the upstream says the answer is not for others. */
static bool not_for_others(const struct lintel_host_api *h, lintel_req *r)
{
    struct lintel_str n, v;
    for (size_t i = 0; h->resp_header_at(r, i, &n, &v) == 0; i++) {
        if (n.len != 13 || strncasecmp(n.ptr, "Cache-Control", 13) != 0)
            continue;
        for (size_t j = 0; j < v.len; j++)
            if ((v.len - j >= 8 && strncasecmp(v.ptr + j, "no-store", 8) == 0) ||
                (v.len - j >= 7 && strncasecmp(v.ptr + j, "private", 7) == 0))
                return true;
    }
    return false;
}

/* A 200 the upstream just sent: starts capturing it unless this worker stored the same key
 * less than `refresh` ago. */
static int start_capture(struct fallback *fb, struct fb_req *q, lintel_req *r)
{
    const struct lintel_host_api *h = fb->host;
    struct fb_store *s = worker_store(fb, r);
    if (!s || !method_captured(fb, r) || not_for_others(h, r))
        return 0;
    uint64_t length = 0;
    struct lintel_str cl = h->resp_header(r, "Content-Length");
    if (cl.ptr && !lintel_parse_length(cl.ptr, cl.len, fb->max_body, &length))
        return 0; /* too large (or not a length the host would have accepted) */
    struct lintel_str key = request_key(fb, r);
    if (!key.ptr)
        return -1;
    uint64_t hash = fb_hash(key.ptr, key.len);
    struct fb_entry *e = fb_store_get(s, key.ptr, key.len, hash, false);
    uint64_t now = h->now_ms();
    if (e && now >= e->stored_ms && now - e->stored_ms < fb->refresh_ms)
        return 0;
    q->capture = fb_entry_new(h, r, key.ptr, key.len, hash, skip_header, fb);
    if (!q->capture)
        return 0; /* out of memory: not stored, the response itself is unaffected */
    q->known_length = cl.ptr != NULL;
    q->cap = q->known_length ? length : 0;
    if (q->cap && !(q->body = malloc(q->cap))) {
        fb_entry_free(q->capture);
        q->capture = NULL;
    }
    return 0;
}

static void drop_capture(struct fb_req *q)
{
    fb_entry_free(q->capture);
    free(q->body);
    q->capture = NULL;
    q->body = NULL;
    q->len = q->cap = 0;
}

/* Appends a body chunk to the capture; drops it past max_body or out of memory. */
static void capture_chunk(struct fallback *fb, struct fb_req *q, struct lintel_str c)
{
    if (q->len + c.len > fb->max_body || (q->known_length && q->len + c.len > q->cap)) {
        drop_capture(q);
        return;
    }
    if (q->len + c.len > q->cap) {
        size_t cap = q->cap ? q->cap : 4096;
        while (cap < q->len + c.len)
            cap *= 2;
        if (cap > fb->max_body)
            cap = fb->max_body;
        char *grown = realloc(q->body, cap);
        if (!grown) {
            drop_capture(q);
            return;
        }
        q->body = grown;
        q->cap = cap;
    }
    memcpy(q->body + q->len, c.ptr, c.len);
    q->len += c.len;
}

/* ---- requests (worker threads) ------------------------------------------------------------- */

/* Runs once when the request ends: a probe that never got an answer gives its turn back, and a
 * capture that never saw its last chunk (the upstream closed early) is dropped. */
static void on_request_end(void *data)
{
    struct fb_req *q = data;
    if (q->probe)
        fb_breaker_probe_lost(&q->fb->breaker, q->fb->host, q->fb->self);
    drop_capture(q);
}

static struct fb_req *request_state(struct fallback *fb, lintel_req *r)
{
    struct fb_req *q = fb->host->ctx_get(r, fb->self);
    if (q)
        return q;
    q = fb->host->alloc(r, sizeof(*q));
    if (!q)
        return NULL;
    memset(q, 0, sizeof(*q));
    q->fb = fb;
    if (fb->host->ctx_set(r, fb->self, q, on_request_end) < 0)
        return NULL;
    return q;
}

/* The breaker is open: a fallback, or 503 with Retry-After when none applies. */
static enum lintel_result answer_open(struct fallback *fb, struct fb_req *q, lintel_req *r)
{
    const struct lintel_host_api *h = fb->host;
    int rc = serve(fb, q, r);
    if (rc < 0)
        return LINTEL_ERROR;
    if (rc == 0) {
        uint64_t ms = fb_breaker_retry_ms(&fb->breaker, h->now_ms());
        char secs[24];
        int n = snprintf(secs, sizeof(secs), "%" PRIu64, (ms + 999) / 1000);
        if (h->respond(r, 503, "application/json", open_body, sizeof(open_body) - 1) < 0 ||
            h->resp_header_set(r, "Retry-After", secs, (size_t)n) < 0)
            return LINTEL_ERROR;
        h->metric_add(fb->self, "breaker_rejected", 1);
        q->served = true;
    }
    return LINTEL_RESPOND;
}

static enum lintel_result on_balance(lintel_req *r, void *instance)
{
    struct fallback *fb = instance;
    struct fb_req *q = request_state(fb, r);
    if (!q)
        return LINTEL_ERROR;
    if (fb->breaker.enabled) {
        switch (fb_breaker_admit(&fb->breaker, fb->host, fb->self)) {
        case FB_SKIP:
            return answer_open(fb, q, r);
        case FB_PROBE:
            q->probe = true;
            break;
        case FB_PASS:
            break;
        }
    }
    q->upstream = true;
    return LINTEL_CONTINUE;
}

static enum lintel_result on_response_headers(lintel_req *r, void *instance)
{
    struct fallback *fb = instance;
    const struct lintel_host_api *h = fb->host;
    struct fb_req *q = h->ctx_get(r, fb->self);
    if (q && q->served)
        return LINTEL_CONTINUE; /* our own answer */
    int failure = h->upstream_failure(r);
    bool upstream = q && q->upstream;
    if (failure == LINTEL_UPSTREAM_OK && !upstream)
        return LINTEL_CONTINUE; /* another plugin's answer, before the upstream */
    if (!q && !(q = request_state(fb, r)))
        return LINTEL_ERROR;
    int status = h->resp_status(r);
    bool failed = failure != LINTEL_UPSTREAM_OK || fb_status_triggers(fb, status);
    if (fb->breaker.enabled) {
        fb_breaker_result(&fb->breaker, h, fb->self, failed, q->probe);
        q->probe = false;
    }
    drop_capture(q); /* a response resent by another plugin comes back here */
    if (failed) {
        /* RESPOND replaces the response; the handlers after this one still run on it. */
        int rc = serve(fb, q, r);
        return rc < 0 ? LINTEL_ERROR : rc > 0 ? LINTEL_RESPOND : LINTEL_CONTINUE;
    }
    if (status == 200 && start_capture(fb, q, r) < 0)
        return LINTEL_ERROR;
    return LINTEL_CONTINUE;
}

static enum lintel_result on_response_body(lintel_req *r, void *instance)
{
    struct fallback *fb = instance;
    const struct lintel_host_api *h = fb->host;
    struct fb_req *q = h->ctx_get(r, fb->self);
    if (!q || !q->capture)
        return LINTEL_CONTINUE;
    struct lintel_str c = h->resp_body_chunk(r);
    if (c.len)
        capture_chunk(fb, q, c);
    if (!q->capture || !h->resp_body_last(r))
        return LINTEL_CONTINUE;
    if (q->known_length && q->len != q->cap) {
        drop_capture(q); /* shorter than announced */
        return LINTEL_CONTINUE;
    }
    struct fb_store *s = worker_store(fb, r);
    if (s) {
        fb_store_put(s, q->capture, q->body, q->len, h->now_ms());
        q->capture = NULL;
        q->body = NULL;
        q->len = q->cap = 0;
    }
    return LINTEL_CONTINUE;
}

/* One field per line, as in every plugin's descriptor. */
/* clang-format off */
LINTEL_PLUGIN_EXPORT const struct lintel_plugin lintel_plugin_v1 = {
    LINTEL_PLUGIN_INIT,
    .name = "fallback",
    .version = "1.0.0",
    .priority = FALLBACK_PRIORITY,
    .create = create,
    .destroy = destroy,
    .balance = on_balance,
    .response_headers = on_response_headers,
    .response_body = on_response_body,
};
/* clang-format on */
