/* The upstream half of a proxied request: choosing a target, connecting (or reusing a pooled
 * connection), retries, sending the head, and relaying the response back with strict framing. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <http_parser.h>

#include "headwrite.h"
#include "health.h"
#include "log.h"
#include "metrics.h"
#include "proxy-internal.h"
#include "tls.h"

static void on_up_read(struct bufferevent *bev, void *arg);
static void on_up_write(struct bufferevent *bev, void *arg);
static void on_up_event(struct bufferevent *bev, short what, void *arg);

static struct timeval ms_tv(uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

static uint64_t since_us(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)((now.tv_sec - t->tv_sec) * 1000000 + (now.tv_nsec - t->tv_nsec) / 1000);
}

static bool idempotent(int method)
{
    switch (method) {
    case HTTP_GET:
    case HTTP_HEAD:
    case HTTP_OPTIONS:
    case HTTP_PUT:
    case HTTP_DELETE:
    case HTTP_TRACE:
        return true;
    default:
        return false;
    }
}

/* ---- the upstream request head ----------------------------------------------------------- */

static bool name_is(const struct lintel_header *h, const char *name, size_t len)
{
    return h->name_len == len && strncasecmp(h->name, name, len) == 0;
}

static const char *hash_key(struct lintel_request *req, size_t *len)
{
    const struct lintel_upstream_conf *up = req->upstream;
    if (up->balance != LINTEL_BALANCE_HASH)
        return NULL;
    switch (up->hash_on) {
    case LINTEL_HASH_HEADER: {
        struct lintel_header *h =
            lintel_headers_get(&req->head.headers, up->hash_name, strlen(up->hash_name));
        if (!h)
            return NULL;
        *len = h->value_len;
        return h->value;
    }
    case LINTEL_HASH_ARG: {
        if (!req->head.query)
            return NULL;
        struct lintel_str v = lintel_query_arg(req->head.query, req->head.query_len, up->hash_name);
        *len = v.len;
        return v.ptr;
    }
    case LINTEL_HASH_COOKIE: {
        struct lintel_str v = lintel_cookie_get(&req->head.headers, up->hash_name);
        *len = v.len;
        return v.ptr;
    }
    case LINTEL_HASH_IP:
        *len = strlen(req->client->ip);
        return req->client->ip;
    }
    return NULL;
}

/* Serialises the head sent upstream into the request's arena (kept for a replay on a stale
 * keepalive connection). Returns 0, or -1 when out of memory. */
