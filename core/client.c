/* Client connections: reading request heads and bodies, answering in order, keepalive, timeouts,
 * and gateway-made error responses. The upstream half of a request lives in upstream.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <http_parser.h>
#include <openssl/err.h>

#include "balance.h" /* lintel_hash64 */
#include "clock.h"
#include "headwrite.h"
#include "log.h"
#include "metrics.h"
#include "proxy-internal.h"
#include "tls.h"

static void parse_heads(struct lintel_client *c);
static void client_free(struct lintel_client *c);
static void handshake_done(struct lintel_client *c);

static const struct lintel_config *client_cfg(const struct lintel_client *c)
{
    return c->req && c->req->ws ? c->req->ws->snap->cfg : c->worker->current->snap->cfg;
}

static struct timeval ms_tv(uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

static void arm_timer(struct lintel_client *c, bool header, uint64_t ms)
{
    struct timeval tv = ms_tv(ms);
    c->timer_is_header = header;
    evtimer_add(c->timer, &tv);
}

/* ---- requests ---------------------------------------------------------------------------- */

/* Unique within the process (worker id + sequence), unpredictable across restarts (seed). */
/* Unique within the process (worker id + sequence), unpredictable across restarts (seed):
 * "%016llx%02x%014llx" of seed, worker, sequence, written without printf. */
static void request_id(struct lintel_worker *w, char out[33])
{
    struct lintel_hw id = {out};
    lintel_hw_hex(&id, w->id_seed, 16);
    lintel_hw_hex(&id, w->id & 0xff, 2);
    lintel_hw_hex(&id, ++w->request_seq, 14);
    *id.p = '\0';
}

static struct lintel_request *request_new(struct lintel_client *c)
{
    struct lintel_worker *w = c->worker;
    struct lintel_arena *a = lintel_worker_arena(w);
    if (!a)
        return NULL;
    struct lintel_request *req = lintel_arena_calloc(a, sizeof(*req));
    if (!req) {
        lintel_worker_arena_done(w, a);
        return NULL;
    }
    req->arena = a;
    req->client = c;
    req->ws = w->current;
    lintel_wsnap_ref(req->ws);
    req->target = -1;
    req->forced_target = -1;
    req->status = 0;
    clock_gettime(CLOCK_MONOTONIC, &req->start);
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    req->start_unix_us = (uint64_t)wall.tv_sec * 1000000 + (uint64_t)wall.tv_nsec / 1000;
    request_id(w, req->id);
    req->id_value = req->id;
    c->req = req;
    return req;
}

static void request_free(struct lintel_request *req)
{
    struct lintel_worker *w = req->client->worker;
    if (w->metrics) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        uint64_t us = (uint64_t)((now.tv_sec - req->start.tv_sec) * 1000000 +
                                 (now.tv_nsec - req->start.tv_nsec) / 1000);
        lintel_metrics_request(w->metrics, req->route ? req->route->name : "", req->status, us);
    }
    lintel_phases_end(req);
    if (req->body_buf)
        evbuffer_free(req->body_buf);
    if (req->target >= 0)
        lintel_balancer_release(req->balancer, req->target);
    lintel_wsnap_unref(req->ws);
    req->client->req = NULL;
    lintel_worker_arena_done(w, req->arena);
}

/* The request is over (its response is queued): keep the connection for the next one or close. */
static void request_finish(struct lintel_request *req)
{
    struct lintel_client *c = req->client;
    bool close = req->close_after || c->worker->draining;
    request_free(req);
    c->requests++;
    lintel_fastio_set_timeouts(c->bev, NULL, NULL); /* a body timeout, if one was set */
    if (close) {
        c->state = CLIENT_CLOSING;
        bufferevent_disable(c->bev, EV_READ);
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
            client_free(c);
        return;
    }
    c->state = CLIENT_IDLE;
    arm_timer(c, false, client_cfg(c)->timeouts.keepalive_ms);
    parse_heads(c);
}

static size_t json_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; *s && n + 7 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            out[n++] = '\\';
            out[n++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", ch);
        } else {
            out[n++] = (char)ch;
        }
    }
    out[n] = '\0';
    return n;
}

