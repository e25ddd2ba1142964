/* The host services table handed to plugins (struct lintel_host_api), over the core's request,
 * configuration and worker structures. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <stddef.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <http_parser.h>

#include "balance.h"
#include "consumers.h"
#include "health.h"
#include "httpc.h"
#include "log.h"
#include "metrics.h"
#include "plugin_read.h"
#include "plugin_tasks.h"
#include "proxy-internal.h"
#include "shared.h"

#define REQ(r) ((struct lintel_request *)(r))

static struct lintel_str str_of(const char *p, size_t n)
{
    struct lintel_str s = {p, p ? n : 0};
    return s;
}

static struct lintel_str cstr(const char *p)
{
    return str_of(p, p ? strlen(p) : 0);
}

/* ---- shared helpers ------------------------------------------------------------------------ */

struct lintel_str lintel_cookie_get(const struct lintel_headers *hs, const char *name)
{
    for (size_t i = 0; i < hs->n; i++) {
        const struct lintel_header *h = &hs->v[i];
        if ((h->flags & LINTEL_HDR_DELETED) || h->name_len != 6 || strcasecmp(h->name, "Cookie"))
            continue;
        struct lintel_str v = lintel_cookie_in(h->value, h->value_len, name);
        if (v.ptr)
            return v;
    }
    return str_of(NULL, 0);
}

static bool valid_name(const char *name)
{
    return name && lintel_http1_token_ok(name, strlen(name));
}

static bool valid_value(const char *v, size_t len)
{
    return lintel_http1_field_ok(v, len);
}

static void headers_remove_n(struct lintel_headers *hs, const char *name, size_t len)
{
    for (size_t i = 0; i < hs->n; i++) {
        struct lintel_header *h = &hs->v[i];
        if (!(h->flags & LINTEL_HDR_DELETED) && h->name_len == len &&
            strncasecmp(h->name, name, len) == 0)
            h->flags |= LINTEL_HDR_DELETED;
    }
}

static void headers_remove(struct lintel_headers *hs, const char *name)
{
    headers_remove_n(hs, name, strlen(name));
}

/* Appends copies of name and value, which the caller has validated. */
static int headers_append(struct lintel_request *req, struct lintel_headers *hs, const char *name,
                          const char *value, size_t len)
{
    size_t nlen = strlen(name);
    char *n = lintel_arena_strndup(req->arena, name, nlen);
    char *v = lintel_arena_strndup(req->arena, value, len);
    if (!n || !v)
        return -1;
    return lintel_headers_add(hs, req->arena, n, nlen, v, len);
}

static int headers_add(struct lintel_request *req, struct lintel_headers *hs, const char *name,
                       const char *value, size_t len)
{
    if (!valid_name(name) || !valid_value(value, len))
        return -1;
    return headers_append(req, hs, name, value, len);
}

/* ---- logging and config ------------------------------------------------------------------- */

static void h_log(const lintel_instance *self, enum lintel_log_level level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if ((unsigned)level > LINTEL_LOG_LEVEL_ERROR)
        level = LINTEL_LOG_LEVEL_ERROR;
    if (self)
        lintel_log(level, "[%s] %s", self->ns, msg);
    else
        lintel_log(level, "[plugin] %s", msg);
}

#define YN(n) ((const struct lintel_ynode *)(n))

static void h_cfg_error(lintel_cfg_error *err, const lintel_cfg *node, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    err->node = YN(node);
    err->set = true;
}

/* ---- the request -------------------------------------------------------------------------- */

static struct lintel_str h_req_method(lintel_req *r)
{
    return cstr(REQ(r)->head.method_str);
}

static int h_req_set_method(lintel_req *r, const char *m, size_t len)
{
    struct lintel_request *req = REQ(r);
    for (int i = 0;; i++) {
        const char *name = http_method_str((enum http_method)i);
        if (!name || strcmp(name, "<unknown>") == 0)
            return -1;
        if (strlen(name) == len && memcmp(name, m, len) == 0) {
            req->head.method = i;
            req->head.method_str = name;
            return 0;
        }
    }
}

static struct lintel_str h_req_path(lintel_req *r)
{
    return str_of(REQ(r)->head.path, REQ(r)->head.path_len);
}