static int build_up_head(struct lintel_request *req)
{
    const struct lintel_head *h = &req->head;
    const char *target = req->upstream->targets[req->target].host; /* name (DNS) or address */
    const char *ip = req->client->ip;
    bool strip = req->route->strip_prefix && req->prefix_len && !req->path_rewritten;
    const char *rest = strip ? h->path + req->prefix_len : NULL;
    size_t rest_len = rest ? strlen(rest) : 0, target_len = strlen(target), ip_len = strlen(ip);
    /* An upper bound: what varies is counted here; the fixed lines come to less than 256. */
    size_t cap = strlen(h->method_str) + 1 + 1 + rest_len + h->path_len + 1 + h->query_len + 256 +
                 target_len + ip_len + h->host_len + 2 * sizeof(req->id);
    for (size_t i = 0; i < h->headers.n; i++)
        cap += h->headers.v[i].name_len + h->headers.v[i].value_len + 4;
    char *buf = lintel_arena_alloc(req->arena, cap);
    if (!buf)
        return -1;
    struct lintel_hw w = {buf};
    lintel_hw_put(&w, h->method_str, strlen(h->method_str));
    lintel_hw_lit(&w, " ");
    if (strip) {
        if (*rest != '/')
            lintel_hw_lit(&w, "/");
        lintel_hw_put(&w, rest, rest_len);
    } else if (h->target[0] == '*') {
        lintel_hw_lit(&w, "*"); /* OPTIONS * */
    } else {
        /* path + query, never the raw target: that drops a fragment and turns absolute-form
         * into origin-form. */
        lintel_hw_put(&w, h->path, h->path_len);
    }
    if (h->query && h->target[0] != '*') {
        lintel_hw_lit(&w, "?");
        lintel_hw_put(&w, h->query, h->query_len);
    }
    lintel_hw_lit(&w, " HTTP/1.1\r\n");

    bool xff = false;
    for (size_t i = 0; i < h->headers.n; i++) {
        const struct lintel_header *x = &h->headers.v[i];
        if (x->flags & (LINTEL_HDR_DELETED | LINTEL_HDR_HOP))
            continue;
        if (name_is(x, "Content-Length", 14) || name_is(x, "Transfer-Encoding", 17) ||
            name_is(x, "X-Forwarded-Proto", 17) || name_is(x, "X-Forwarded-Host", 16))
            continue;
        if (name_is(x, "X-Forwarded-For", 15)) {
            xff = true; /* joined below */
            continue;
        }
        lintel_hw_header(&w, x->name, x->name_len, x->value, x->value_len);
    }
    if (!h->host) {
        lintel_hw_lit(&w, "Host: ");
        lintel_hw_put(&w, target, target_len);
        lintel_hw_lit(&w, "\r\n");
    }
    /* Several X-Forwarded-For lines: kept, in order, in one list, with the client last. */
    lintel_hw_lit(&w, "X-Forwarded-For: ");
    for (size_t i = 0; xff && i < h->headers.n; i++) {
        const struct lintel_header *x = &h->headers.v[i];
        if (!(x->flags & (LINTEL_HDR_DELETED | LINTEL_HDR_HOP)) && name_is(x, "X-Forwarded-For", 15)) {
            lintel_hw_put(&w, x->value, x->value_len);
            lintel_hw_lit(&w, ", ");
        }
    }
    lintel_hw_put(&w, ip, ip_len);
    lintel_hw_lit(&w, "\r\n");
    if (req->client->tls)
        lintel_hw_lit(&w, "X-Forwarded-Proto: https\r\n");
    else
        lintel_hw_lit(&w, "X-Forwarded-Proto: http\r\n");
    if (h->host) {
        lintel_hw_lit(&w, "X-Forwarded-Host: ");
        lintel_hw_put(&w, h->host, h->host_len);
        lintel_hw_lit(&w, "\r\n");
    }
    if (req->id_value == req->id)
        lintel_hw_header(&w, "X-Request-Id", 12, req->id, strlen(req->id));
    lintel_hw_lit(&w, "Via: 1.1 lintel\r\n");
    if (h->body == LINTEL_BODY_LENGTH) {
        lintel_hw_lit(&w, "Content-Length: ");
        lintel_hw_u64(&w, h->content_length);
        lintel_hw_lit(&w, "\r\n");
    } else if (h->body == LINTEL_BODY_CHUNKED) {
        lintel_hw_lit(&w, "Transfer-Encoding: chunked\r\n");
    }
    if (req->upstream->keepalive == 0)
        lintel_hw_lit(&w, "Connection: close\r\n");
    lintel_hw_lit(&w, "\r\n");
    req->up_head = buf;
    req->up_head_len = (size_t)(w.p - buf);
    return 0;
}

/* ---- connections ------------------------------------------------------------------------- */

/* A new connection to target t of req's upstream: TLS (handshake included in the connect)
 * when the upstream is https. */
