/* logging: the file and stdout sinks. Workers never write to the file: each pushes records into
 * its own ring (ring.c) and one thread per instance writes them out, every flush_interval or
 * sooner when a ring is a quarter full. A slow or blocked file only fills the rings; past that,
 * workers drop records (counted), so requests never wait for the disk.
 *
 * The thread sleeps in poll() on an eventfd that workers (kick), the main thread (reopen) and
 * destroy (stop) write to. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "logging-internal.h"

/* How long a final write (stop) may wait for a blocked stdout before giving the rest up. */
#define LG_STOP_GRACE_MS 2000

struct lg_writer {
    struct lg_instance *in;
    int fd;
    int is_socket; /* stdout is a socket (journald): send() with MSG_DONTWAIT */
    int efd;
    pthread_t thread;
    _Atomic int kicked, reopen, stop;
    _Atomic uint64_t written, dropped, errors;
    int failing; /* the last write failed: logged once until one succeeds */
};

static uint64_t count_records(const char *p, size_t n)
{
    uint64_t c = 0;
    for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
        c++;
    return c;
}

static uint64_t count_records_iov(const struct iovec *iov, int niov, size_t skip)
{
    uint64_t c = 0;
    for (int i = 0; i < niov; i++) {
        size_t s = skip < iov[i].iov_len ? skip : iov[i].iov_len;
        c += count_records((const char *)iov[i].iov_base + s, iov[i].iov_len - s);
        skip -= s;
    }
    return c;
}

/* ---- opening ------------------------------------------------------------------------------- */

static int open_file(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

/* A descriptor for stdout that cannot block the writer forever: a pipe or terminal is opened
 * anew, non-blocking (its own file description, so lintel's stdout is untouched); a socket is
 * written with MSG_DONTWAIT; a regular file is shared as is. */
static int open_stdout(int *is_socket)
{
    struct stat st;
    *is_socket = 0;
    if (fstat(STDOUT_FILENO, &st) == 0) {
        if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
            int fd = open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
            if (fd >= 0)
                return fd;
        }
        *is_socket = S_ISSOCK(st.st_mode);
    }
    return fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 0);
}

static void reopen_file(struct lg_writer *w)
{
    const struct lg_config *c = &w->in->cfg;
    if (c->sink != LG_SINK_FILE)
        return;
    int fd = open_file(c->path);
    if (fd < 0) {
        w->in->host->log(w->in->self, LINTEL_LOG_LEVEL_ERROR,
                         "cannot reopen %s: %s (still writing to the old file)", c->path,
                         strerror(errno));
        return;
    }
    close(w->fd);
    w->fd = fd;
}

/* ---- writing ------------------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static ssize_t write_some(struct lg_writer *w, struct iovec *iov, int niov)
{
    if (!w->is_socket)
        return writev(w->fd, iov, niov);
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
    return sendmsg(w->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Writes iov[0..niov) whole if it can. Returns the bytes written; fewer than asked when the
 * descriptor failed, or stayed blocked past the grace period while stopping. */