static int h_req_set_path(lintel_req *r, const char *p, size_t len)
{
    struct lintel_request *req = REQ(r);
    if (len == 0 || p[0] != '/' || memchr(p, '?', len) || memchr(p, '#', len) ||
        !valid_value(p, len) || memchr(p, ' ', len))
        return -1;
    char *copy = lintel_arena_strndup(req->arena, p, len);
    if (!copy)
        return -1;
    if (!req->sent_path) {
        req->sent_path = req->head.path;
        req->sent_path_len = req->head.path_len;
    }
    req->head.path = copy;
    req->head.path_len = len;
    /* Put back as the client sent it (a replay): the route's strip_prefix applies again. */
    req->path_rewritten = len != req->sent_path_len || memcmp(p, req->sent_path, len) != 0;
    return 0;
}

static struct lintel_str h_req_query(lintel_req *r)
{
    return str_of(REQ(r)->head.query, REQ(r)->head.query_len);
}

static int h_req_set_query(lintel_req *r, const char *q, size_t len)
{
    struct lintel_request *req = REQ(r);
    if (len == 0) {
        req->head.query = NULL;
        req->head.query_len = 0;
        return 0;
    }
    if (memchr(q, '#', len) || memchr(q, ' ', len) || !valid_value(q, len))
        return -1;
    char *copy = lintel_arena_strndup(req->arena, q, len);
    if (!copy)
        return -1;
    req->head.query = copy;
    req->head.query_len = len;
    return 0;
}

static struct lintel_str h_req_arg(lintel_req *r, const char *name)
{
    struct lintel_request *req = REQ(r);
    return req->head.query ? lintel_query_arg(req->head.query, req->head.query_len, name)
                           : str_of(NULL, 0);
}

static struct lintel_str h_req_cookie(lintel_req *r, const char *name)
{
    return lintel_cookie_get(&REQ(r)->head.headers, name);
}

static struct lintel_str h_req_header(lintel_req *r, const char *name)
{
    struct lintel_header *h = lintel_headers_get(&REQ(r)->head.headers, name, strlen(name));
    return h ? str_of(h->value, h->value_len) : str_of(NULL, 0);
}

static int header_at(const struct lintel_headers *hs, size_t i, struct lintel_str *name,
                     struct lintel_str *value)
{
    for (size_t k = 0; k < hs->n; k++) {
        if (hs->v[k].flags & LINTEL_HDR_DELETED)
            continue;
        if (i-- == 0) {
            *name = str_of(hs->v[k].name, hs->v[k].name_len);
            *value = str_of(hs->v[k].value, hs->v[k].value_len);
            return 0;
        }
    }
    return -1;
}

static int h_req_header_at(lintel_req *r, size_t i, struct lintel_str *name,
                           struct lintel_str *value)
{
    return header_at(&REQ(r)->head.headers, i, name, value);
}

static int h_req_header_set(lintel_req *r, const char *name, const char *value, size_t len)
{
    if (!valid_name(name) || !valid_value(value, len))
        return -1;
    headers_remove(&REQ(r)->head.headers, name);
    return headers_append(REQ(r), &REQ(r)->head.headers, name, value, len);
}

static int h_req_header_add(lintel_req *r, const char *name, const char *value, size_t len)
{
    return headers_add(REQ(r), &REQ(r)->head.headers, name, value, len);
}

static int h_req_header_remove(lintel_req *r, const char *name)
{
    if (!valid_name(name))
        return -1;
    headers_remove(&REQ(r)->head.headers, name);
    return 0;
}

static struct lintel_str h_req_client_addr(lintel_req *r)
{
    return cstr(REQ(r)->client->ip);
}

static struct lintel_str h_req_route(lintel_req *r)
{
    return REQ(r)->route ? cstr(REQ(r)->route->name) : str_of(NULL, 0);
}

static struct lintel_str h_req_id(lintel_req *r)
{
    return cstr(REQ(r)->id_value);
}

static int h_consumer_set(lintel_req *r, const char *name, const char *id)
{
    struct lintel_request *req = REQ(r);
    char *n = name ? lintel_arena_strndup(req->arena, name, strlen(name)) : NULL;
    char *i = id ? lintel_arena_strndup(req->arena, id, strlen(id)) : NULL;
    if ((name && !n) || (id && !i))
        return -1;
    req->consumer_name = n;
    req->consumer_id = i;
    return 0;
}

static struct lintel_str h_consumer_name(lintel_req *r)
{
    return cstr(REQ(r)->consumer_name);
}