static struct lintel_upconn *upconn_connect(struct lintel_request *req,
                                            const struct lintel_target_conf *t)
{
    struct lintel_worker *w = req->client->worker;
    const struct lintel_sockaddr *a = &t->addr;
    SSL_CTX *ctx = req->upstream->https ? req->ws->snap->upstream_tls[req->upstream->index] : NULL;
    struct lintel_upconn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->worker = w;
    if (ctx) {
        SSL *ssl = lintel_tls_upstream_ssl(ctx, t);
        c->bev = ssl ? bufferevent_openssl_socket_new(w->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                      BEV_OPT_CLOSE_ON_FREE)
                     : NULL;
        if (!c->bev && ssl)
            SSL_free(ssl);
        if (c->bev)
            bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1); /* EOF ends read-to-close */
        c->tls = true;
    } else {
        c->bev = bufferevent_socket_new(w->base, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    if (!c->bev) {
        free(c);
        return NULL;
    }
    /* An immediate failure (no route to host, ...) is reported through the event callback, like
     * a refused connection, so one path handles both. */
    if (bufferevent_socket_connect(c->bev, (const struct sockaddr *)&a->ss, (int)a->len) == 0) {
        int one = 1;
        setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    return c;
}

static void attach(struct lintel_request *req, struct lintel_upconn *c)
{
    const struct lintel_upstream_conf *up = req->upstream;
    const struct lintel_config *cfg = req->ws->snap->cfg;
    req->up = c;
    c->req = req;
    c->got_bytes = false;
    clock_gettime(CLOCK_MONOTONIC, &req->up_start);
    req->up_connect_us = 0;
    c->req_sent = false;
    bufferevent_setcb(c->bev, on_up_read, on_up_write, on_up_event, c);
    /* Pooled connections keep their watermarks: these calls cost nothing when unchanged. */
    lintel_fastio_read_watermark(&c->fio, c->bev, 0, cfg->limits.header_bytes + LINTEL_READ_AHEAD);
    lintel_fastio_write_watermark(c->bev, LINTEL_OUT_LOW, 0);
    /* While connecting, libevent applies the write timeout to the connect; a TLS handshake
     * also waits to read, under the same connect timeout. The read timeout starts once the
     * request is sent (an upload may take longer than read_ms). A request without a body on a
     * connected connection is sent in this loop pass (its head is written at the end of it):
     * its read timeout starts here, and lintel_upstream_request_sent finds nothing to change. */
    struct timeval wt = ms_tv(c->connected ? up->send_ms : up->connect_ms);
    if (c->connected && req->body_done && req->head.body == LINTEL_BODY_NONE) {
        struct timeval rt = ms_tv(up->read_ms);
        bufferevent_set_timeouts(c->bev, &rt, &wt);
    } else {
        bufferevent_set_timeouts(c->bev, c->tls && !c->connected ? &wt : NULL, &wt);
    }
    lintel_fastio_enable(c->bev, EV_READ | EV_WRITE);
}

/* connect_next's failures. */
enum { NO_TARGET = -1, NO_HEALTHY_TARGET = -2 };

/* Passive health checks: what this exchange with the picked target showed. */
static void observe(struct lintel_request *req, enum lintel_health_cause cause, int status)
{
    lintel_health_observe(req->ws->snap->health, req->upstream, req->target, cause, status);
}

/* Picks a target neither tried nor down and attaches a connection to it. Returns 0, or
 * NO_HEALTHY_TARGET when every target left is down, NO_TARGET when none is left (or out of
 * memory); the caller answers. */
static int connect_next(struct lintel_request *req)
{
    size_t klen = 0;
    const char *key = hash_key(req, &klen);
    if (req->target >= 0) {
        lintel_balancer_release(req->balancer, req->target);
        req->target = -1;
    }
    /* Down targets join the tried ones: every balancer passes over both. */
    size_t down = lintel_health_skip_down(req->ws->snap->health, req->upstream, req->tried);
    int t = -1;
    size_t n = req->upstream->ntargets;
    if (req->forced_target >= 0 && !req->tried[req->forced_target]) {
        /* A plugin chose the target (set_target): the balancer still books it, so least_conn
         * counts stay right; a forced target that is down or tried falls back to a normal pick. */
        unsigned char *only = lintel_arena_alloc(req->arena, n);
        if (only) {
            memset(only, 1, n);
            only[req->forced_target] = 0;
            t = lintel_balancer_pick(req->balancer, key, klen, only);
        }
    }
    if (t < 0)
        t = lintel_balancer_pick(req->balancer, key, klen, req->tried);
    if (t < 0)
        return down ? NO_HEALTHY_TARGET : NO_TARGET;
    req->target = t;
    req->tried[t] = 1;
    req->attempts++;
    const struct lintel_target_conf *target = &req->upstream->targets[t];
    struct lintel_upconn *c = lintel_pool_acquire(req->client->worker, target);
    if (!c)
        c = upconn_connect(req, target);
    if (!c)
        return NO_TARGET;
    attach(req, c);
    return 0;
}

void lintel_upstream_start(struct lintel_request *req)
{
    if (req->upstream->ntargets == 0) {
        /* Only host names, none with an address (yet): say which and why. */
        char msg[300];
        snprintf(msg, sizeof(msg), "upstream %s has no address: %s", req->upstream->name,
                 req->upstream->unresolved ? req->upstream->unresolved : "no targets");
        lintel_request_fail(req, 503, msg);
        return;
    }
    int rc = connect_next(req);
    if (rc == NO_HEALTHY_TARGET && req->attempts == 0) {
        lintel_request_fail_upstream(req, LINTEL_UPSTREAM_NO_HEALTHY, 503,
                                     "no healthy upstream target");
        return;
    }
    if (rc < 0) {
        lintel_request_fail_upstream(req, LINTEL_UPSTREAM_ERROR, 502,
                                     "no upstream target available");
        return;
    }
    if (build_up_head(req) < 0) {
        lintel_request_fail(req, 500, "out of memory");
        return;
    }
    struct evbuffer *out = bufferevent_get_output(req->up->bev);
    evbuffer_add(out, req->up_head, req->up_head_len);
    if (req->body_buffered && evbuffer_get_length(req->body_buf)) {
        /* A copy: the body stays for req_body and for a resend. */
        size_t n = evbuffer_get_length(req->body_buf);
        evbuffer_add(out, evbuffer_pullup(req->body_buf, -1), n);
    }
    if (req->body_done)
        lintel_upstream_request_sent(req);
}

void lintel_upstream_request_sent(struct lintel_request *req)
{
    struct lintel_upconn *c = req->up;
    if (!c)
        return;
    c->req_sent = true;
    /* Start the read timeout now: the upstream has everything it needs to answer. */
    if (c->connected && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        struct timeval rt = ms_tv(req->upstream->read_ms);
        struct timeval wt = ms_tv(req->upstream->send_ms);
        lintel_fastio_set_timeouts(c->bev, &rt, &wt); /* often set by attach already */
    }
}

void lintel_upstream_detach(struct lintel_request *req)
{
    if (!req->up)
        return;
    req->up->req = NULL;
    lintel_upconn_free(req->up);
    req->up = NULL;
}

/* Tries the request again on another target after a failed connect. The bytes already queued
 * for the failed connection (head and any body) move over: none of them left this host. */
static bool retry_connect(struct lintel_request *req)
{
    struct lintel_upconn *old = req->up;
    if (req->attempts > req->upstream->retries || !idempotent(req->head.method))
        return false;
    req->up = NULL;
    if (connect_next(req) < 0) {
        req->up = old;
        return false;
    }
    evbuffer_add_buffer(bufferevent_get_output(req->up->bev), bufferevent_get_output(old->bev));
    old->req = NULL;
    lintel_upconn_free(old);
    if (req->body_done)
        lintel_upstream_request_sent(req);
    return true;
}

/* A reused keepalive connection failed before any answer: the upstream most likely closed it
 * just as it was reused. A request without a body is sent again on a fresh connection. */
static bool retry_stale(struct lintel_request *req)
{
    struct lintel_upconn *old = req->up;
    if (!old->reused || old->got_bytes || req->head.body != LINTEL_BODY_NONE ||
        !idempotent(req->head.method))
        return false;
    struct lintel_upconn *c = upconn_connect(req, &req->upstream->targets[req->target]);
    if (!c)
        return false;
    old->req = NULL;
    lintel_upconn_free(old);
    attach(req, c);
    evbuffer_add(bufferevent_get_output(c->bev), req->up_head, req->up_head_len);
    lintel_upstream_request_sent(req);
    return true;
}

/* ---- the response ------------------------------------------------------------------------ */

/* Returns 0, or -1 when out of memory. */
static int write_response_head(struct lintel_request *req)
{
    struct lintel_client *cl = req->client;
    struct evbuffer *out = bufferevent_get_output(cl->bev);
    const struct lintel_head *r = &req->resp;
    const char *reason = r->reason ? r->reason : "";
    size_t reason_len = strlen(reason), id_len = strlen(req->id_value);
    bool pass_length = req->out == OUT_NONE && r->status != 204 && r->body == LINTEL_BODY_LENGTH;
    /* One reservation for the whole head: what varies is counted here; the fixed lines come to
     * less than 160 bytes. */
    size_t cap = reason_len + id_len + 160;
    for (size_t i = 0; i < r->headers.n; i++)
        cap += r->headers.v[i].name_len + r->headers.v[i].value_len + 4;
    struct evbuffer_iovec v;
    if (evbuffer_reserve_space(out, (ev_ssize_t)cap, &v, 1) < 1)
        return -1;
    struct lintel_hw w = {v.iov_base};
    lintel_hw_lit(&w, "HTTP/1.1 ");
    lintel_hw_u64(&w, (uint64_t)(unsigned)r->status);
    lintel_hw_lit(&w, " ");
    lintel_hw_put(&w, reason, reason_len);
    lintel_hw_lit(&w, "\r\n");
    for (size_t i = 0; i < r->headers.n; i++) {
        const struct lintel_header *x = &r->headers.v[i];
        if (x->flags & (LINTEL_HDR_DELETED | LINTEL_HDR_HOP))
            continue;
        if (name_is(x, "Transfer-Encoding", 17) || name_is(x, "X-Request-Id", 12) ||
            (name_is(x, "Content-Length", 14) && !pass_length))
            continue;
        lintel_hw_header(&w, x->name, x->name_len, x->value, x->value_len);
    }
    lintel_hw_lit(&w, "Via: 1.1 lintel\r\n");
    lintel_hw_header(&w, "X-Request-Id", 12, req->id_value, id_len);
    if (req->out == OUT_LENGTH) {
        lintel_hw_lit(&w, "Content-Length: ");
        lintel_hw_u64(&w, req->resp_left);
        lintel_hw_lit(&w, "\r\n");
    } else if (req->out == OUT_CHUNKED) {
        lintel_hw_lit(&w, "Transfer-Encoding: chunked\r\n");
    }
    if (req->close_after || cl->worker->draining)
        lintel_hw_lit(&w, "Connection: close\r\n");
    else if (req->head.http_minor == 0)
        lintel_hw_lit(&w, "Connection: keep-alive\r\n");
    lintel_hw_lit(&w, "\r\n");
    v.iov_len = (size_t)(w.p - (char *)v.iov_base);
    if (evbuffer_commit_space(out, &v, 1) < 0)
        return -1;
    req->status = r->status;
    return 0;
}

/* Shows the next n bytes of in (about to be relayed) to RESPONSE_BODY handlers, piece by piece
 * as they lie in the buffer (no copy). */
static void body_hook(struct lintel_request *req, struct evbuffer *in, size_t n)
{
    if (!req->chain || !(req->chain->phases & (1u << LINTEL_PHASE_RESPONSE_BODY)))
        return;
    struct evbuffer_ptr pos;
    evbuffer_ptr_set(in, &pos, 0, EVBUFFER_PTR_SET);
    while (n > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, (ev_ssize_t)n, &pos, &v, 1) < 1 || v.iov_len == 0)
            return;
        size_t take = v.iov_len < n ? v.iov_len : n;
        lintel_phases_response_body(req, v.iov_base, take, false);
        n -= take;
        evbuffer_ptr_set(in, &pos, take, EVBUFFER_PTR_ADD);
    }
}