int lintel_request_set_own(struct lintel_request *req, int status, const char *type,
                           const void *body, size_t len)
{
    char *copy = NULL;
    if (len) {
        copy = lintel_arena_alloc(req->arena, len);
        if (!copy)
            return -1;
        memcpy(copy, body, len);
    }
    /* Replacing a response in RESPONSE_HEADERS: what plugins already set on it stays. */
    struct lintel_headers keep = {0};
    if (req->in_resp_phase)
        for (size_t i = 0; i < req->resp.headers.n; i++) {
            const struct lintel_header *x = &req->resp.headers.v[i];
            if ((x->flags & LINTEL_HDR_SET) && !(x->flags & LINTEL_HDR_DELETED) &&
                lintel_headers_add(&keep, req->arena, x->name, x->name_len, x->value,
                                   x->value_len) == 0)
                keep.v[keep.n - 1].flags |= LINTEL_HDR_SET;
        }
    memset(&req->resp, 0, sizeof(req->resp));
    req->resp.headers = keep;
    req->resp.status = status;
    req->resp.reason = http_status_str((enum http_status)status);
    req->resp.http_major = 1;
    req->resp.http_minor = 1;
    req->own = true;
    req->up_failure = 0; /* a new response: a plugin's, or the caller tags its failure */
    req->own_type = type ? lintel_arena_strndup(req->arena, type, strlen(type))
                    : (len && copy[0] == '{') ? "application/json"
                                              : "text/plain";
    req->own_body = copy;
    req->own_body_len = len;
    return 0;
}

static void write_own(struct lintel_request *req)
{
    struct lintel_client *c = req->client;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    const struct lintel_head *r = &req->resp;
    bool has_type = false;
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", r->status, r->reason ? r->reason : "");
    for (size_t i = 0; i < r->headers.n; i++) {
        const struct lintel_header *x = &r->headers.v[i];
        if (x->flags & (LINTEL_HDR_DELETED | LINTEL_HDR_HOP))
            continue;
        if (!strcasecmp(x->name, "Content-Length") || !strcasecmp(x->name, "Transfer-Encoding") ||
            !strcasecmp(x->name, "Connection") || !strcasecmp(x->name, "X-Request-Id"))
            continue;
        has_type = has_type || !strcasecmp(x->name, "Content-Type");
        evbuffer_add_printf(out, "%s: %s\r\n", x->name, x->value);
    }
    bool bodyless = r->status == 204 || r->status == 304 || r->status < 200;
    if (!has_type && req->own_body_len)
        evbuffer_add_printf(out, "Content-Type: %s\r\n", req->own_type);
    if (!bodyless)
        evbuffer_add_printf(out, "Content-Length: %zu\r\n", req->own_body_len);
    evbuffer_add_printf(out, "X-Request-Id: %s\r\n", req->id_value);
    if (req->close_after || c->worker->draining)
        evbuffer_add(out, "Connection: close\r\n", 19);
    else if (req->head.http_minor == 0 && req->head.method_str)
        evbuffer_add(out, "Connection: keep-alive\r\n", 24);
    evbuffer_add(out, "\r\n", 2);
    if (!bodyless && req->head.method != HTTP_HEAD && req->own_body_len)
        evbuffer_add(out, req->own_body, req->own_body_len);
    req->bytes_out += req->own_body_len;
}

/* The JSON error body every gateway-made error carries. */
static void set_error(struct lintel_request *req, int status, const char *error)
{
    char esc[512], rid[160], body[768];
    json_escape(esc, sizeof(esc), error);
    json_escape(rid, sizeof(rid), req->id_value);
    int blen = snprintf(body, sizeof(body), "{\"status\":%d,\"error\":\"%s\",\"request_id\":\"%s\"}\n",
                        status, esc, rid);
    if (lintel_request_set_own(req, status, "application/json", body, (size_t)blen) < 0) {
        /* Out of memory: the head alone still tells the client what happened. */
        lintel_request_set_own(req, status, "application/json", NULL, 0);
    }
}

void lintel_request_send_own(struct lintel_request *req)
{
    int rc = lintel_phases_response_headers(req);
    if (rc == 2) {
        lintel_request_resend(req);
        return;
    }
    if (rc < 0) {
        char msg[200];
        snprintf(msg, sizeof(msg), "plugin %s/%s failed", req->failed->plugin, req->failed->name);
        lintel_error("%s %s: %s in RESPONSE_HEADERS (request %s)", req->head.method_str,
                     req->head.path, msg, req->id_value);
        set_error(req, 500, msg);
    }
    write_own(req);
    req->status = req->resp.status;
    req->resp_state = RESP_DONE;
    request_finish(req);
}

void lintel_request_fail(struct lintel_request *req, int status, const char *error)
{
    lintel_request_fail_upstream(req, 0, status, error);
}

void lintel_request_resend(struct lintel_request *req)
{
    req->own = false;
    req->own_type = NULL;
    req->own_body = NULL;
    req->own_body_len = 0;
    memset(&req->resp, 0, sizeof(req->resp));
    req->resp_state = RESP_WAIT_HEAD;
    req->resp_phase_done = false;
    req->status = 0;
    req->up_failure = 0;
    req->out = OUT_NONE;
    memset(req->tried, 0, req->upstream->ntargets);
    req->attempts = 0;
    lintel_upstream_start(req);
}