static struct lintel_str h_consumer_id(lintel_req *r)
{
    return cstr(REQ(r)->consumer_id);
}

static void *h_ctx_get(lintel_req *r, const lintel_instance *self)
{
    struct lintel_request *req = REQ(r);
    return req->ctx && self ? req->ctx[self->index].data : NULL;
}

static int h_ctx_set(lintel_req *r, const lintel_instance *self, void *data,
                     lintel_cleanup_fn cleanup)
{
    struct lintel_request *req = REQ(r);
    const struct lintel_plugins *p = req->ws->snap->plugins;
    if (!self || !p || self->index >= p->ninstances)
        return -1;
    if (!req->ctx) {
        req->ctx = lintel_arena_calloc(req->arena, p->ninstances * sizeof(*req->ctx));
        if (!req->ctx)
            return -1;
    }
    req->ctx[self->index].data = data;
    req->ctx[self->index].cleanup = cleanup;
    return 0;
}

static void *h_alloc(lintel_req *r, size_t n)
{
    return lintel_arena_alloc(REQ(r)->arena, n);
}

/* ---- the response ------------------------------------------------------------------------- */

/* The response head has not left yet (or a plugin response may still replace it). */
static bool response_open(const struct lintel_request *req)
{
    return req->resp_state == RESP_WAIT_HEAD && req->phase <= LINTEL_PHASE_RESPONSE_HEADERS;
}

static int h_respond(lintel_req *r, int status, const char *type, const void *body, size_t len)
{
    if (status < 100 || status > 999 || !response_open(REQ(r)))
        return -1;
    return lintel_request_set_own(REQ(r), status, type, body, len);
}

static bool has_response(const struct lintel_request *req)
{
    return req->resp.status != 0;
}

static int h_resp_status(lintel_req *r)
{
    return REQ(r)->resp.status;
}

static int h_resp_set_status(lintel_req *r, int status)
{
    struct lintel_request *req = REQ(r);
    if (!has_response(req) || status < 100 || status > 999 || !response_open(req))
        return -1;
    req->resp.status = status;
    req->resp.reason = http_status_str((enum http_status)status);
    return 0;
}

static struct lintel_headers *resp_headers(struct lintel_request *req)
{
    return has_response(req) ? &req->resp.headers : &req->pending_resp;
}

static struct lintel_str h_resp_header(lintel_req *r, const char *name)
{
    struct lintel_header *h = lintel_headers_get(resp_headers(REQ(r)), name, strlen(name));
    return h ? str_of(h->value, h->value_len) : str_of(NULL, 0);
}

/* Response headers plugins add are marked, so that a response replaced later in RESPONSE_HEADERS
 * keeps them (cors on a fallback answer). */
static int resp_add(struct lintel_request *req, const char *name, const char *value, size_t len)
{
    struct lintel_headers *hs = resp_headers(req);
    if (headers_append(req, hs, name, value, len) < 0)
        return -1;
    hs->v[hs->n - 1].flags |= LINTEL_HDR_SET;
    return 0;
}

static int h_resp_header_set(lintel_req *r, const char *name, const char *value, size_t len)
{
    struct lintel_request *req = REQ(r);
    if (!valid_name(name) || !valid_value(value, len) || !response_open(req))
        return -1;
    if (has_response(req)) {
        headers_remove(&req->resp.headers, name);
        return resp_add(req, name, value, len);
    }
    /* Pending: a removal marker makes the later apply replace, not add. The marker and the
     * header share one copy of the name. */
    struct lintel_headers *hs = &req->pending_resp;
    size_t nlen = strlen(name);
    headers_remove_n(hs, name, nlen);
    char *n = lintel_arena_strndup(req->arena, name, nlen);
    char *v = lintel_arena_strndup(req->arena, value, len);
    if (!n || !v)
        return -1;
    if (lintel_headers_add(hs, req->arena, n, nlen, n + nlen, 0) == 0)
        hs->v[hs->n - 1].flags |= LINTEL_HDR_DELETED;
    if (lintel_headers_add(hs, req->arena, n, nlen, v, len) < 0)
        return -1;
    hs->v[hs->n - 1].flags |= LINTEL_HDR_SET;
    return 0;
}