/* Decides the framing towards the client once the upstream head is known. */
static void choose_framing(struct lintel_request *req)
{
    bool http11 = req->head.http_minor >= 1;
    req->resp_body = lintel_response_body_kind(&req->resp, req->head.method);
    switch (req->resp_body) {
    case LINTEL_BODY_NONE:
        req->out = OUT_NONE;
        break;
    case LINTEL_BODY_LENGTH:
        req->out = OUT_LENGTH;
        req->resp_left = req->resp.content_length;
        break;
    case LINTEL_BODY_CHUNKED:
        lintel_chunked_init(&req->resp_chunked);
        /* fall through */
    case LINTEL_BODY_CLOSE:
        req->out = http11 ? OUT_CHUNKED : OUT_CLOSE;
        break;
    }
    if (req->out == OUT_CLOSE)
        req->close_after = true;
}

/* The whole response is queued to the client: the upstream connection goes back to its pool if
 * it is clean, and the client side moves on. */
static void response_complete(struct lintel_request *req)
{
    struct lintel_upconn *c = req->up;
    req->resp_state = RESP_DONE;
    if (req->chain && (req->chain->phases & (1u << LINTEL_PHASE_RESPONSE_BODY)))
        lintel_phases_response_body(req, NULL, 0, true);
    if (req->out == OUT_CHUNKED)
        evbuffer_add(bufferevent_get_output(req->client->bev), "0\r\n\r\n", 5);
    if (c) {
        req->up = NULL;
        c->req = NULL;
        bool clean = req->resp.keepalive && req->resp_body != LINTEL_BODY_CLOSE && req->body_done &&
                     c->req_sent &&
                     evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 &&
                     evbuffer_get_length(bufferevent_get_input(c->bev)) == 0;
        if (clean)
            lintel_pool_release(c->worker, &req->upstream->targets[req->target], c,
                                req->upstream->keepalive, req->upstream->idle_ms);
        else
            lintel_upconn_free(c);
    }
    lintel_request_response_done(req);
}

