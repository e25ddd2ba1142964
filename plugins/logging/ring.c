/* logging: a bounded byte queue from one worker (producer) to the writer thread (consumer).
 * head and tail only grow; each side writes its own index (release) and reads the other's
 * (acquire), so a record's bytes are visible before the index that covers them. No locks, no
 * allocation after init. */
#include <stdlib.h>
#include <string.h>

#include "logging-internal.h"

int lg_ring_init(struct lg_ring *r, size_t cap)
{
    size_t c = 4096;
    while (c < cap)
        c <<= 1;
    r->data = malloc(c);
    if (!r->data)
        return -1;
    r->cap = c;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    r->tail_seen = 0;
    return 0;
}

void lg_ring_free(struct lg_ring *r)
{
    free(r->data);
    r->data = NULL;
}

long lg_ring_push(struct lg_ring *r, const char *p, size_t n)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (head + n - r->tail_seen > r->cap / 4) {
        /* Only look at the consumer's cache line when the cached view says more than a quarter
         * full: the kick threshold (logging.c), so a stale view does not wake the writer for
         * every record once a quarter has ever been queued. */
        r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (head + n - r->tail_seen > r->cap)
            return -1;
    }
    size_t at = (size_t)(head & (r->cap - 1));
    size_t first = r->cap - at < n ? r->cap - at : n;
    memcpy(r->data + at, p, first);
    memcpy(r->data, p + first, n - first);
    atomic_store_explicit(&r->head, head + n, memory_order_release);
    return (long)(head + n - r->tail_seen);
}

size_t lg_ring_peek(struct lg_ring *r, struct iovec iov[2])
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    size_t n = (size_t)(head - tail), at = (size_t)(tail & (r->cap - 1));
    size_t first = r->cap - at < n ? r->cap - at : n;
    iov[0] = (struct iovec){r->data + at, first};
    iov[1] = (struct iovec){r->data, n - first};
    return n;
}

void lg_ring_consume(struct lg_ring *r, size_t n)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    atomic_store_explicit(&r->tail, tail + n, memory_order_release);
}