void lintel_request_fail_upstream(struct lintel_request *req, int failure, int status,
                                  const char *error)
{
    if (req->resp_state != RESP_WAIT_HEAD) {
        lintel_request_abort(req, error);
        return;
    }
    struct lintel_client *c = req->client;
    lintel_upstream_detach(req);
    if (!req->body_done)
        req->close_after = true; /* the rest of the body would be read as the next request */
    if (status >= 500)
        lintel_warn("%s %s -> %d %s (route %s, request %s)",
                    req->head.method_str ? req->head.method_str : "-",
                    req->head.path ? req->head.path : "-", status, error,
                    req->route ? req->route->name : "-", req->id_value);
    else
        lintel_info("%s %s -> %d %s (client %s)", req->head.method_str ? req->head.method_str : "-",
                    req->head.path ? req->head.path : "-", status, error, c->ip);
    if (!req->chain && !req->paused)
        lintel_phases_init(req); /* no route: the global plugins still see the answer */
    set_error(req, status, error);
    req->up_failure = failure;
    lintel_request_send_own(req);
}

void lintel_request_abort(struct lintel_request *req, const char *why)
{
    lintel_warn("%s %s: aborted after the response began: %s (request %s)",
                req->head.method_str ? req->head.method_str : "-",
                req->head.path ? req->head.path : "-", why, req->id_value);
    client_free(req->client);
}

void lintel_request_response_done(struct lintel_request *req)
{
    if (!req->body_done)
        req->close_after = true;
    request_finish(req);
}

/* A body problem found while a plugin handler is on the stack (req_body_buffer) must not free
 * the request under it: the answer waits until the handler returns. */
static void body_fail(struct lintel_request *req, int status, const char *error)
{
    if (req->in_handler) {
        req->deferred_status = status;
        req->deferred_error = error ? error : "bad request body";
        return;
    }
    lintel_request_fail(req, status, error ? error : "bad request body");
}

void lintel_request_pump_body(struct lintel_request *req)
{
    struct lintel_client *c = req->client;
    if (req->body_done || (!req->up && !req->buffering))
        return;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    /* A plugin asked for the whole body: it collects here, capped, instead of streaming. */
    struct evbuffer *out = req->buffering ? req->body_buf : bufferevent_get_output(req->up->bev);
    /* limits.body_bytes holds for every body; a buffering plugin's cap can only lower it (a cap
     * of 0 allows an empty body only). */
    uint64_t limit = req->ws->snap->cfg->limits.body_bytes ? req->ws->snap->cfg->limits.body_bytes
                                                           : UINT64_MAX;
    if (req->buffering && req->body_cap < limit)
        limit = req->body_cap;
    char err[128];
    while (!req->body_done && (req->buffering || evbuffer_get_length(out) < LINTEL_OUT_HIGH)) {
        size_t avail = evbuffer_get_length(in);
        if (avail == 0)
            break;
        if (req->head.body == LINTEL_BODY_LENGTH) {
            size_t n = avail < req->body_left ? avail : (size_t)req->body_left;
            if (req->body_read + n > limit)
                goto too_large;
            evbuffer_remove_buffer(in, out, n);
            req->body_left -= n;
            req->body_read += n;
            req->body_done = req->body_left == 0;
            continue;
        }
        struct evbuffer_iovec v;
        evbuffer_peek(in, -1, NULL, &v, 1);
        size_t skip, data;
        int rc = lintel_chunked_step(&req->req_chunked, v.iov_base, v.iov_len, &skip, &data, err,
                                     sizeof(err));
        if (rc < 0) {
            req->close_after = true;
            req->body_done = true; /* nothing more is read from this connection */
            body_fail(req, 400, lintel_arena_strndup(req->arena, err, strlen(err)));
            return;
        }
        evbuffer_drain(in, skip);
        if (data) {
            req->body_read += data;
            if (req->body_read > limit)
                goto too_large;
            if (!req->buffering)
                evbuffer_add_printf(out, "%zx\r\n", data);
            evbuffer_remove_buffer(in, out, data);
            if (!req->buffering)
                evbuffer_add(out, "\r\n", 2);
        }
        if (rc == 1) {
            if (!req->buffering)
                evbuffer_add(out, "0\r\n\r\n", 5);
            req->body_done = true;
        }
    }
    if (!req->body_done)
        return;
    lintel_fastio_set_timeouts(c->bev, NULL, NULL);
    if (req->buffering) {
        /* The upstream gets the collected body with a Content-Length. */
        req->buffering = false;
        req->body_buffered = true;
        req->head.body = LINTEL_BODY_LENGTH;
        req->head.content_length = evbuffer_get_length(req->body_buf);
        lintel_phases_body_buffered(req);
        return;
    }
    lintel_upstream_request_sent(req);
    return;
too_large:
    req->close_after = true;
    req->body_done = true;
    body_fail(req, 413, "request body too large");
}