/* Parses the response head. Returns 1 when the head is in, 0 when more bytes are needed, -1 when
 * the request has been answered with an error. */
static int read_response_head(struct lintel_request *req)
{
    struct evbuffer *in = bufferevent_get_input(req->up->bev);
    const struct lintel_config *cfg = req->ws->snap->cfg;
    struct lintel_head_limits lim = {cfg->limits.header_bytes, cfg->limits.headers};
    char err[160], msg[200];
    for (;;) {
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            return 0;
        size_t scan = len < lim.header_bytes + 1024 ? len : lim.header_bytes + 1024;
        const char *p = (const char *)evbuffer_pullup(in, (ssize_t)scan);
        size_t skip = 0;
        ssize_t n = lintel_head_find_end(p, scan, &lim, &skip, err, sizeof(err));
        if (n == 0)
            return 0;
        if (n < 0 || skip) {
            observe(req, LINTEL_HEALTH_INVALID, 0);
            snprintf(msg, sizeof(msg), "invalid upstream response: %s", n < 0 ? err : "bad start");
            lintel_request_fail_upstream(req, LINTEL_UPSTREAM_ERROR, 502, msg);
            return -1;
        }
        memset(&req->resp, 0, sizeof(req->resp));
        int rc = lintel_head_parse(&req->resp, false, p, (size_t)n, &lim, req->arena, err,
                                   sizeof(err));
        evbuffer_drain(in, (size_t)n);
        if (rc) {
            observe(req, LINTEL_HEALTH_INVALID, 0);
            snprintf(msg, sizeof(msg), "invalid upstream response: %s", err);
            lintel_request_fail_upstream(req, LINTEL_UPSTREAM_ERROR, 502, msg);
            return -1;
        }
        if (req->resp.status == 101) {
            observe(req, LINTEL_HEALTH_INVALID, 0);
            lintel_request_fail_upstream(req, LINTEL_UPSTREAM_ERROR, 502,
                                         "upstream switched protocols unasked");
            return -1;
        }
        if (req->resp.status >= 200) {
            observe(req, LINTEL_HEALTH_OK, req->resp.status);
            return 1;
        }
        /* 1xx interim answers: 100 Continue was given by the gateway itself; drop them. */
    }
}

