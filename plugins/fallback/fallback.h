/* fallback: what the plugin's files share. Private to plugins/fallback (nothing here is exported
 * from the .so: the build hides every symbol but the descriptor).
 *
 *   fallback_config.c   create/destroy: YAML -> struct fallback (main thread)
 *   fallback.c          BALANCE (breaker), RESPONSE_HEADERS (triggers, capture), RESPONSE_BODY
 *                       (capture), serving a fallback; the descriptor
 *   fallback_store.c    one worker's store of last good responses (hash + LRU, bounded)
 *   fallback_breaker.c  the circuit breaker: one atomic word per instance, shared by workers */
#ifndef LINTEL_FALLBACK_H
#define LINTEL_FALLBACK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lintel/plugin.h>

/* ---- one worker's store of last good responses (fallback_store.c) ------------------------- */

/* A captured response. One allocation holds the struct, the key and the header block; the body
 * is a second one (the capture buffer, adopted without a copy). */
struct fb_entry {
    struct fb_entry *hnext;       /* hash chain */
    struct fb_entry *prev, *next; /* recency list: store->head is the most recently used */
    uint64_t hash;
    uint64_t stored_ms; /* now_ms when captured */
    size_t bytes;       /* what this entry counts against max_bytes */
    const char *key;
    size_t key_len;
    /* "Name\0Value\0" nheaders times; Content-Type is kept apart (respond takes it). */
    const char *headers;
    size_t nheaders;
    const char *content_type; /* NUL-terminated, or NULL */
    char *body;               /* owned; NULL when empty */
    size_t body_len;
};

/* Touched only by its worker: no lock. Aligned so that neighbouring workers' stores do not
 * share a cache line. */
struct fb_store {
    struct fb_entry **buckets;
    size_t mask; /* buckets - 1 (a power of two) */
    struct fb_entry *head, *tail;
    size_t count;
    uint64_t bytes;
    size_t max_entries;
    uint64_t max_bytes;
} __attribute__((aligned(64)));

/* Sizes the table for max_entries. 0, or -1 when out of memory. Thread: main (create). */
int fb_store_init(struct fb_store *s, size_t max_entries, uint64_t max_bytes);

/* Frees every entry and the table. Thread: the store's worker, or main once no request runs. */
void fb_store_free(struct fb_store *s);

/* FNV-1a 64 of key. */
uint64_t fb_hash(const void *key, size_t len);

/* The entry for key, or NULL; touch moves it to the front of the recency list (a lookup that
 * serves it), else it stays where it is (a capture's freshness check). Borrowed: valid until
 * the next fb_store_put or fb_store_remove on this store. */
struct fb_entry *fb_store_get(struct fb_store *s, const char *key, size_t len, uint64_t hash,
                              bool touch);

/* Makes a new entry (not in any store) for key with the response headers of r (all but the ones
 * skip() refuses; Content-Type apart). Returns NULL when out of memory. The body is added by
 * fb_store_put. Freed by the store or fb_entry_free. */
struct fb_entry *fb_entry_new(const struct lintel_host_api *h, lintel_req *r, const char *key,
                              size_t key_len, uint64_t hash,
                              bool (*skip)(const void *arg, struct lintel_str name),
                              const void *arg);

void fb_entry_free(struct fb_entry *e);

/* Puts e (with body, which it adopts; may be NULL when body_len is 0) in place of any entry for
 * the same key, stamped stored_ms, then evicts the least recently used entries until the store
 * is within max_entries and max_bytes. An entry larger than max_bytes alone is freed at once.
 * Never fails. */
void fb_store_put(struct fb_store *s, struct fb_entry *e, char *body, size_t body_len,
                  uint64_t stored_ms);

/* Unlinks and frees e (an entry of s). */
void fb_store_remove(struct fb_store *s, struct fb_entry *e);

/* ---- the circuit breaker (fallback_breaker.c) --------------------------------------------- */

enum fb_breaker_state { FB_CLOSED = 0, FB_OPEN = 1, FB_HALF_OPEN = 2 };

/* Shared by every worker of the instance. The state and the time it began are one atomic word,
 * (since_ms << 2) | state, so that a reader never sees an OPEN state with a stale time. */
struct fb_breaker {
    bool enabled;
    uint32_t failures;    /* consecutive triggers that open it */
    uint64_t cooldown_ms; /* how long it stays open before a probe */
    _Atomic uint64_t word;
    _Atomic uint32_t consecutive;
};

enum fb_admit {
    FB_PASS,  /* closed: the request goes upstream */
    FB_PROBE, /* this request is the half-open probe: it goes upstream, its outcome decides */
    FB_SKIP,  /* open, or a probe is out: answer without the upstream */
};

/* Called before the upstream for each request. Thread: any. */
enum fb_admit fb_breaker_admit(struct fb_breaker *b, const struct lintel_host_api *h,
                               const lintel_instance *self);

/* The outcome of a request that went upstream: failed is a trigger. probe: it was admitted as
 * FB_PROBE. Thread: any. */
void fb_breaker_result(struct fb_breaker *b, const struct lintel_host_api *h,
                       const lintel_instance *self, bool failed, bool probe);

/* The probe ended without an outcome (the client went away): the next request probes. */
void fb_breaker_probe_lost(struct fb_breaker *b, const struct lintel_host_api *h,
                           const lintel_instance *self);

/* Milliseconds until an open breaker lets a probe through (0 when it would now). */
uint64_t fb_breaker_retry_ms(struct fb_breaker *b, uint64_t now_ms);

/* ---- the instance (fallback_config.c builds it, the rest reads it) ------------------------ */

struct fb_header {
    const char *name; /* borrowed from the config tree (lives as long as the instance) */
    const char *value;
};

struct fallback {
    const struct lintel_host_api *host;
    const lintel_instance *self;

    uint64_t statuses[10]; /* bit per status 0..639: the upstream statuses that trigger */

    /* last_good */
    bool last_good;
    const char **methods; /* captured methods; borrowed strings */
    size_t nmethods;
    const char **key_args; /* query arguments in the key */
    size_t nkey_args;
    const char **key_headers; /* request headers in the key */
    size_t nkey_headers;
    bool key_consumer;         /* the authenticated consumer in the key */
    const char **skip_headers; /* response headers not stored (besides the framing ones) */
    size_t nskip_headers;
    uint64_t max_body, max_bytes, max_age_ms, refresh_ms;
    size_t max_entries;
    struct fb_store *stores; /* worker_count() of them, store[w] touched by worker w only */
    unsigned nstores;

    /* static */
    bool has_static;
    int static_status;
    const char *static_type;          /* Content-Type from static.headers, or NULL */
    struct fb_header *static_headers; /* the others */
    size_t nstatic_headers;
    char *static_body; /* owned (inline text copied, or the file's content) */
    size_t static_body_len;

    struct fb_breaker breaker;
};

/* Reads and checks the instance's config (NULL: every default) into fb (zeroed by the caller,
 * host and self set), reads static.body_file and allocates the per-worker stores. Returns 0, or
 * -1 after host->cfg_error with nothing left to free. Thread: main (create). */
int fb_config_parse(struct fallback *fb, const lintel_cfg *config, lintel_cfg_error *err);

/* Frees what fb_config_parse allocated (not fb itself). */
void fb_config_free(struct fallback *fb);

static inline bool fb_status_triggers(const struct fallback *fb, int status)
{
    return status >= 0 && status < 640 && (fb->statuses[status / 64] >> (status % 64)) & 1u;
}

#endif
