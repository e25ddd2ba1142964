/* Cheaper socket I/O for plain (not TLS) socket bufferevents: the fast paths of issue 8.
 *
 * libevent's socket bufferevent costs two syscalls per exchange that a proxy does not need:
 *  - every read asks ioctl(FIONREAD) first (evbuffer_read);
 *  - every time bytes are queued to an empty output it arms EV_WRITE (epoll_ctl), and disarms it
 *    (epoll_ctl again) once the next loop pass has written them.
 * A connection attached here instead reads with one recv() into its input buffer, and has what
 * was queued to its output written at the end of the current loop pass, straight to the socket.
 * EV_WRITE is then armed only when the socket does not take everything: the base runs with
 * EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST, so the arm (done by libevent when bytes are queued) and
 * the disarm (done here once they are written) within one pass cost no syscall.
 *
 * The read high watermark is kept here too (lintel_fastio_read_watermark), with the same effect
 * as libevent's: reading stops while the input holds that much.
 * Everything else stays the bufferevent's: callbacks (read, write, event), write watermarks,
 * timeouts, enable/disable. The callbacks are called exactly as bufferevent_socket calls them: read
 * after bytes arrived, write once the output is at or below its low watermark after a write, event
 * with BEV_EVENT_READING|EOF/ERROR/TIMEOUT (reading then disabled), and write errors are left to
 * libevent's own write path, which reports them as before.
 *
 * Only socket bufferevents qualify (lintel_fastio_plain): TLS and filter bufferevents keep
 * libevent's paths. Worker thread only. */
#ifndef LINTEL_FASTIO_H
#define LINTEL_FASTIO_H

#include <stdbool.h>
#include <stddef.h>

struct bufferevent;
struct event_base;
struct evbuffer_cb_entry;
struct lintel_fastio;
struct timeval;

/* Per connection, embedded in its owner (zeroed = not attached). */
struct lintel_fastio_conn {
    struct lintel_fastio *io;            /* NULL while not attached */
    struct bufferevent *bev;
    struct lintel_fastio_conn *prev, *next; /* io's flush list, while queued */
    struct evbuffer_cb_entry *out_cb, *in_cb;
    bool queued;
    bool held; /* reading held: the input is at its high watermark */
};

/* The per-worker state (a flush list and its event). Returns NULL when out of memory. */
struct lintel_fastio *lintel_fastio_new(struct event_base *base);
/* Frees io. Every connection must have been detached. NULL is allowed. */
void lintel_fastio_free(struct lintel_fastio *io);

/* True when bev is a plain socket bufferevent (bufferevent_socket_new), the only kind the fast
 * paths drive. */
bool lintel_fastio_plain(struct bufferevent *bev);

/* Attaches a connected plain socket bufferevent (its fd must not change afterwards). Returns 0,
 * or -1 when bev does not qualify (nothing changed: libevent's paths go on). Attaching twice
 * does nothing. */
int lintel_fastio_attach(struct lintel_fastio *io, struct lintel_fastio_conn *fc,
                         struct bufferevent *bev);
/* Sets bev's read watermarks. Attached, fastio keeps the high mark itself (one cheap input
 * callback instead of libevent's, which re-adds the read event on every input change);
 * otherwise this is bufferevent_setwatermark, skipped when nothing changes. */
void lintel_fastio_read_watermark(struct lintel_fastio_conn *fc, struct bufferevent *bev,
                                  size_t low, size_t high);
/* Cheap forms of calls made on every request, for any bufferevent (TLS too).
 * set_timeouts: bufferevent_set_timeouts, skipped when both are unchanged. Unlike the libevent
 * call, an unchanged setting does not restart the pending timers: callers set the timeouts
 * where a phase starts, not to push a deadline back.
 * enable: bufferevent_enable for the events not enabled yet (enabled ones stay armed as they are).
 * write_watermark: bufferevent_setwatermark(EV_WRITE), skipped when unchanged. */
void lintel_fastio_set_timeouts(struct bufferevent *bev, const struct timeval *rt,
                                const struct timeval *wt);
void lintel_fastio_enable(struct bufferevent *bev, short events);
void lintel_fastio_write_watermark(struct bufferevent *bev, size_t low, size_t high);

/* Detaches (before the bufferevent is freed). Does nothing when not attached. */
void lintel_fastio_detach(struct lintel_fastio_conn *fc);

#endif