/* The upstream closed and every byte it sent has been relayed. */
static void body_ended_by_eof(struct lintel_request *req)
{
    if (req->resp_body == LINTEL_BODY_CLOSE) {
        req->resp.keepalive = false;
        response_complete(req); /* read-to-close framing: the close ends the body */
        return;
    }
    lintel_request_abort(req, "upstream closed the connection mid-response");
}

void lintel_upstream_pump_response(struct lintel_request *req)
{
    struct lintel_upconn *c = req->up;
    if (!c)
        return;
    if (req->resp_state == RESP_WAIT_HEAD) {
        if (read_response_head(req) <= 0)
            return;
        req->up_response_us = since_us(&req->up_start);
        choose_framing(req);
        int rc = lintel_phases_response_headers(req);
        if (rc == 2) { /* resend(): the handler already let go of this connection */
            lintel_request_resend(req);
            return;
        }
        if (rc != 0) {
            /* A plugin replaced the upstream's answer (or failed on it): the upstream body is
             * not wanted, and the connection cannot be reused mid-response. */
            lintel_upstream_detach(req);
            if (rc < 0) {
                char msg[200];
                snprintf(msg, sizeof(msg), "plugin %s/%s failed", req->failed->plugin,
                         req->failed->name);
                lintel_request_fail(req, 500, msg);
            } else {
                lintel_request_send_own(req);
            }
            return;
        }
        if (write_response_head(req) < 0) {
            lintel_request_abort(req, "out of memory");
            return;
        }
        req->resp_state = RESP_BODY;
        if (req->out == OUT_NONE || (req->out == OUT_LENGTH && req->resp_left == 0)) {
            response_complete(req);
            return;
        }
    }
    if (req->resp_state != RESP_BODY)
        return;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct evbuffer *out = bufferevent_get_output(req->client->bev);
    char err[128];
    while (evbuffer_get_length(out) < LINTEL_OUT_HIGH) {
        size_t avail = evbuffer_get_length(in);
        if (avail == 0) {
            if (c->eof)
                body_ended_by_eof(req);
            return;
        }
        if (req->resp_body == LINTEL_BODY_LENGTH) {
            size_t n = avail < req->resp_left ? avail : (size_t)req->resp_left;
            body_hook(req, in, n);
            evbuffer_remove_buffer(in, out, n);
            req->bytes_out += n;
            req->resp_left -= n;
            if (req->resp_left == 0) {
                response_complete(req);
                return;
            }
            continue;
        }
        if (req->resp_body == LINTEL_BODY_CLOSE) {
            body_hook(req, in, avail);
            if (req->out == OUT_CHUNKED)
                evbuffer_add_printf(out, "%zx\r\n", avail);
            evbuffer_remove_buffer(in, out, avail);
            if (req->out == OUT_CHUNKED)
                evbuffer_add(out, "\r\n", 2);
            req->bytes_out += avail;
            continue;
        }
        struct evbuffer_iovec v;
        evbuffer_peek(in, -1, NULL, &v, 1);
        size_t skip, data;
        int rc = lintel_chunked_step(&req->resp_chunked, v.iov_base, v.iov_len, &skip, &data, err,
                                     sizeof(err));
        if (rc < 0) {
            lintel_request_abort(req, "invalid chunked framing from upstream");
            return;
        }
        evbuffer_drain(in, skip);
        if (data) {
            body_hook(req, in, data);
            if (req->out == OUT_CHUNKED)
                evbuffer_add_printf(out, "%zx\r\n", data);
            evbuffer_remove_buffer(in, out, data);
            if (req->out == OUT_CHUNKED)
                evbuffer_add(out, "\r\n", 2);
            req->bytes_out += data;
        }
        if (rc == 1) {
            response_complete(req);
            return;
        }
    }
}

