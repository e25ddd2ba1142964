#include "mm.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#if defined(__SANITIZE_ADDRESS__)
#define LINTEL_MM_PLAIN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LINTEL_MM_PLAIN 1
#endif
#endif

#ifndef LINTEL_MM_PLAIN

#define CHAIN 1024 /* libevent's smallest evbuffer chain (MIN_BUFFER_SIZE on 64-bit systems) */
#define KEEP 64    /* chains kept per thread */
#define HDR 16     /* the header in front of every block (keeps malloc's 16-byte alignment) */

struct cache {
    void *v[KEEP];
    unsigned n;
    bool registered; /* the thread-exit destructor will run */
};

static __thread struct cache cache;
static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool key_ok;

static void flush(void *arg)
{
    struct cache *c = arg;
    c->registered = false; /* a block kept after this registers again (glibc runs another round) */
    while (c->n)
        free(c->v[--c->n]);
}

static void make_key(void)
{
    key_ok = pthread_key_create(&key, flush) == 0;
}

static void *mm_malloc(size_t n)
{
    if (n == CHAIN && cache.n)
        return (unsigned char *)cache.v[--cache.n] + HDR;
    if (n > SIZE_MAX - HDR)
        return NULL;
    unsigned char *b = malloc(n + HDR);
    if (!b)
        return NULL;
    memcpy(b, &n, sizeof(n));
    return b + HDR;
}

static void mm_free(void *p)
{
    if (!p)
        return;
    unsigned char *b = (unsigned char *)p - HDR;
    size_t n;
    memcpy(&n, b, sizeof(n));
    if (n == CHAIN && cache.n < KEEP) {
        if (!cache.registered) {
            pthread_once(&once, make_key);
            if (!key_ok || pthread_setspecific(key, &cache) != 0) {
                free(b);
                return;
            }
            cache.registered = true;
        }
        cache.v[cache.n++] = b;
        return;
    }
    free(b);
}

static void *mm_realloc(void *p, size_t n)
{
    if (!p)
        return mm_malloc(n);
    if (n > SIZE_MAX - HDR)
        return NULL;
    unsigned char *b = realloc((unsigned char *)p - HDR, n + HDR);
    if (!b)
        return NULL;
    memcpy(b, &n, sizeof(n));
    return b + HDR;
}

void lintel_mm_install(void)
{
    event_set_mem_functions(mm_malloc, mm_realloc, mm_free);
}

#else

void lintel_mm_install(void) {}

#endif