static int h_resp_header_add(lintel_req *r, const char *name, const char *value, size_t len)
{
    if (!valid_name(name) || !valid_value(value, len) || !response_open(REQ(r)))
        return -1;
    return resp_add(REQ(r), name, value, len);
}

static int h_resp_header_remove(lintel_req *r, const char *name)
{
    struct lintel_request *req = REQ(r);
    if (!valid_name(name) || !response_open(req))
        return -1;
    headers_remove(resp_headers(req), name);
    if (!has_response(req) && headers_append(req, &req->pending_resp, name, "", 0) == 0)
        req->pending_resp.v[req->pending_resp.n - 1].flags |= LINTEL_HDR_DELETED;
    return 0;
}

void lintel_host_apply_pending(struct lintel_request *req)
{
    struct lintel_headers pend = req->pending_resp;
    if (pend.n == 0 || !has_response(req))
        return; /* nothing to apply, or nothing to apply it to: it stays pending */
    req->pending_resp = (struct lintel_headers){0};
    if (!response_open(req))
        return;
    /* The entries were validated when set and live in the request's arena: applied as they are. */
    struct lintel_headers *hs = &req->resp.headers;
    for (size_t i = 0; i < pend.n; i++) {
        const struct lintel_header *x = &pend.v[i];
        if (x->flags & LINTEL_HDR_DELETED) {
            headers_remove_n(hs, x->name, x->name_len);
            continue;
        }
        if (lintel_headers_add(hs, req->arena, x->name, x->name_len, x->value, x->value_len) == 0)
            hs->v[hs->n - 1].flags |= LINTEL_HDR_SET;
    }
}

/* ---- upstream choice ---------------------------------------------------------------------- */

/* Upstream `name` (len bytes) of cfg, or NULL. */
static const struct lintel_upstream_conf *upstream_named(const struct lintel_config *cfg,
                                                         const char *name, size_t len)
{
    for (size_t i = 0; i < cfg->nupstreams; i++)
        if (strlen(cfg->upstreams[i].name) == len && memcmp(cfg->upstreams[i].name, name, len) == 0)
            return &cfg->upstreams[i];
    return NULL;
}

static int h_set_upstream(lintel_req *r, const char *name)
{
    struct lintel_request *req = REQ(r);
    const struct lintel_config *cfg = req->ws->snap->cfg;
    if (req->up || (req->phase > LINTEL_PHASE_BALANCE && !req->resending))
        return -1;
    const struct lintel_upstream_conf *up = upstream_named(cfg, name, strlen(name));
    if (!up)
        return -1;
    unsigned char *tried = lintel_arena_calloc(req->arena, up->ntargets);
    if (!tried)
        return -1;
    req->upstream = up;
    req->balancer = req->ws->balancers[up - cfg->upstreams];
    req->tried = tried;
    req->forced_target = -1;
    return 0;
}

static int h_set_target(lintel_req *r, const char *address)
{
    struct lintel_request *req = REQ(r);
    if (!req->upstream || req->up || (req->phase > LINTEL_PHASE_BALANCE && !req->resending) ||
        !address)
        return -1;
    for (size_t i = 0; i < req->upstream->ntargets; i++)
        if (strcmp(req->upstream->targets[i].addr.text, address) == 0) {
            req->forced_target = (int)i;
            return 0;
        }
    return -1;
}

static struct lintel_str h_upstream_name(lintel_req *r)
{
    return REQ(r)->upstream ? cstr(REQ(r)->upstream->name) : str_of(NULL, 0);
}

/* ---- pausing and timers ------------------------------------------------------------------- */

static void h_resume(lintel_req *r, enum lintel_result result)
{
    lintel_phases_resume(REQ(r), result);
}

struct req_timer {
    struct event *ev;
    lintel_timer_fn fn;
    void *arg;
};

static void on_req_timer(evutil_socket_t fd, short what, void *arg)
{
    struct req_timer *t = arg;
    t->fn(t->arg);
}

static void req_timer_free(void *arg)
{
    struct req_timer *t = arg;
    event_free(t->ev); /* the request ended first: fn never runs */
}

static int h_req_timer(lintel_req *r, uint64_t ms, lintel_timer_fn fn, void *arg)
{
    struct lintel_request *req = REQ(r);
    struct req_timer *t = lintel_arena_alloc(req->arena, sizeof(*t));
    if (!t)
        return -1;
    t->fn = fn;
    t->arg = arg;
    t->ev = evtimer_new(req->client->worker->base, on_req_timer, t);
    if (!t->ev)
        return -1;
    if (lintel_arena_cleanup_add(req->arena, req_timer_free, t) < 0) {
        event_free(t->ev);
        return -1;
    }
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return evtimer_add(t->ev, &tv);
}

