/* Plain-socket fast paths for socket bufferevents (see fastio.h for what and why).
 *
 * This file reaches into struct bufferevent (event2/bufferevent_struct.h, an installed libevent
 * header): it replaces the callback of the bufferevent's read event and writes its output, the
 * two jobs bufferevent_socket's own callbacks do, and leaves every other field to libevent. */
#include "fastio.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>

/* At most this much is read per readiness: bufferevent_socket's own default. */
#define READ_WINDOW 16384

struct lintel_fastio {
    struct event *flush_ev; /* activated (no syscall) while the list is not empty */
    struct lintel_fastio_conn *queued;
};

/* The replacement of bufferevent_socket's read callback: one recv() instead of
 * ioctl(FIONREAD) + readv(). */
static void on_read(evutil_socket_t fd, short what, void *arg)
{
    struct bufferevent *bev = arg;
    short ev = BEV_EVENT_READING;
    if (what == EV_TIMEOUT) {
        ev |= BEV_EVENT_TIMEOUT;
        goto fail;
    }
    struct evbuffer *in = bev->input;
    size_t len = evbuffer_get_length(in), want = READ_WINDOW;
    if (bev->wm_read.high) {
        if (len >= bev->wm_read.high) {
            /* Held (see on_input): reading was enabled again while the input is full. */
            event_del(&bev->ev_read);
            return;
        }
        if (bev->wm_read.high - len < want)
            want = bev->wm_read.high - len;
    }
    char buf[READ_WINDOW];
    ssize_t n = recv(fd, buf, want, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        ev |= BEV_EVENT_ERROR;
        goto fail;
    }
    if (n == 0) {
        ev |= BEV_EVENT_EOF;
        goto fail;
    }
    /* bufferevent_socket keeps the input's end frozen: only it adds there. */
    evbuffer_unfreeze(in, 0);
    int rc = evbuffer_add(in, buf, (size_t)n);
    evbuffer_freeze(in, 0);
    if (rc < 0) {
        errno = ENOMEM;
        ev |= BEV_EVENT_ERROR;
        goto fail;
    }
    if (bev->readcb && evbuffer_get_length(in) >= bev->wm_read.low)
        bev->readcb(bev, bev->cbarg); /* last: it may free bev */
    return;
fail:;
    int e = errno; /* the event callback may read why (EVUTIL_SOCKET_ERROR) */
    bufferevent_disable(bev, EV_READ);
    errno = e;
    if (bev->errorcb)
        bev->errorcb(bev, ev, bev->cbarg);
}

/* Writes what bev's output holds, as bufferevent_socket's write callback would in the next loop
 * pass. When all of it left, disarms EV_WRITE (armed by libevent when the bytes were queued; with
 * the changelist the two cancel out). Anything else (would block, error) leaves EV_WRITE armed for
 * libevent's own write path, which retries, applies the write timeout and reports errors. */
static void flush_one(struct bufferevent *bev)
{
    struct evbuffer *out = bev->output;
    /* Armed means libevent wants these bytes written now (enabled, not suspended, connected). */
    if (evbuffer_get_length(out) == 0 || !event_pending(&bev->ev_write, EV_WRITE, NULL))
        return;
    evbuffer_unfreeze(out, 1);
    int n = evbuffer_write(out, event_get_fd(&bev->ev_write));
    evbuffer_freeze(out, 1);
    if (n <= 0)
        return;
    size_t left = evbuffer_get_length(out);
    if (left == 0)
        event_del(&bev->ev_write);
    if (bev->writecb && left <= bev->wm_write.low)
        bev->writecb(bev, bev->cbarg); /* last: it may free bev */
}

/* The read high watermark, kept here instead of by libevent (whose input callback re-adds the
 * read event, timeout included, on every change to the input): reading is held (the read event
 * deleted) when the input reaches the watermark, and resumed when it drains below it. */
static void hold_or_resume(struct lintel_fastio_conn *fc)
{
    struct bufferevent *bev = fc->bev;
    size_t high = bev->wm_read.high;
    bool full = high && evbuffer_get_length(bev->input) >= high;
    if (full) {
        if (!fc->held) {
            fc->held = true;
            event_del(&bev->ev_read);
        }
        return;
    }
    if (!fc->held)
        return;
    fc->held = false;
    /* As libevent's unsuspend: re-armed (read timeout restarted) only while reading is on. */
    if ((bufferevent_get_enabled(bev) & EV_READ) && !event_pending(&bev->ev_read, EV_READ, NULL))
        event_add(&bev->ev_read, evutil_timerisset(&bev->timeout_read) ? &bev->timeout_read : NULL);
}

/* The input's callback: only additions can fill it, only removals can make room. */
static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct lintel_fastio_conn *fc = arg;
    if ((info->n_added && fc->bev->wm_read.high) || (info->n_deleted && fc->held))
        hold_or_resume(fc);
}

void lintel_fastio_read_watermark(struct lintel_fastio_conn *fc, struct bufferevent *bev,
                                  size_t low, size_t high)
{
    if (!fc->io) {
        size_t l, h;
        if (bufferevent_getwatermark(bev, EV_READ, &l, &h) < 0 || l != low || h != high)
            bufferevent_setwatermark(bev, EV_READ, low, high);
        return;
    }
    bev->wm_read.low = low;
    bev->wm_read.high = high;
    hold_or_resume(fc);
}