static size_t write_all(struct lg_writer *w, struct iovec *iov, int niov)
{
    size_t done = 0;
    int64_t give_up = -1;
    while (niov > 0) {
        ssize_t n = write_some(w, iov, niov);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (atomic_load(&w->stop)) {
                if (give_up < 0)
                    give_up = now_ms() + LG_STOP_GRACE_MS;
                else if (now_ms() >= give_up)
                    return done;
            }
            struct pollfd p = {.fd = w->fd, .events = POLLOUT};
            poll(&p, 1, 100);
            continue;
        }
        if (n < 0) {
            if (!w->failing)
                w->in->host->log(w->in->self, LINTEL_LOG_LEVEL_ERROR, "write: %s", strerror(errno));
            w->failing = 1;
            atomic_fetch_add_explicit(&w->errors, 1, memory_order_relaxed);
            return done;
        }
        done += (size_t)n;
        while (niov > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            niov--;
        }
        if (niov > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    w->failing = 0;
    return done;
}

/* Writes out everything the workers have queued. */
static void drain(struct lg_writer *w)
{
    unsigned n = atomic_load_explicit(&w->in->nworkers, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        struct lg_worker *wk = atomic_load_explicit(&w->in->workers[i], memory_order_acquire);
        if (!wk || !wk->ring.data)
            continue;
        struct iovec iov[2], orig[2];
        size_t len = lg_ring_peek(&wk->ring, iov);
        if (!len)
            continue;
        memcpy(orig, iov, sizeof(iov));
        size_t done = write_all(w, iov, 2);
        uint64_t ok =
            count_records_iov(orig, 2, 0) - (done < len ? count_records_iov(orig, 2, done) : 0);
        atomic_fetch_add_explicit(&w->written, ok, memory_order_relaxed);
        if (done < len) /* the rest is lost: a partly written record stays partial */
            atomic_fetch_add_explicit(&w->dropped, count_records_iov(orig, 2, done),
                                      memory_order_relaxed);
        lg_ring_consume(&wk->ring, len);
    }
}

static void *run(void *arg)
{
    struct lg_writer *w = arg;
    int timeout = w->in->cfg.flush_ms > 60000 ? 60000 : (int)w->in->cfg.flush_ms;
    for (;;) {
        struct pollfd p = {.fd = w->efd, .events = POLLIN};
        poll(&p, 1, timeout);
        uint64_t v;
        (void)!read(w->efd, &v, sizeof(v)); /* EAGAIN: woken by the timeout */
        atomic_store(&w->kicked, 0);
        int stopping = atomic_load(&w->stop);
        drain(w);
        /* After the drain: what was queued before SIGUSR1 goes to the file logrotate moved. */
        if (atomic_exchange(&w->reopen, 0))
            reopen_file(w);
        if (stopping)
            return NULL;
    }
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

static void wake(struct lg_writer *w)
{
    uint64_t one = 1;
    (void)!write(w->efd, &one, sizeof(one)); /* EAGAIN: saturated, so the thread wakes anyway */
}

struct lg_writer *lg_writer_start(struct lg_instance *in, char *why, size_t whylen)
{
    struct lg_writer *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    w->in = in;
    w->efd = -1;
    w->fd = in->cfg.sink == LG_SINK_FILE ? open_file(in->cfg.path) : open_stdout(&w->is_socket);
    if (w->fd < 0) {
        snprintf(why, whylen, "cannot open %s: %s",
                 in->cfg.sink == LG_SINK_FILE ? in->cfg.path : "stdout", strerror(errno));
        goto fail;
    }
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0) {
        snprintf(why, whylen, "eventfd: %s", strerror(errno));
        goto fail;
    }
    /* The thread takes no signals: lintel's handlers run on its own threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&w->thread, NULL, run, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(why, whylen, "cannot start the writer thread: %s", strerror(rc));
        goto fail;
    }
    return w;
fail:
    if (w->fd >= 0)
        close(w->fd);
    if (w->efd >= 0)
        close(w->efd);
    free(w);
    return NULL;
}

void lg_writer_kick(struct lg_writer *w)
{
    if (!atomic_load_explicit(&w->kicked, memory_order_relaxed) &&
        !atomic_exchange_explicit(&w->kicked, 1, memory_order_relaxed))
        wake(w);
}

void lg_writer_reopen(struct lg_writer *w)
{
    atomic_store(&w->reopen, 1);
    wake(w);
}

void lg_writer_take_counts(struct lg_writer *w, uint64_t *written, uint64_t *dropped,
                           uint64_t *errors)
{
    *written += atomic_exchange_explicit(&w->written, 0, memory_order_relaxed);
    *dropped += atomic_exchange_explicit(&w->dropped, 0, memory_order_relaxed);
    *errors += atomic_exchange_explicit(&w->errors, 0, memory_order_relaxed);
}

void lg_writer_stop(struct lg_writer *w, uint64_t *written, uint64_t *dropped, uint64_t *errors)
{
    if (!w)
        return;
    atomic_store(&w->stop, 1);
    wake(w);
    pthread_join(w->thread, NULL);
    lg_writer_take_counts(w, written, dropped, errors);
    close(w->fd);
    close(w->efd);
    free(w);
}