/* ---- access record and facts -------------------------------------------------------------- */

static int h_log_field(lintel_req *r, const char *key, const char *value, size_t len)
{
    struct lintel_request *req = REQ(r);
    char *k = lintel_arena_strndup(req->arena, key, strlen(key));
    char *v = lintel_arena_strndup(req->arena, value, len);
    if (!k || !v)
        return -1;
    return lintel_headers_add(&req->log_fields, req->arena, k, strlen(k), v, len);
}

static int h_log_field_at(lintel_req *r, size_t i, struct lintel_str *key, struct lintel_str *value)
{
    return header_at(&REQ(r)->log_fields, i, key, value);
}

static void h_metric_add(const lintel_instance *self, const char *name, uint64_t delta)
{
    const struct lintel_host_services *svc = lintel_host_services_get();
    if (svc && svc->metrics && self && name)
        lintel_metrics_plugin_add(svc->metrics, self->plugin, self->name, name, delta);
}

static int h_req_info(lintel_req *r, struct lintel_req_info *out)
{
    struct lintel_request *req = REQ(r);
    struct lintel_req_info info = {0};
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    info.struct_size = sizeof(info);
    info.status = req->status;
    info.start_unix_us = req->start_unix_us;
    info.duration_us = (uint64_t)((now.tv_sec - req->start.tv_sec) * 1000000 +
                                  (now.tv_nsec - req->start.tv_nsec) / 1000);
    info.bytes_in = req->body_read;
    info.bytes_out = req->bytes_out;
    info.host = str_of(req->head.host, req->head.host_len);
    info.target = str_of(req->head.target, req->head.target_len);
    info.http_minor = req->head.http_minor;
    if (req->upstream && req->target >= 0) {
        info.upstream = cstr(req->upstream->name);
        info.upstream_addr = cstr(req->upstream->targets[req->target].addr.text);
    }
    info.upstream_connect_us = req->up_connect_us;
    info.upstream_response_us = req->up_response_us;
    size_t n = out->struct_size < sizeof(info) ? out->struct_size : sizeof(info);
    memcpy(out, &info, n);
    out->struct_size = (uint32_t)n;
    return 0;
}

static unsigned h_worker_count(void)
{
    return lintel_host_workers();
}

static unsigned h_req_worker(lintel_req *r)
{
    return REQ(r)->client->worker->id;
}

static int h_req_body_buffer(lintel_req *r, size_t cap)
{
    return lintel_request_buffer_body(REQ(r), cap);
}

static struct lintel_str h_req_body(lintel_req *r)
{
    struct lintel_request *req = REQ(r);
    if (!req->body_buffered)
        return str_of(NULL, 0);
    size_t n = evbuffer_get_length(req->body_buf);
    /* One contiguous copy inside the buffer; stays valid until the body is sent upstream. */
    return str_of(n ? (const char *)evbuffer_pullup(req->body_buf, -1) : "", n);
}

static struct lintel_str h_resp_body_chunk(lintel_req *r)
{
    return REQ(r)->chunk;
}

static int h_resp_body_last(lintel_req *r)
{
    return REQ(r)->chunk_last;
}

/* ---- outbound HTTP, worker timers ------------------------------------------------------- */

struct req_call {
    struct lintel_httpc_call *call; /* NULL once finished */
    lintel_http_fn cb;
    void *arg;
};

static void on_req_call_done(void *arg, const struct lintel_http_response *resp)
{
    struct req_call *rc = arg;
    rc->call = NULL;
    rc->cb(rc->arg, resp);
}

static void req_call_cancel(void *arg)
{
    struct req_call *rc = arg;
    lintel_httpc_cancel(rc->call); /* the request ended first: cb never runs */
}

/* upstream://NAME/rest → http://ADDR/rest, ADDR a target of upstream NAME of cfg that is not
 * down, taken in turn (per worker thread). Other URLs pass unchanged. spec is copied into *out
 * (its url pointing into buf). 0, or -1: no such upstream, every target down, URL too long. */
static _Thread_local unsigned upstream_url_turn;