static void on_up_read(struct bufferevent *bev, void *arg)
{
    struct lintel_upconn *c = arg;
    if (!c->req)
        return;
    c->got_bytes = true;
    lintel_upstream_pump_response(c->req);
}

static void on_up_write(struct bufferevent *bev, void *arg)
{
    struct lintel_upconn *c = arg;
    struct lintel_request *req = c->req;
    if (!req)
        return;
    if (!req->body_done)
        lintel_request_pump_body(req);
    else if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        lintel_upstream_request_sent(req);
}

/* A failed connect on an https upstream: when the TLS handshake (not the TCP connect) failed,
 * logs it, counts it as a connect error, and retries or answers 502 naming the cause. Returns
 * false when it was not a TLS failure. */
static bool tls_failed(struct lintel_request *req, struct bufferevent *bev, short what)
{
    unsigned long err = 0, e;
    while ((e = bufferevent_get_openssl_error(bev)) != 0)
        err = err ? err : e; /* the first is the cause, the rest follow from it */
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    bool verify_failed = ssl && SSL_get_verify_result(ssl) != X509_V_OK;
    if (!err && !verify_failed && !(what & BEV_EVENT_EOF))
        return false;
    char why[200], msg[260];
    lintel_tls_handshake_error(ssl, err, why, sizeof(why));
    lintel_warn("upstream %s: TLS handshake with %s failed: %s", req->upstream->name,
                req->upstream->targets[req->target].addr.text, why);
    if (req->up->worker->metrics)
        lintel_metrics_upstream_error(req->up->worker->metrics, req->upstream->name, "other");
    observe(req, LINTEL_HEALTH_TLS, 0);
    if (retry_connect(req))
        return true;
    snprintf(msg, sizeof(msg), "upstream TLS handshake failed: %s", why);
    lintel_request_fail(req, 502, msg);
    return true;
}

