/* Upstream keepalive pools: idle connections per worker, per target address and per TLS
 * settings (a plain connection never serves an https target, nor one verified differently). An idle
 * connection that becomes readable (the upstream closed it, or sent bytes nobody asked for) or
 * stays idle past its idle timeout is closed at once, so acquire never hands out a dead one that
 * the loop already knows about. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "proxy-internal.h"

struct lintel_pool {
    struct lintel_pool *next;
    struct sockaddr_storage ss;
    socklen_t len;
    char *tls_key; /* the targets' pool_key: NULL for plain HTTP */
    struct lintel_upconn *idle; /* most recently released first */
    unsigned nidle;
};

static struct lintel_pool *pool_find(struct lintel_worker *w, const struct lintel_target_conf *t,
                                     bool create)
{
    const struct lintel_sockaddr *a = &t->addr;
    for (struct lintel_pool *p = w->pools; p; p = p->next)
        if (p->len == a->len && memcmp(&p->ss, &a->ss, a->len) == 0 &&
            (p->tls_key == NULL) == (t->pool_key == NULL) &&
            (!p->tls_key || strcmp(p->tls_key, t->pool_key) == 0))
            return p;
    if (!create)
        return NULL;
    struct lintel_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    if (t->pool_key && !(p->tls_key = strdup(t->pool_key))) {
        free(p);
        return NULL;
    }
    memcpy(&p->ss, &a->ss, a->len);
    p->len = a->len;
    p->next = w->pools;
    w->pools = p;
    return p;
}

static void unlink_idle(struct lintel_upconn *c)
{
    struct lintel_pool *p = c->pool;
    if (!p)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        p->idle = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    c->pool = NULL;
    p->nidle--;
}

void lintel_upconn_free(struct lintel_upconn *c)
{
    unlink_idle(c);
    lintel_fastio_detach(&c->fio);
    bufferevent_free(c->bev);
    free(c);
}

static void on_idle_read(struct bufferevent *bev, void *arg)
{
    lintel_upconn_free(arg); /* bytes nobody asked for: the connection is out of step */
}

static void on_idle_event(struct bufferevent *bev, short what, void *arg)
{
    lintel_upconn_free(arg); /* closed by the upstream, reset, or idle timeout */
}

struct lintel_upconn *lintel_pool_acquire(struct lintel_worker *w,
                                          const struct lintel_target_conf *t)
{
    struct lintel_pool *p = pool_find(w, t, false);
    if (!p || !p->idle)
        return NULL;
    struct lintel_upconn *c = p->idle;
    unlink_idle(c);
    return c; /* the idle timeout stays until attach sets the request's */
}

void lintel_pool_release(struct lintel_worker *w, const struct lintel_target_conf *t,
                         struct lintel_upconn *c, unsigned keep, uint64_t idle_ms)
{
    struct lintel_pool *p = keep && !w->draining ? pool_find(w, t, true) : NULL;
    if (!p || p->nidle >= keep) {
        lintel_upconn_free(c);
        return;
    }
    c->req = NULL;
    c->reused = true;
    c->eof = false;
    c->pool = p;
    c->prev = NULL;
    c->next = p->idle;
    if (p->idle)
        p->idle->prev = c;
    p->idle = c;
    p->nidle++;
    struct timeval tv = {(time_t)(idle_ms / 1000), (suseconds_t)(idle_ms % 1000) * 1000};
    bufferevent_setcb(c->bev, on_idle_read, NULL, on_idle_event, c);
    /* The read watermarks stay: any byte is unexpected here (on_idle_read). */
    bufferevent_set_timeouts(c->bev, &tv, NULL);
    lintel_fastio_enable(c->bev, EV_READ);
}

void lintel_pools_free(struct lintel_worker *w)
{
    while (w->pools) {
        struct lintel_pool *p = w->pools;
        while (p->idle)
            lintel_upconn_free(p->idle);
        w->pools = p->next;
        free(p->tls_key);
        free(p);
    }
}