static int upstream_url(const struct lintel_snapshot *snap, const struct lintel_http_request *spec,
                        struct lintel_http_request *out, char *buf, size_t cap)
{
    static const char scheme[] = "upstream://";
    if (!spec || spec->struct_size < offsetof(struct lintel_http_request, url) + sizeof(char *))
        return -1;
    size_t n = spec->struct_size < sizeof(*out) ? spec->struct_size : sizeof(*out);
    memset(out, 0, sizeof(*out));
    memcpy(out, spec, n);
    out->struct_size = (uint32_t)n;
    if (!spec->url || strncmp(spec->url, scheme, sizeof(scheme) - 1) != 0)
        return 0;
    const char *name = spec->url + sizeof(scheme) - 1;
    size_t nlen = strcspn(name, "/?");
    const char *rest = name + nlen;
    const struct lintel_upstream_conf *up = upstream_named(snap->cfg, name, nlen);
    if (!up || !up->ntargets)
        return -1;
    unsigned char skip[up->ntargets];
    memset(skip, 0, up->ntargets);
    lintel_health_skip_down(snap->health, up, skip);
    for (size_t k = 0; k < up->ntargets; k++) {
        size_t t = (upstream_url_turn + k) % up->ntargets;
        if (skip[t])
            continue;
        upstream_url_turn = (unsigned)(t + 1);
        /* addr.text is "ip:port" ("[ip6]:port"), as the target was written or resolved. */
        int len = snprintf(buf, cap, "http://%s%s%s", up->targets[t].addr.text,
                           *rest == '/' ? "" : "/", rest);
        if (len < 0 || (size_t)len >= cap)
            return -1;
        out->url = buf;
        return 0;
    }
    return -1;
}

static int h_http_call(lintel_req *r, const struct lintel_http_request *spec, lintel_http_fn cb,
                       void *arg)
{
    struct lintel_request *req = REQ(r);
    struct lintel_worker *w = req->client->worker;
    struct req_call *rc = lintel_arena_alloc(req->arena, sizeof(*rc));
    struct lintel_http_request copy;
    char url[4096];
    if (!rc || !cb || !w->httpc || upstream_url(req->ws->snap, spec, &copy, url, sizeof(url)) < 0)
        return -1;
    spec = &copy;
    rc->cb = cb;
    rc->arg = arg;
    rc->call = lintel_httpc_start(w->httpc, spec, on_req_call_done, rc);
    if (!rc->call)
        return -1;
    if (lintel_arena_cleanup_add(req->arena, req_call_cancel, rc) < 0) {
        lintel_httpc_cancel(rc->call);
        return -1;
    }
    return 0;
}

static int h_worker_http_call(const lintel_instance *self, const struct lintel_http_request *spec,
                              lintel_http_fn cb, void *arg)
{
    struct lintel_worker *w = lintel_worker_self();
    struct lintel_http_request copy;
    char url[4096];
    if (!w || !w->current || upstream_url(w->current->snap, spec, &copy, url, sizeof(url)) < 0)
        return -1;
    return lintel_task_http(w, self, &copy, cb, arg);
}

static lintel_timer *h_worker_timer(const lintel_instance *self, uint64_t ms, int repeat,
                                    lintel_timer_fn fn, void *arg)
{
    return lintel_task_timer(lintel_worker_self(), self, ms, repeat, fn, arg);
}

/* ---- shared state ------------------------------------------------------------------------- */

static struct lintel_shared *shared_store(void)
{
    const struct lintel_host_services *svc = lintel_host_services_get();
    return svc ? svc->shared : NULL;
}

static int h_counter_add(const lintel_instance *self, const char *key, int64_t delta,
                         uint64_t window_ms, int64_t *value, uint64_t *reset_ms)
{
    struct lintel_shared *s = shared_store();
    if (!s || !self)
        return -1;
    return lintel_shared_counter_add(s, self->ns, key, delta, window_ms, value, reset_ms);
}

static int h_cache_set(const lintel_instance *self, const char *key, const void *value, size_t len,
                       uint64_t ttl_ms)
{
    struct lintel_shared *s = shared_store();
    if (!s || !self)
        return -1;
    return lintel_shared_cache_set(s, self->ns, key, value, len, ttl_ms);
}