static void on_up_event(struct bufferevent *bev, short what, void *arg)
{
    struct lintel_upconn *c = arg;
    struct lintel_request *req = c->req;
    if (!req) {
        lintel_upconn_free(c);
        return;
    }
    const char *target = req->upstream->targets[req->target].addr.text;
    if (what & BEV_EVENT_CONNECTED) {
        c->connected = true;
        req->up_connect_us = since_us(&req->up_start);
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        lintel_fastio_attach(c->worker->fastio, &c->fio, bev); /* plain sockets only */
        struct timeval wt = ms_tv(req->upstream->send_ms);
        bufferevent_set_timeouts(bev, NULL, &wt);
        if (req->body_done)
            lintel_upstream_request_sent(req);
        return;
    }
    char msg[200];
    struct lintel_metrics_shard *ms = c->worker->metrics;
    if (!c->connected && c->tls && !(what & BEV_EVENT_TIMEOUT) && tls_failed(req, bev, what))
        return;
    if (!c->connected) {
        bool timeout = what & BEV_EVENT_TIMEOUT;
        int e = EVUTIL_SOCKET_ERROR();
        lintel_warn("upstream %s: connect to %s failed: %s", req->upstream->name, target,
                    timeout ? "timed out" : evutil_socket_error_to_string(e));
        if (ms)
            lintel_metrics_upstream_error(ms, req->upstream->name,
                                          timeout ? "connect_timeout" : "connect_refused");
        enum lintel_health_cause cause = LINTEL_HEALTH_CONNECT_ERROR;
        if (timeout)
            cause = LINTEL_HEALTH_TIMEOUT;
        else if (e == ECONNREFUSED)
            cause = LINTEL_HEALTH_REFUSED;
        observe(req, cause, 0);
        if (retry_connect(req))
            return;
        if (timeout)
            lintel_request_fail_upstream(req, LINTEL_UPSTREAM_TIMEOUT, 504,
                                         "upstream connect timeout");
        else if (e == ECONNREFUSED)
            lintel_request_fail_upstream(req, LINTEL_UPSTREAM_CONNECT, 502,
                                         "upstream connect refused");
        else {
            snprintf(msg, sizeof(msg), "upstream connect failed: %s",
                     evutil_socket_error_to_string(e));
            lintel_request_fail_upstream(req, LINTEL_UPSTREAM_CONNECT, 502, msg);
        }
        return;
    }
    if ((what & BEV_EVENT_EOF) && req->resp_state == RESP_BODY) {
        c->eof = true;
        lintel_upstream_pump_response(req); /* relays what is left, then ends or aborts */
        return;
    }
    if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) && retry_stale(req))
        return;
    /* A timeout counts against the target; so does a close before the answer on a fresh
     * connection (on a reused one it is most likely the keepalive race, not the target). */
    if (req->resp_state == RESP_WAIT_HEAD && ((what & BEV_EVENT_TIMEOUT) || !c->reused))
        observe(req, (what & BEV_EVENT_TIMEOUT) ? LINTEL_HEALTH_TIMEOUT : LINTEL_HEALTH_RESET, 0);
    if (ms)
        lintel_metrics_upstream_error(ms, req->upstream->name,
                                      (what & BEV_EVENT_TIMEOUT)
                                          ? ((what & BEV_EVENT_READING) ? "read_timeout"
                                                                        : "send_timeout")
                                          : "reset");
    if (what & BEV_EVENT_TIMEOUT) {
        lintel_request_fail_upstream(req, LINTEL_UPSTREAM_TIMEOUT, 504,
                                     (what & BEV_EVENT_READING) ? "upstream read timeout"
                                                                : "upstream send timeout");
        return;
    }
    if (req->resp_state == RESP_WAIT_HEAD) {
        lintel_request_fail_upstream(req, LINTEL_UPSTREAM_ERROR, 502,
                                     (what & BEV_EVENT_EOF) ? "upstream closed the connection"
                                                            : "upstream connection reset");
        return;
    }
    lintel_request_abort(req, "upstream connection lost mid-response");
}