static void unqueue(struct lintel_fastio_conn *fc)
{
    if (!fc->queued)
        return;
    if (fc->prev)
        fc->prev->next = fc->next;
    else
        fc->io->queued = fc->next;
    if (fc->next)
        fc->next->prev = fc->prev;
    fc->prev = fc->next = NULL;
    fc->queued = false;
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    struct lintel_fastio *io = arg;
    /* A write callback may queue more (this connection or another), or free connections: each
     * is taken off the list before it is flushed, and the list is read afresh every time. */
    while (io->queued) {
        struct lintel_fastio_conn *fc = io->queued;
        unqueue(fc);
        flush_one(fc->bev);
    }
}

/* The output's callback: bytes were queued, so write them at the end of this loop pass. */
static void on_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct lintel_fastio_conn *fc = arg;
    if (!info->n_added || fc->queued)
        return;
    struct lintel_fastio *io = fc->io;
    if (!io->queued)
        event_active(io->flush_ev, EV_TIMEOUT, 0);
    fc->next = io->queued;
    if (io->queued)
        io->queued->prev = fc;
    io->queued = fc;
    fc->queued = true;
}

struct lintel_fastio *lintel_fastio_new(struct event_base *base)
{
    struct lintel_fastio *io = calloc(1, sizeof(*io));
    if (!io)
        return NULL;
    io->flush_ev = event_new(base, -1, 0, on_flush, io);
    if (!io->flush_ev) {
        free(io);
        return NULL;
    }
    return io;
}

void lintel_fastio_free(struct lintel_fastio *io)
{
    if (!io)
        return;
    event_free(io->flush_ev);
    free(io);
}

bool lintel_fastio_plain(struct bufferevent *bev)
{
    /* Socket bufferevents are the ones with an fd of their own and no TLS or filter layer. */
    return bev && bufferevent_getfd(bev) >= 0 && !bufferevent_get_underlying(bev) &&
           !bufferevent_openssl_get_ssl(bev);
}

int lintel_fastio_attach(struct lintel_fastio *io, struct lintel_fastio_conn *fc,
                         struct bufferevent *bev)
{
    if (fc->io)
        return 0;
    if (!io || !lintel_fastio_plain(bev))
        return -1;
    fc->out_cb = evbuffer_add_cb(bev->output, on_output, fc);
    if (!fc->out_cb)
        return -1;
    fc->in_cb = evbuffer_add_cb(bev->input, on_input, fc);
    if (!fc->in_cb) {
        evbuffer_remove_cb_entry(bev->output, fc->out_cb);
        return -1;
    }
    fc->io = io;
    fc->bev = bev;
    fc->prev = fc->next = NULL;
    fc->queued = false;
    fc->held = false;
    /* The read watermark moves here: with no high mark libevent disables its input callback
     * (and lifts its own suspension); the mark itself stays in bev->wm_read, read by on_read. */
    size_t low = bev->wm_read.low, high = bev->wm_read.high;
    bufferevent_setwatermark(bev, EV_READ, low, 0);
    bev->wm_read.high = high;
    /* The read event gets the new callback; event_assign wants it neither pending nor active. */
    bool reading = event_pending(&bev->ev_read, EV_READ, NULL);
    event_del(&bev->ev_read);
    event_assign(&bev->ev_read, bufferevent_get_base(bev), bufferevent_getfd(bev),
                 EV_READ | EV_PERSIST | EV_FINALIZE, on_read, bev);
    if (reading)
        event_add(&bev->ev_read, evutil_timerisset(&bev->timeout_read) ? &bev->timeout_read : NULL);
    hold_or_resume(fc);
    return 0;
}

void lintel_fastio_detach(struct lintel_fastio_conn *fc)
{
    if (!fc->io)
        return;
    unqueue(fc);
    evbuffer_remove_cb_entry(fc->bev->output, fc->out_cb);
    evbuffer_remove_cb_entry(fc->bev->input, fc->in_cb);
    fc->io = NULL;
    fc->bev = NULL;
}

/* Cheap forms of bufferevent calls made on every request. */

static bool tv_eq(const struct timeval *set, const struct timeval *want)
{
    if (!want)
        return !evutil_timerisset(set);
    return set->tv_sec == want->tv_sec && set->tv_usec == want->tv_usec;
}

void lintel_fastio_set_timeouts(struct bufferevent *bev, const struct timeval *rt,
                                const struct timeval *wt)
{
    if (tv_eq(&bev->timeout_read, rt) && tv_eq(&bev->timeout_write, wt))
        return;
    bufferevent_set_timeouts(bev, rt, wt);
}

void lintel_fastio_enable(struct bufferevent *bev, short events)
{
    short off = (short)(events & ~bufferevent_get_enabled(bev));
    if (off)
        bufferevent_enable(bev, off);
}

void lintel_fastio_write_watermark(struct bufferevent *bev, size_t low, size_t high)
{
    if (bev->wm_write.low != low || bev->wm_write.high != high)
        bufferevent_setwatermark(bev, EV_WRITE, low, high);
}