static long h_cache_get(const lintel_instance *self, const char *key, void *buf, size_t cap)
{
    struct lintel_shared *s = shared_store();
    if (!s || !self)
        return -1;
    return (long)lintel_shared_cache_get(s, self->ns, key, buf, cap);
}

static int h_counter_window(const lintel_instance *self, const char *key, int64_t delta,
                            uint64_t window_ms, struct lintel_counter_window *out)
{
    struct lintel_shared *s = shared_store();
    struct lintel_shared_window w;
    if (!s || !self || lintel_shared_counter_window(s, self->ns, key, delta, window_ms, &w) != 0)
        return -1;
    if (!out)
        return 0;
    struct lintel_counter_window full = {.struct_size = sizeof(full),
                                         .value = w.value,
                                         .previous = w.previous,
                                         .elapsed_ms = w.elapsed_ms,
                                         .reset_ms = w.reset_ms};
    size_t n = out->struct_size < sizeof(full) ? out->struct_size : sizeof(full);
    memcpy(out, &full, n);
    out->struct_size = (uint32_t)n;
    return 0;
}

static int h_cache_add(const lintel_instance *self, const char *key, const void *value, size_t len,
                       uint64_t ttl_ms)
{
    struct lintel_shared *s = shared_store();
    if (!s || !self)
        return -1;
    return lintel_shared_cache_add(s, self->ns, key, value, len, ttl_ms);
}

/* ---- consumers and secrets ---------------------------------------------------------------- */

static const struct lintel_ynode *consumers_of(const lintel_instance *self)
{
    return self && self->consumers ? self->consumers : NULL;
}

static size_t h_consumer_count(const lintel_instance *self)
{
    const struct lintel_ynode *c = consumers_of(self);
    return c ? c->len : 0;
}

static int h_consumer_at(const lintel_instance *self, size_t i, struct lintel_consumer *out)
{
    return lintel_consumer_read(consumers_of(self), i, out);
}

static long h_secret(const lintel_instance *self, const lintel_cfg *node, char *buf, size_t cap)
{
    return lintel_secret_resolve(lintel_cfg_str(node), buf, cap);
}

static lintel_watch *h_worker_watch(const lintel_instance *self, int fd, int events,
                                    lintel_watch_fn fn, void *arg)
{
    return lintel_task_watch(lintel_worker_self(), self, fd, events, fn, arg);
}

/* ---- ABI 1.1 ------------------------------------------------------------------------------ */

static uint64_t h_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *h_instance_name(const lintel_instance *self)
{
    return self ? self->name : NULL;
}

static int h_resp_header_at(lintel_req *r, size_t i, struct lintel_str *name,
                            struct lintel_str *value)
{
    struct lintel_request *req = REQ(r);
    if (!has_response(req) || !name || !value)
        return -1;
    const struct lintel_headers *hs = &req->resp.headers;
    for (size_t k = 0; k < hs->n; k++) {
        if (hs->v[k].flags & (LINTEL_HDR_DELETED | LINTEL_HDR_HOP))
            continue;
        if (i-- == 0) {
            *name = str_of(hs->v[k].name, hs->v[k].name_len);
            *value = str_of(hs->v[k].value, hs->v[k].value_len);
            return 0;
        }
    }
    return -1;
}

static int h_upstream_failure(lintel_req *r)
{
    return REQ(r)->up_failure;
}

static int h_resend(lintel_req *r)
{
    struct lintel_request *req = REQ(r);
    /* Only a body that is still here can go again: none, or one a plugin buffered. */
    bool body_kept = req->body_buffered || (req->body_done && req->body_read == 0);
    if (req->phase != LINTEL_PHASE_RESPONSE_HEADERS || !req->in_handler || req->resending ||
        req->resends >= 2 || !body_kept || !req->upstream || req->resp_state != RESP_WAIT_HEAD)
        return -1;
    lintel_upstream_detach(req); /* the dropped response's body is not wanted */
    if (req->target >= 0) {
        lintel_balancer_release(req->balancer, req->target);
        req->target = -1;
    }
    req->forced_target = -1;
    req->resends++;
    req->resending = true;
    return 0;
}

static int h_upstream_healthy(lintel_req *r, const char *name)
{
    struct lintel_request *req = REQ(r);
    const struct lintel_config *cfg = req->ws->snap->cfg;
    const struct lintel_upstream_conf *up = name ? upstream_named(cfg, name, strlen(name)) : NULL;
    if (!up)
        return -1;
    unsigned char skip[up->ntargets ? up->ntargets : 1];
    memset(skip, 0, sizeof(skip));
    size_t down = lintel_health_skip_down(req->ws->snap->health, up, skip);
    return (int)(up->ntargets - down);
}

