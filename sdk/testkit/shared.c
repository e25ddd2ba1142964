/* State shared by all workers (counter_add, cache_set, cache_get): keyed by "plugin/instance"
 * and key, kept across instances as lintel keeps it across version swaps, timed by the virtual
 * clock. */
#include <stdlib.h>
#include <string.h>

#include "testkit-internal.h"

struct entry {
    struct entry *next;
    char *ns;
    char *key;
    /* counter */
    int64_t value;
    uint64_t window; /* index of the fixed window the value belongs to */
    int64_t previous; /* counter_window: the final value of window - 1 (0: none) */
    /* cache */
    void *data;
    size_t len;
    uint64_t expires; /* virtual ms; 0: never */
};

static struct {
    struct entry *counters;
    struct entry *cache;
} shared;

static struct entry *find(struct entry **list, const char *ns, const char *key, bool create)
{
    for (struct entry *e = *list; e; e = e->next)
        if (strcmp(e->ns, ns) == 0 && strcmp(e->key, key) == 0)
            return e;
    if (!create)
        return NULL;
    struct entry *e = lk_must(calloc(1, sizeof(*e)));
    e->ns = lk_must(strdup(ns));
    e->key = lk_must(strdup(key));
    e->next = *list;
    *list = e;
    return e;
}

static void entries_free(struct entry *e)
{
    while (e) {
        struct entry *next = e->next;
        free(e->ns);
        free(e->key);
        free(e->data);
        free(e);
        e = next;
    }
}

void lk_shared_reset(void)
{
    entries_free(shared.counters);
    entries_free(shared.cache);
    shared.counters = shared.cache = NULL;
}

int lk_counter_add_fn(const lintel_instance *self, const char *key, int64_t delta,
                      uint64_t window_ms, int64_t *value, uint64_t *reset_ms)
{
    if (!self || !key)
        return -1;
    struct entry *e = find(&shared.counters, self->kit->ns, key, true);
    /* Windows are aligned on the clock, window i covering [i*w, (i+1)*w), as in lintel. */
    uint64_t now = lk_now();
    uint64_t window = window_ms ? now / window_ms : 0;
    if (e->window != window) {
        e->window = window;
        e->value = 0;
    }
    e->value += delta;
    if (value)
        *value = e->value;
    if (reset_ms)
        *reset_ms = window_ms ? (window + 1) * window_ms - now : 0;
    return 0;
}

int lk_cache_set_fn(const lintel_instance *self, const char *key, const void *value, size_t len,
                    uint64_t ttl_ms)
{
    if (!self || !key || (!value && len))
        return -1;
    void *copy = malloc(len ? len : 1);
    if (!copy)
        return -1;
    if (len)
        memcpy(copy, value, len);
    struct entry *e = find(&shared.cache, self->kit->ns, key, true);
    free(e->data);
    e->data = copy;
    e->len = len;
    e->expires = ttl_ms ? lk_now() + ttl_ms : 0;
    return 0;
}

long lk_cache_get_fn(const lintel_instance *self, const char *key, void *buf, size_t cap)
{
    if (!self || !key)
        return -1;
    const struct entry *e = find(&shared.cache, self->kit->ns, key, false);
    if (!e || !e->data || (e->expires && lk_now() >= e->expires))
        return -1;
    if (buf && cap)
        memcpy(buf, e->data, e->len < cap ? e->len : cap);
    return (long)e->len;
}

int lk_counter_window_fn(const lintel_instance *self, const char *key, int64_t delta,
                         uint64_t window_ms, struct lintel_counter_window *out)
{
    if (!self || !key || window_ms == 0 || !out || out->struct_size < sizeof(out->struct_size))
        return -1;
    struct entry *e = find(&shared.counters, self->kit->ns, key, true);
    uint64_t now = lk_now();
    uint64_t window = now / window_ms;
    if (e->window != window) {
        e->previous = e->window + 1 == window ? e->value : 0;
        e->window = window;
        e->value = 0;
    }
    e->value += delta;
    struct lintel_counter_window w = {
        .struct_size = sizeof(w),
        .value = e->value,
        .previous = e->previous,
        .elapsed_ms = now - window * window_ms,
        .reset_ms = (window + 1) * window_ms - now,
    };
    size_t n = out->struct_size < sizeof(w) ? out->struct_size : sizeof(w);
    memcpy(out, &w, n);
    out->struct_size = (uint32_t)n;
    return 0;
}

int lk_cache_add_fn(const lintel_instance *self, const char *key, const void *value, size_t len,
                    uint64_t ttl_ms)
{
    if (!self || !key || (!value && len))
        return -1;
    const struct entry *e = find(&shared.cache, self->kit->ns, key, false);
    if (e && e->data && !(e->expires && lk_now() >= e->expires))
        return 0;
    return lk_cache_set_fn(self, key, value, len, ttl_ms) == 0 ? 1 : -1;
}