/* ---- heads ------------------------------------------------------------------------------- */

/* Host without port, lowercased into the arena. */
static const char *host_key(struct lintel_request *req, size_t *len)
{
    const char *h = req->head.host;
    if (!h) {
        *len = 0;
        return NULL;
    }
    size_t n = req->head.host_len;
    if (n && h[0] == '[') { /* [v6]:port */
        const char *e = memchr(h, ']', n);
        n = e ? (size_t)(e - h) + 1 : n;
    } else {
        const char *colon = memchr(h, ':', n);
        if (colon)
            n = (size_t)(colon - h);
    }
    char *k = lintel_arena_alloc(req->arena, n + 1);
    if (!k) {
        *len = 0;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        k[i] = (h[i] >= 'A' && h[i] <= 'Z') ? (char)(h[i] + 32) : h[i];
    k[n] = '\0';
    *len = n;
    return k;
}

static const char *match_header(void *ctx, const char *name, size_t *value_len)
{
    struct lintel_header *h = lintel_headers_get(ctx, name, strlen(name));
    if (!h)
        return NULL;
    *value_len = h->value_len;
    return h->value;
}

static bool request_id_ok(const struct lintel_header *h)
{
    if (h->value_len == 0 || h->value_len > 128)
        return false;
    for (size_t i = 0; i < h->value_len; i++)
        if (h->value[i] <= 0x20 || h->value[i] >= 0x7f || h->value[i] == '"' ||
            h->value[i] == '\\')
            return false;
    return true;
}

/* A complete head is at p[0..n): route the request and start it. */
static void request_begin(struct lintel_client *c, struct lintel_request *req, const char *p,
                          size_t n, size_t consumed)
{
    const struct lintel_config *cfg = req->ws->snap->cfg;
    struct lintel_head_limits lim = {cfg->limits.header_bytes, cfg->limits.headers};
    char err[256];
    int rc = lintel_head_parse(&req->head, true, p, n, &lim, req->arena, err, sizeof(err));
    evbuffer_drain(bufferevent_get_input(c->bev), consumed);
    c->state = CLIENT_REQUEST;
    if (rc) {
        req->close_after = true;
        req->body_done = true;
        lintel_request_fail(req, rc, err);
        return;
    }
    struct lintel_header *rid = lintel_headers_get(&req->head.headers, "X-Request-Id", 12);
    if (rid && request_id_ok(rid))
        req->id_value = rid->value;
    else if (rid)
        rid->flags |= LINTEL_HDR_DELETED;

    switch (req->head.body) {
    case LINTEL_BODY_LENGTH:
        req->body_left = req->head.content_length;
        req->body_done = req->body_left == 0;
        if (cfg->limits.body_bytes && req->head.content_length > cfg->limits.body_bytes) {
            req->body_done = true;
            req->close_after = true;
            lintel_request_fail(req, 413, "request body too large");
            return;
        }
        break;
    case LINTEL_BODY_CHUNKED:
        lintel_chunked_init(&req->req_chunked);
        break;
    default:
        req->body_done = true;
        break;
    }
    if (!req->head.keepalive)
        req->close_after = true;

    struct lintel_match_req q = {
        .path = req->head.path,
        .path_len = req->head.path_len,
        .method = req->head.method,
        .header = match_header,
        .header_ctx = &req->head.headers,
    };
    q.host = host_key(req, &q.host_len);
    switch (lintel_router_match(req->ws->snap->routers[c->worker->id], &q, &req->route, &req->prefix_len)) {
    case LINTEL_MATCH_NOT_FOUND:
        lintel_request_fail(req, 404, "no route");
        return;
    case LINTEL_MATCH_METHOD_NOT_ALLOWED:
        lintel_request_fail(req, 405, "method not allowed");
        return;
    case LINTEL_MATCH_FOUND:
        break;
    }
    req->upstream = req->route->upstream;
    req->balancer = req->ws->balancers[req->upstream->index];
    req->tried = lintel_arena_calloc(req->arena, req->upstream->ntargets);
    if (!req->tried) {
        lintel_request_fail(req, 500, "out of memory");
        return;
    }
    if (lintel_phases_init(req) < 0) {
        lintel_request_fail(req, 500, "out of memory");
        return;
    }
    lintel_phases_run(req);
}

/* Starts reading the request body: answers Expect: 100-continue (once, and only now that the
 * request is accepted) and arms the body timeout. */
static void begin_body(struct lintel_request *req)
{
    struct lintel_client *c = req->client;
    if (req->head.expect_continue) {
        req->head.expect_continue = false;
        struct lintel_header *e = lintel_headers_get(&req->head.headers, "Expect", 6);
        if (e)
            e->flags |= LINTEL_HDR_DELETED; /* answered here, not by the upstream */
        if (!req->body_done && req->head.http_minor >= 1)
            evbuffer_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
    if (!req->body_done) {
        struct timeval tv = ms_tv(req->ws->snap->cfg->timeouts.client_body_ms);
        bufferevent_set_timeouts(c->bev, &tv, NULL);
    }
}

void lintel_request_proceed(struct lintel_request *req)
{
    struct lintel_client *c = req->client;
    unsigned served = c->requests;
    begin_body(req);
    lintel_upstream_start(req);
    /* upstream_start may have ended req (an error answer) and begun the next pipelined request,
     * whose struct can sit at req's address (arenas are recycled): compare the count too. */
    if (c->req == req && c->requests == served && !req->body_buffered)
        lintel_request_pump_body(req);
}

int lintel_request_buffer_body(struct lintel_request *req, uint64_t cap)
{
    if (req->body_buffered)
        return 1;
    if (req->phase > LINTEL_PHASE_BALANCE || req->up)
        return -1;
    if (req->body_done && !req->buffering) {
        /* No body (or an empty one): it is complete already, and empty. */
        req->body_buf = req->body_buf ? req->body_buf : evbuffer_new();
        if (!req->body_buf)
            return -1;
        req->body_buffered = true;
        return 1;
    }
    if (!req->body_buf) {
        req->body_buf = evbuffer_new();
        if (!req->body_buf)
            return -1;
    }
    req->body_cap = cap;
    req->buffering = true;
    req->rerun = true;
    begin_body(req);
    lintel_request_pump_body(req);
    if (req->deferred_status)
        return -1;
    if (req->body_buffered)
        req->rerun = false; /* complete at once: no pause, nothing to re-run */
    return req->body_buffered ? 1 : 0;
}

static void parse_heads_loop(struct lintel_client *c);

/* Reads as many request heads as are complete while the connection is idle. */
static void parse_heads(struct lintel_client *c)
{
    if (c->parsing)
        return; /* a request ended inside this loop: the loop goes on with the next head */
    c->parsing = true;
    parse_heads_loop(c);
    c->parsing = false;
    if (c->dead)
        client_free(c);
}

static void parse_heads_loop(struct lintel_client *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    while (c->state == CLIENT_IDLE && !c->dead) {
        /* A client that pipelines without reading gets no more answers until it reads. */
        if (evbuffer_get_length(out) >= LINTEL_OUT_HIGH)
            return;
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            return;
        const struct lintel_config *cfg = client_cfg(c);
        struct lintel_head_limits lim = {cfg->limits.header_bytes, cfg->limits.headers};
        size_t scan = len < cfg->limits.header_bytes + 1024 ? len : cfg->limits.header_bytes + 1024;
        const char *p = (const char *)evbuffer_pullup(in, (ssize_t)scan);
        size_t skip = 0;
        char err[128];
        ssize_t n = lintel_head_find_end(p, scan, &lim, &skip, err, sizeof(err));
        /* The header timeout runs from the first byte of an incomplete head. A head that is
         * complete when first seen (the common case) costs no timer change: the keepalive (or
         * header) timer left pending meanwhile finds the connection busy and does nothing (see
         * on_client_timer), and request_finish arms the next keepalive timeout. */
        if (n == 0) {
            if (!c->timer_is_header)
                arm_timer(c, true, cfg->timeouts.client_header_ms);
            return;
        }
        struct lintel_request *req = request_new(c);
        if (!req) {
            lintel_error("out of memory for a request from %s", c->ip);
            client_free(c);
            return;
        }
        if (n < 0) {
            c->state = CLIENT_REQUEST;
            req->close_after = true;
            req->body_done = true;
            lintel_request_fail(req, n == -1 ? 400 : 431, err);
            return;
        }
        request_begin(c, req, p + skip, (size_t)n, skip + (size_t)n);
    }
}

/* ---- connection caps ----------------------------------------------------------------------- */

/* Open connections per client address, per worker: a chained hash of the address text. */
#define IPCOUNT_BUCKETS 1024
/* A connection refused past a cap is answered (503 / 429, Connection: close), its write side shut,
 * and its input read and dropped for up to REFUSAL_LINGER_MS, so that the answer is not lost to
 * the reset a close with unread input sends. At most MAX_REFUSALS at once per worker (and at most
 * REFUSAL_READ_MAX bytes read from each); past that a refused connection is closed at once. */
#define MAX_REFUSALS 64
#define REFUSAL_LINGER_MS 1000
#define REFUSAL_READ_MAX (64 * 1024)

struct ipcount {
    struct ipcount *next;
    unsigned n;
    char ip[64];
};

struct lintel_ipcounts {
    struct ipcount *b[IPCOUNT_BUCKETS];
};

struct lintel_refusal {
    struct lintel_refusal *prev, *next; /* worker->refusals */
    struct lintel_worker *w;
    struct event *ev;
    int fd;
    size_t read;
    uint64_t deadline_ms;
};

static struct ipcount **ipcount_slot(struct lintel_ipcounts *t, const char *ip)
{
    struct ipcount **p = &t->b[lintel_hash64(ip, strlen(ip)) % IPCOUNT_BUCKETS];
    while (*p && strcmp((*p)->ip, ip) != 0)
        p = &(*p)->next;
    return p;
}

static unsigned ipcount_get(struct lintel_worker *w, const char *ip)
{
    struct ipcount *e = w->ipcounts ? *ipcount_slot(w->ipcounts, ip) : NULL;
    return e ? e->n : 0;
}

/* Counts one more connection from ip. Returns 0, or -1 when out of memory. */
static int ipcount_add(struct lintel_worker *w, const char *ip)
{
    if (!w->ipcounts && !(w->ipcounts = calloc(1, sizeof(*w->ipcounts))))
        return -1;
    struct ipcount **p = ipcount_slot(w->ipcounts, ip);
    if (!*p) {
        if (!(*p = calloc(1, sizeof(**p))))
            return -1;
        snprintf((*p)->ip, sizeof((*p)->ip), "%s", ip);
    }
    (*p)->n++;
    return 0;
}

static void ipcount_del(struct lintel_worker *w, const char *ip)
{
    struct ipcount **p = w->ipcounts ? ipcount_slot(w->ipcounts, ip) : NULL;
    if (!p || !*p || --(*p)->n)
        return;
    struct ipcount *e = *p;
    *p = e->next;
    free(e);
}

static void refusal_free(struct lintel_refusal *r)
{
    struct lintel_worker *w = r->w;
    if (r->prev)
        r->prev->next = r->next;
    else
        w->refusals = r->next;
    if (r->next)
        r->next->prev = r->prev;
    w->nrefusals--;
    event_free(r->ev);
    close(r->fd);
    free(r);
}

static void on_refusal(evutil_socket_t fd, short what, void *arg)
{
    struct lintel_refusal *r = arg;
    uint64_t now = lintel_mono_ms();
    if ((what & EV_READ) && now < r->deadline_ms) {
        char buf[4096];
        ssize_t n;
        while (r->read < REFUSAL_READ_MAX && (n = read(fd, buf, sizeof(buf))) > 0)
            r->read += (size_t)n;
        if (r->read < REFUSAL_READ_MAX && n < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct timeval tv = {(time_t)((r->deadline_ms - now) / 1000),
                                 (suseconds_t)((r->deadline_ms - now) % 1000) * 1000};
            if (event_add(r->ev, &tv) == 0)
                return;
        }
    }
    refusal_free(r); /* EOF, error, too much input or the linger time is over */
}

/* Answers a new connection with status and the JSON error, then closes it (see MAX_REFUSALS).
 * TLS connections are closed at once: an answer needs a handshake the cap is there to avoid. */
static void refuse(struct lintel_worker *w, int fd, bool tls, int status, const char *error,
                   const char *ip, const char *limit)
{
    const struct lintel_host_services *svc = lintel_host_services_get();
    if (svc && svc->metrics)
        lintel_metrics_plugin_add(svc->metrics, "lintel", "limits", limit, 1);
    uint64_t now = lintel_mono_ms();
    if (now - w->refusal_logged_ms >= 1000) {
        w->refusal_logged_ms = now;
        lintel_warn("refused a connection from %s: limits.%s reached (%d); further refusals "
                    "this second are not logged",
                    ip, limit, status);
    }
    if (tls || w->nrefusals >= MAX_REFUSALS) {
        close(fd);
        return;
    }
    char id[33], body[256], msg[512];
    request_id(w, id);
    int blen = snprintf(body, sizeof(body), "{\"status\":%d,\"error\":\"%s\",\"request_id\":\"%s\"}\n",
                        status, error, id);
    int n = snprintf(msg, sizeof(msg),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                     "Retry-After: 1\r\nX-Request-Id: %s\r\nConnection: close\r\n\r\n%s",
                     status, http_status_str((enum http_status)status), blen, id, body);
    struct lintel_refusal *r = NULL;
    /* A new socket's send buffer takes these few hundred bytes whole. */
    if (write(fd, msg, (size_t)n) != n || shutdown(fd, SHUT_WR) < 0 ||
        !(r = calloc(1, sizeof(*r))) ||
        !(r->ev = event_new(w->base, fd, EV_READ, on_refusal, r))) {
        free(r);
        close(fd);
        return;
    }
    r->w = w;
    r->fd = fd;
    r->deadline_ms = now + REFUSAL_LINGER_MS;
    struct timeval tv = {REFUSAL_LINGER_MS / 1000, (REFUSAL_LINGER_MS % 1000) * 1000};
    if (event_add(r->ev, &tv) < 0) {
        event_free(r->ev);
        free(r);
        close(fd);
        return;
    }
    r->next = w->refusals;
    if (w->refusals)
        w->refusals->prev = r;
    w->refusals = r;
    w->nrefusals++;
}

/* ---- connection -------------------------------------------------------------------------- */

static void on_client_read(struct bufferevent *bev, void *arg)
{
    struct lintel_client *c = arg;
    handshake_done(c); /* bytes arrived: the handshake is over */
    switch (c->state) {
    case CLIENT_IDLE:
        parse_heads(c);
        break;
    case CLIENT_REQUEST:
        /* Body bytes go on; bytes of a pipelined next request wait in the buffer. */
        lintel_request_pump_body(c->req);
        break;
    case CLIENT_CLOSING:
        evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
        break;
    }
}

static void on_client_write(struct bufferevent *bev, void *arg)
{
    struct lintel_client *c = arg;
    switch (c->state) {
    case CLIENT_CLOSING:
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            client_free(c);
        break;
    case CLIENT_REQUEST:
        if (c->req->resp_state == RESP_BODY)
            lintel_upstream_pump_response(c->req);
        break;
    case CLIENT_IDLE:
        parse_heads(c);
        break;
    }
}

static void handshake_done(struct lintel_client *c)
{
    if (c->handshake_ws) {
        lintel_wsnap_unref(c->handshake_ws);
        c->handshake_ws = NULL;
    }
}

static void on_client_event(struct bufferevent *bev, short what, void *arg)
{
    struct lintel_client *c = arg;
    struct lintel_request *req = c->req;
    if (what & BEV_EVENT_CONNECTED) { /* TLS handshake complete */
        handshake_done(c);
        return;
    }
    if (c->tls && (what & BEV_EVENT_ERROR) && !req) {
        unsigned long e = bufferevent_get_openssl_error(bev);
        if (e) {
            char buf[256];
            ERR_error_string_n(e, buf, sizeof(buf));
            lintel_debug("TLS from %s: %s", c->ip, buf);
        }
    }
    if ((what & BEV_EVENT_EOF) && req && req->body_done && c->state == CLIENT_REQUEST) {
        /* Half-close after a complete request: answer it, then close. */
        req->close_after = true;
        return;
    }
    if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) && req &&
        c->state == CLIENT_REQUEST && !req->body_done) {
        req->body_done = true;
        req->close_after = true;
        lintel_request_fail(req, 408, "client body timeout");
        return;
    }
    if (req && (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        lintel_info("client %s went away during %s %s (request %s)", c->ip,
                    req->head.method_str ? req->head.method_str : "-",
                    req->head.path ? req->head.path : "-", req->id_value);
    client_free(c);
}

static void on_client_timer(evutil_socket_t fd, short what, void *arg)
{
    struct lintel_client *c = arg;
    if (c->state != CLIENT_IDLE)
        return; /* a timer left pending when a request started: request_finish re-arms */
    if (c->timer_is_header && evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
        struct lintel_request *req = request_new(c);
        if (req) {
            c->state = CLIENT_REQUEST;
            req->close_after = true;
            req->body_done = true;
            lintel_request_fail(req, 408, "client header timeout");
            return;
        }
    }
    client_free(c); /* idle keepalive connection (or a connection that never sent anything) */
}

void lintel_client_accept(struct lintel_worker *w, size_t listen_index, int fd,
                          const struct sockaddr *sa, int salen)
{
    const struct lintel_snapshot *snap = w->current->snap;
    const struct lintel_config *cfg = snap->cfg;
    struct lintel_tls *tls = listen_index < cfg->nlisten ? snap->tls[listen_index] : NULL;
    char ip[64];
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof(ip));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip, sizeof(ip));
    else
        snprintf(ip, sizeof(ip), "unix");
    (void)salen;
    /* Caps first: a refused connection costs no client state, buffer or TLS handshake. */
    if (w->nclients >= cfg->limits.connections_per_worker) {
        refuse(w, fd, tls != NULL, 503, "too many connections", ip, "connections_per_worker");
        return;
    }
    if (cfg->limits.connections_per_ip && ipcount_get(w, ip) >= cfg->limits.connections_per_ip) {
        refuse(w, fd, tls != NULL, 429, "too many connections from this address", ip,
               "connections_per_ip");
        return;
    }
    struct lintel_client *c = calloc(1, sizeof(*c));
    if (!c || ipcount_add(w, ip) < 0) {
        free(c);
        close(fd);
        return;
    }
    snprintf(c->ip, sizeof(c->ip), "%s", ip);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->worker = w;
    if (tls) {
        SSL *ssl = lintel_tls_ssl_new(tls);
        c->bev = ssl ? bufferevent_openssl_socket_new(w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                      BEV_OPT_CLOSE_ON_FREE)
                     : NULL;
        if (!c->bev && ssl)
            SSL_free(ssl);
        if (c->bev) {
            /* A client that closes without close_notify still ends its request cleanly. */
            bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
            c->tls = true;
            c->handshake_ws = w->current;
            lintel_wsnap_ref(c->handshake_ws);
        }
    } else {
        c->bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    c->timer = evtimer_new(w->base, on_client_timer, c);
    if (!c->bev || !c->timer) {
        if (c->bev)
            bufferevent_free(c->bev);
        else
            close(fd);
        if (c->timer)
            event_free(c->timer);
        ipcount_del(w, c->ip);
        free(c);
        return;
    }
    bufferevent_setcb(c->bev, on_client_read, on_client_write, on_client_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, cfg->limits.header_bytes + LINTEL_READ_AHEAD);
    bufferevent_setwatermark(c->bev, EV_WRITE, LINTEL_OUT_LOW, 0);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (!c->tls)
        lintel_fastio_attach(w->fastio, &c->fio, c->bev); /* on failure libevent's paths go on */
    c->state = CLIENT_IDLE;
    arm_timer(c, true, cfg->timeouts.client_header_ms);
    c->next = w->clients;
    if (w->clients)
        w->clients->prev = c;
    w->clients = c;
    w->nclients++;
}

static void client_free(struct lintel_client *c)
{
    struct lintel_worker *w = c->worker;
    if (c->parsing) {
        c->dead = true;
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        return;
    }
    if (c->req) {
        lintel_upstream_detach(c->req);
        request_free(c->req);
    }
    handshake_done(c);
    lintel_fastio_detach(&c->fio);
    bufferevent_free(c->bev);
    event_free(c->timer);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nclients--;
    ipcount_del(w, c->ip);
    free(c);
    lintel_worker_client_closed(w);
}

void lintel_clients_drain(struct lintel_worker *w)
{
    struct lintel_client *c = w->clients, *next;
    for (; c; c = next) {
        next = c->next;
        if (c->state == CLIENT_IDLE && evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
            client_free(c);
        else if (c->req)
            c->req->close_after = true;
    }
}

void lintel_clients_expire(struct lintel_worker *w, uint64_t now_ms, uint64_t drain_ms)
{
    struct lintel_client *c = w->clients, *next;
    for (; c; c = next) {
        next = c->next;
        struct lintel_request *req = c->req;
        if (!req || !req->ws->retired_ms || now_ms < req->ws->retired_ms + drain_ms)
            continue;
        lintel_warn("%s %s: still running %llu ms after a reload (drain timeout): ended "
                    "(request %s)",
                    req->head.method_str ? req->head.method_str : "-",
                    req->head.path ? req->head.path : "-",
                    (unsigned long long)(now_ms - req->ws->retired_ms), req->id_value);
        const struct lintel_host_services *svc = lintel_host_services_get();
        if (svc && svc->metrics)
            lintel_metrics_plugin_add(svc->metrics, "lintel", "reload", "drain_expired", 1);
        req->close_after = true;
        lintel_request_fail(req, 503, "request outlived the reload drain timeout");
    }
}

void lintel_clients_close_all(struct lintel_worker *w)
{
    while (w->clients)
        client_free(w->clients);
    while (w->refusals)
        refusal_free(w->refusals);
    free(w->ipcounts); /* every count went back to 0 with its connection: the buckets are empty */
    w->ipcounts = NULL;
}