static void h_metric_set(const lintel_instance *self, const char *name, int64_t value)
{
    const struct lintel_host_services *svc = lintel_host_services_get();
    if (svc && svc->metrics && self && name)
        lintel_metrics_plugin_set(svc->metrics, self->plugin, self->name, name, value);
}

static int h_upstream_exists(const lintel_instance *self, const char *name)
{
    return self && self->cfg && name && upstream_named(self->cfg, name, strlen(name));
}

static const struct lintel_host_api api = {
    .struct_size = sizeof(struct lintel_host_api),
    .abi_major = LINTEL_ABI_MAJOR,
    .abi_minor = LINTEL_ABI_MINOR,
    .log = h_log,
    .cfg_type = lintel_cfg_type,
    .cfg_get = lintel_cfg_get,
    .cfg_len = lintel_cfg_len,
    .cfg_at = lintel_cfg_at,
    .cfg_key_at = lintel_cfg_key_at,
    .cfg_str = lintel_cfg_str,
    .cfg_int = lintel_cfg_int,
    .cfg_bool = lintel_cfg_bool,
    .cfg_duration_ms = lintel_cfg_duration_ms,
    .cfg_size = lintel_cfg_size,
    .cfg_error = h_cfg_error,
    .req_method = h_req_method,
    .req_set_method = h_req_set_method,
    .req_path = h_req_path,
    .req_set_path = h_req_set_path,
    .req_query = h_req_query,
    .req_set_query = h_req_set_query,
    .req_arg = h_req_arg,
    .req_cookie = h_req_cookie,
    .req_header = h_req_header,
    .req_header_at = h_req_header_at,
    .req_header_set = h_req_header_set,
    .req_header_add = h_req_header_add,
    .req_header_remove = h_req_header_remove,
    .req_client_addr = h_req_client_addr,
    .req_route = h_req_route,
    .req_id = h_req_id,
    .consumer_set = h_consumer_set,
    .consumer_name = h_consumer_name,
    .consumer_id = h_consumer_id,
    .ctx_get = h_ctx_get,
    .ctx_set = h_ctx_set,
    .alloc = h_alloc,
    .respond = h_respond,
    .resp_status = h_resp_status,
    .resp_set_status = h_resp_set_status,
    .resp_header = h_resp_header,
    .resp_header_set = h_resp_header_set,
    .resp_header_add = h_resp_header_add,
    .resp_header_remove = h_resp_header_remove,
    .set_upstream = h_set_upstream,
    .upstream_name = h_upstream_name,
    .resume = h_resume,
    .req_timer = h_req_timer,
    .log_field = h_log_field,
    .log_field_at = h_log_field_at,
    .metric_add = h_metric_add,
    .req_info = h_req_info,
    .req_worker = h_req_worker,
    .req_body_buffer = h_req_body_buffer,
    .req_body = h_req_body,
    .resp_body_chunk = h_resp_body_chunk,
    .resp_body_last = h_resp_body_last,
    .http_call = h_http_call,
    .worker_http_call = h_worker_http_call,
    .worker_timer = h_worker_timer,
    .timer_stop = lintel_task_timer_stop,
    .counter_add = h_counter_add,
    .cache_set = h_cache_set,
    .cache_get = h_cache_get,
    .consumer_count = h_consumer_count,
    .consumer_at = h_consumer_at,
    .secret = h_secret,
    .worker_watch = h_worker_watch,
    .watch_set = lintel_task_watch_set,
    .watch_stop = lintel_task_watch_stop,
    .worker_count = h_worker_count,
    .set_target = h_set_target,
    .now_ms = h_now_ms,
    .instance_name = h_instance_name,
    .resp_header_at = h_resp_header_at,
    .upstream_failure = h_upstream_failure,
    .resend = h_resend,
    .upstream_healthy = h_upstream_healthy,
    .metric_set = h_metric_set,
    .counter_window = h_counter_window,
    .cache_add = h_cache_add,
    .upstream_exists = h_upstream_exists,
};

const struct lintel_host_api *lintel_host_api_get(void)
{
    return &api;
}
