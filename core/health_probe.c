/* Active health probes: every `interval`, a GET of the configured path on a new connection to
 * the target (HTTP/1.1, Host: the target as written, Connection: close; TLS for an https
 * upstream, verified like requests are), on the main thread's event loop. The answer's head is read with the gateway's own strict parser; a listed status
 * before `timeout` is a good probe, anything else a failed one. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "health-internal.h"
#include "http1.h"
#include "tls.h"

/* A probe answer's head beyond this is invalid (it is a health check, not an API). */
#define PROBE_HEAD_BYTES (16 * 1024)
#define PROBE_HEADERS 100

struct lintel_probe {
    struct lintel_target_health *e;
    struct event_base *base;
    const struct lintel_health_active_conf *conf; /* NULL until configured */
    struct event *tick;                           /* every interval */
    struct event *deadline;                       /* the running probe's timeout */
    struct bufferevent *bev;                      /* the running probe, or NULL */
    bool connected;
    bool tls;
};

static struct timeval ms_tv(uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* Ends the running probe and counts its outcome. */
static void finish(struct lintel_probe *p, bool ok, enum lintel_health_cause cause, int status)
{
    bufferevent_free(p->bev);
    p->bev = NULL;
    event_del(p->deadline);
    lintel_health_probe_result(p->e, ok, cause, status, lintel_health_now_ms());
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct lintel_probe *p = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct lintel_head_limits lim = {PROBE_HEAD_BYTES, PROBE_HEADERS};
    char err[128];
    for (;;) {
        size_t len = evbuffer_get_length(in), skip = 0;
        size_t scan = len < PROBE_HEAD_BYTES + 1 ? len : PROBE_HEAD_BYTES + 1;
        if (scan == 0)
            return;
        const char *buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)scan);
        ssize_t n = lintel_head_find_end(buf, scan, &lim, &skip, err, sizeof(err));
        if (n == 0)
            return;
        if (n < 0 || skip) {
            finish(p, false, LINTEL_HEALTH_INVALID, 0);
            return;
        }
        struct lintel_arena *arena = lintel_arena_new(4096);
        struct lintel_head h;
        memset(&h, 0, sizeof(h));
        int rc = arena ? lintel_head_parse(&h, false, buf, (size_t)n, &lim, arena, err, sizeof(err))
                       : 500;
        lintel_arena_free(arena);
        evbuffer_drain(in, (size_t)n);
        if (rc) {
            finish(p, false, LINTEL_HEALTH_INVALID, 0);
            return;
        }
        if (h.status >= 200) {
            bool ok = lintel_health_status_in(p->conf->statuses, h.status);
            finish(p, ok, ok ? LINTEL_HEALTH_OK : LINTEL_HEALTH_STATUS, h.status);
            return;
        }
        /* 1xx interim answers: the final one follows. */
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct lintel_probe *p = arg;
    if (what & BEV_EVENT_CONNECTED) {
        p->connected = true;
        return;
    }
    if (!p->connected && p->tls) {
        unsigned long err = bufferevent_get_openssl_error(bev);
        SSL *ssl = bufferevent_openssl_get_ssl(bev);
        if (err || (what & BEV_EVENT_EOF) || (ssl && SSL_get_verify_result(ssl) != X509_V_OK)) {
            finish(p, false, LINTEL_HEALTH_TLS, 0);
            return;
        }
    }
    if (p->connected)
        finish(p, false, LINTEL_HEALTH_RESET, 0);
    else
        finish(p, false,
               EVUTIL_SOCKET_ERROR() == ECONNREFUSED ? LINTEL_HEALTH_REFUSED
                                                     : LINTEL_HEALTH_CONNECT_ERROR,
               0);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    finish(arg, false, LINTEL_HEALTH_TIMEOUT, 0);
}

static void start(struct lintel_probe *p)
{
    const struct lintel_target_health *e = p->e;
    if (p->bev)
        return; /* the previous probe is still waiting (timeout longer than interval) */
    SSL *ssl = e->tls && e->target ? lintel_tls_upstream_ssl(e->tls, e->target) : NULL;
    p->tls = ssl != NULL;
    if (ssl) {
        p->bev = bufferevent_openssl_socket_new(p->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                BEV_OPT_CLOSE_ON_FREE);
        if (!p->bev)
            SSL_free(ssl);
        else
            bufferevent_openssl_set_allow_dirty_shutdown(p->bev, 1);
    } else if (!e->tls) {
        p->bev = bufferevent_socket_new(p->base, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    if (!p->bev) {
        lintel_health_probe_result(p->e, false, LINTEL_HEALTH_CONNECT_ERROR, 0,
                                   lintel_health_now_ms());
        return;
    }
    p->connected = false;
    bufferevent_setcb(p->bev, on_read, NULL, on_event, p);
    evbuffer_add_printf(bufferevent_get_output(p->bev),
                        "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: lintel-health\r\n"
                        "Connection: close\r\n\r\n",
                        p->conf->path, e->target ? e->target->host : e->address);
    bufferevent_enable(p->bev, EV_READ | EV_WRITE);
    struct timeval tv = ms_tv(p->conf->timeout_ms);
    event_add(p->deadline, &tv);
    /* Refused connections are reported through on_event; -1 means no socket at all. */
    if (bufferevent_socket_connect(p->bev, (const struct sockaddr *)&e->ss, (int)e->sslen) < 0)
        finish(p, false, LINTEL_HEALTH_CONNECT_ERROR, 0);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    start(arg);
}

struct lintel_probe *lintel_probe_new(struct event_base *base, struct lintel_target_health *e)
{
    struct lintel_probe *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->e = e;
    p->base = base;
    p->tick = event_new(base, -1, EV_PERSIST, on_tick, p);
    p->deadline = evtimer_new(base, on_deadline, p);
    if (!p->tick || !p->deadline) {
        lintel_probe_free(p);
        return NULL;
    }
    return p;
}

void lintel_probe_configure(struct lintel_probe *p, const struct lintel_health_active_conf *a)
{
    bool first = !p->conf;
    bool rearm = first || p->conf->interval_ms != a->interval_ms;
    p->conf = a;
    if (!rearm)
        return;
    struct timeval tv = ms_tv(a->interval_ms);
    event_del(p->tick);
    event_add(p->tick, &tv);
    if (first)
        event_active(p->tick, EV_TIMEOUT, 0); /* a new target is probed at once */
}

void lintel_probe_free(struct lintel_probe *p)
{
    if (!p)
        return;
    if (p->bev)
        bufferevent_free(p->bev);
    if (p->tick)
        event_free(p->tick);
    if (p->deadline)
        event_free(p->deadline);
    free(p);
}
