/* Gateway metrics: per-worker shards written without locks, summed when rendered.
 *
 * A shard is one allocation made at startup; the request path only probes fixed tables in it and
 * never allocates. Names (routes, upstreams) are copied into the shard's own pool the first time
 * they are seen and published with a release store, so the renderer on the main thread reads
 * either nothing or a complete name. Counters have one writer (the worker), which adds with a
 * relaxed load and store instead of a read-modify-write; the renderer reads them relaxed. When a
 * table or pool is full the request is still counted, under route (or upstream) "_other".
 *
 * Plugin counters (metric_add) share one table of names for all threads, but each worker adds to
 * its own copy of the value, in its shard; other threads add atomically to the table's value.
 * Rendering sums them all. */
#include "metrics.h"

#include "balance.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "log.h"
#include "plugin_loader.h"

enum {
    NAME_MAX_LEN = 255, /* longer names count as "_other" */

    ROUTE_SLOTS = 2048, /* power of two; filled to 3/4 at most so probes stay short */
    ROUTE_MAX = ROUTE_SLOTS / 4 * 3,
    ROUTE_POOL = 64 * 1024,

    COUNT_SLOTS = 4096, /* (route, status) pairs */
    COUNT_MAX = COUNT_SLOTS / 4 * 3,
    STATUS_LIMIT = 1000, /* statuses outside [0, 1000) count as 0 */

    UPSTREAM_SLOTS = 256,
    UPSTREAM_MAX = UPSTREAM_SLOTS / 4 * 3,
    UPSTREAM_POOL = 16 * 1024,

    NBUCKETS = 13, /* 12 bounds and +Inf */

    PLUGIN_METRICS = 512, /* plugin counters and gauges, all plugins together */
};

static const char OTHER[] = "_other";

/* Bucket bounds in microseconds and as rendered in the le label. */
static const uint64_t bucket_us[NBUCKETS - 1] = {
    1000, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};
static const char *const bucket_le[NBUCKETS] = {
    "0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
};

static const char *const error_kinds[] = {
    "connect_refused", "connect_timeout",  "read_timeout", "send_timeout",
    "reset",           "invalid_response", "other",
};
enum { NKINDS = sizeof(error_kinds) / sizeof(*error_kinds) };

struct name_slot {
    _Atomic(const char *) name; /* into the table's pool; NULL while free */
    uint32_t hash;
};

/* An interning table: slots and pool are arrays inside the shard. Written by the worker only. */
struct names {
    struct name_slot *slots;
    unsigned nslots, max, used;
    char *pool;
    size_t cap, pool_used;
};

struct count_slot {
    _Atomic uint32_t key; /* ((route slot << 10) | status) + 1; 0 while free */
    _Atomic uint64_t n;
};

struct lintel_metrics_shard {
    struct names routes;
    unsigned counts_used;
    struct count_slot counts[COUNT_SLOTS];
    _Atomic uint64_t other[STATUS_LIMIT]; /* route "_other", by status */
    _Atomic uint64_t buckets[NBUCKETS];   /* not cumulative; the renderer sums them up */
    _Atomic uint64_t sum_us, count;

    struct names upstreams;
    _Atomic uint64_t errors[UPSTREAM_SLOTS][NKINDS];
    _Atomic uint64_t other_errors[NKINDS];

    /* This worker's part of each plugin counter, by slot of the owner's plugin table. Inside
     * the shard's own allocation, so no other worker writes these cache lines. */
    _Atomic uint64_t plugin[PLUGIN_METRICS];
    const struct lintel_metrics *owner;

    struct name_slot route_slots[ROUTE_SLOTS];
    struct name_slot upstream_slots[UPSTREAM_SLOTS];
    char route_pool[ROUTE_POOL];
    char upstream_pool[UPSTREAM_POOL];
};

/* Counters plugins add to (metric_add) and gauges they set (metric_set), from any thread: a
 * fixed table whose slots are claimed once by CAS and never freed (plugin metric names are few
 * and fixed). A slot is read-only once ready; its values are kept apart (shared_values, shards),
 * so writing a value never invalidates the lines every add reads to find its slot. */
struct plugin_metric {
    _Atomic int state; /* 0 empty, 1 being claimed, 2 ready */
    bool gauge;        /* the value is an int64_t set by metric_set */
    char plugin[64], instance[96], name[64];
};

struct lintel_metrics {
    struct lintel_metrics_shard **shards;
    unsigned nshards;
    uint64_t reloads_ok, reloads_failed; /* main thread only */
    struct plugin_metric plugin[PLUGIN_METRICS];
    /* By slot: a gauge's value (the last set wins), or what threads other than workers added to
     * a counter (each worker's part is in its shard). */
    _Atomic uint64_t shared_values[PLUGIN_METRICS];
    _Atomic uint64_t plugin_dropped; /* adds and sets that found no slot (table full, long name) */
    atomic_flag plugin_drop_logged;
};

/* Adds d to a counter that only the calling thread writes. */
static inline void bump(_Atomic uint64_t *c, uint64_t d)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + d,
                          memory_order_relaxed);
}

static inline uint64_t peek(_Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* FNV-1a; also measures the name. */
static uint32_t name_hash(const char *s, size_t *len)
{
    uint32_t h = 2166136261u;
    const char *p = s;
    for (; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    *len = (size_t)(p - s);
    return h;
}

/* The slot of name in t, copying it in when new. -1 when it cannot be added (table or pool
 * full, name too long): the caller counts it as "_other". */
static int intern(struct names *t, const char *name)
{
    size_t len;
    uint32_t h = name_hash(name, &len);
    unsigned mask = t->nslots - 1, i = h & mask;

    /* Never more than 3/4 full, so the probe always ends at a free slot. */
    for (;; i = (i + 1) & mask) {
        const char *n = atomic_load_explicit(&t->slots[i].name, memory_order_relaxed);
        if (!n)
            break;
        if (t->slots[i].hash == h && strcmp(n, name) == 0)
            return (int)i;
    }
    if (t->used >= t->max || len > NAME_MAX_LEN || t->cap - t->pool_used < len + 1)
        return -1;
    char *copy = t->pool + t->pool_used;
    memcpy(copy, name, len + 1);
    t->pool_used += len + 1;
    t->used++;
    t->slots[i].hash = h;
    atomic_store_explicit(&t->slots[i].name, copy, memory_order_release);
    return (int)i;
}

static void names_init(struct names *t, struct name_slot *slots, unsigned nslots, unsigned max,
                       char *pool, size_t cap)
{
    *t = (struct names){.slots = slots, .nslots = nslots, .max = max, .pool = pool, .cap = cap};
}

struct lintel_metrics *lintel_metrics_new(unsigned nworkers)
{
    struct lintel_metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->shards = calloc(nworkers ? nworkers : 1, sizeof(*m->shards));
    if (!m->shards)
        goto fail;
    for (; m->nshards < nworkers; m->nshards++) {
        /* About 250 KiB, mostly untouched pages until a worker sees many names. */
        struct lintel_metrics_shard *s = calloc(1, sizeof(*s));
        if (!s)
            goto fail;
        names_init(&s->routes, s->route_slots, ROUTE_SLOTS, ROUTE_MAX, s->route_pool, ROUTE_POOL);
        names_init(&s->upstreams, s->upstream_slots, UPSTREAM_SLOTS, UPSTREAM_MAX, s->upstream_pool,
                   UPSTREAM_POOL);
        s->owner = m;
        m->shards[m->nshards] = s;
    }
    return m;
fail:
    lintel_metrics_free(m);
    return NULL;
}

void lintel_metrics_free(struct lintel_metrics *m)
{
    if (!m)
        return;
    for (unsigned i = 0; i < m->nshards; i++)
        free(m->shards[i]);
    free(m->shards);
    free(m);
}

struct lintel_metrics_shard *lintel_metrics_shard(struct lintel_metrics *m, unsigned worker)
{
    return worker < m->nshards ? m->shards[worker] : NULL;
}

/* The counter of (route slot, status), claiming a free slot when new; NULL when full. */
static _Atomic uint64_t *pair_counter(struct lintel_metrics_shard *s, int route, unsigned status)
{
    uint32_t key = (((uint32_t)route << 10) | status) + 1;
    unsigned mask = COUNT_SLOTS - 1, i = ((key * 2654435761u) >> 20) & mask;

    for (;; i = (i + 1) & mask) {
        uint32_t k = atomic_load_explicit(&s->counts[i].key, memory_order_relaxed);
        if (k == key)
            return &s->counts[i].n;
        if (k == 0)
            break;
    }
    if (s->counts_used >= COUNT_MAX)
        return NULL;
    s->counts_used++;
    atomic_store_explicit(&s->counts[i].key, key, memory_order_release);
    return &s->counts[i].n;
}

void lintel_metrics_request(struct lintel_metrics_shard *s, const char *route, int status,
                            uint64_t latency_us)
{
    unsigned st = status >= 0 && status < STATUS_LIMIT ? (unsigned)status : 0;
    int slot = intern(&s->routes, route ? route : "");
    _Atomic uint64_t *c = slot >= 0 ? pair_counter(s, slot, st) : NULL;
    bump(c ? c : &s->other[st], 1);

    unsigned b = 0;
    while (b < NBUCKETS - 1 && latency_us > bucket_us[b])
        b++;
    bump(&s->buckets[b], 1);
    bump(&s->sum_us, latency_us);
    bump(&s->count, 1);
}

void lintel_metrics_upstream_error(struct lintel_metrics_shard *s, const char *upstream,
                                   const char *kind)
{
    unsigned k = 0;
    while (k < NKINDS - 1 && strcmp(error_kinds[k], kind) != 0)
        k++;
    int slot = intern(&s->upstreams, upstream);
    bump(slot >= 0 ? &s->errors[slot][k] : &s->other_errors[k], 1);
}

void lintel_metrics_reload(struct lintel_metrics *m, bool ok)
{
    if (ok)
        m->reloads_ok++;
    else
        m->reloads_failed++;
}

/* ---- rendering (main thread) ---- */

/* One labelled counter gathered from a shard; equal (name, sub) rows are summed. */
struct row {
    const char *name;
    unsigned sub; /* status, or error kind */
    uint64_t n;
};

struct rows {
    struct row *v;
    size_t len, cap;
};

static int rows_add(struct rows *r, const char *name, unsigned sub, uint64_t n)
{
    if (n == 0)
        return 0;
    if (r->len == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 256;
        struct row *v = realloc(r->v, cap * sizeof(*v));
        if (!v)
            return -1;
        r->v = v;
        r->cap = cap;
    }
    r->v[r->len++] = (struct row){name, sub, n};
    return 0;
}

static int row_cmp(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->sub > y->sub) - (x->sub < y->sub);
}

/* Sorts and merges rows from different shards naming the same series. */
static void rows_merge(struct rows *r)
{
    if (r->len == 0)
        return;
    qsort(r->v, r->len, sizeof(*r->v), row_cmp);
    size_t out = 0;
    for (size_t i = 1; i < r->len; i++) {
        if (row_cmp(&r->v[out], &r->v[i]) == 0)
            r->v[out].n += r->v[i].n;
        else
            r->v[++out] = r->v[i];
    }
    r->len = out + 1;
}

/* Appends a label value escaped as the text format requires (\\, \", \n). */
static void add_label_value(struct evbuffer *out, const char *v)
{
    const char *run = v;
    for (; *v; v++) {
        const char *esc = *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : *v == '\n' ? "\\n" : NULL;
        if (!esc)
            continue;
        evbuffer_add(out, run, (size_t)(v - run));
        evbuffer_add(out, esc, 2);
        run = v + 1;
    }
    evbuffer_add(out, run, (size_t)(v - run));
}

static void add_family(struct evbuffer *out, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *published(struct name_slot *slots, uint32_t key)
{
    return atomic_load_explicit(&slots[(key - 1) >> 10].name, memory_order_acquire);
}

static int render_requests(struct lintel_metrics *m, struct evbuffer *out)
{
    struct rows r = {0};
    for (unsigned i = 0; i < m->nshards; i++) {
        struct lintel_metrics_shard *s = m->shards[i];
        for (unsigned j = 0; j < COUNT_SLOTS; j++) {
            uint32_t key = atomic_load_explicit(&s->counts[j].key, memory_order_acquire);
            if (key && rows_add(&r, published(s->route_slots, key), (key - 1) & 1023,
                                peek(&s->counts[j].n)) < 0)
                goto oom;
        }
        for (unsigned st = 0; st < STATUS_LIMIT; st++)
            if (rows_add(&r, OTHER, st, peek(&s->other[st])) < 0)
                goto oom;
    }
    rows_merge(&r);
    add_family(out, "lintel_requests_total", "counter", "Requests answered, by route and status.");
    for (size_t i = 0; i < r.len; i++) {
        evbuffer_add_printf(out, "lintel_requests_total{route=\"");
        add_label_value(out, r.v[i].name);
        evbuffer_add_printf(out, "\",status=\"%u\"} %llu\n", r.v[i].sub,
                            (unsigned long long)r.v[i].n);
    }
    free(r.v);
    return 0;
oom:
    free(r.v);
    return -1;
}

static void render_latency(struct lintel_metrics *m, struct evbuffer *out)
{
    uint64_t buckets[NBUCKETS] = {0}, sum_us = 0, count = 0;
    for (unsigned i = 0; i < m->nshards; i++) {
        struct lintel_metrics_shard *s = m->shards[i];
        for (unsigned b = 0; b < NBUCKETS; b++)
            buckets[b] += peek(&s->buckets[b]);
        sum_us += peek(&s->sum_us);
        count += peek(&s->count);
    }
    add_family(out, "lintel_request_duration_seconds", "histogram",
               "Time from the start of a request to the end of its response.");
    uint64_t cumulative = 0;
    for (unsigned b = 0; b < NBUCKETS; b++) {
        cumulative += buckets[b];
        evbuffer_add_printf(out, "lintel_request_duration_seconds_bucket{le=\"%s\"} %llu\n",
                            bucket_le[b], (unsigned long long)cumulative);
    }
    /* Shards are read one after another while workers write, so the sum of the buckets may
     * differ slightly from count; a scrape is a sample, the next one catches up. */
    evbuffer_add_printf(out,
                        "lintel_request_duration_seconds_sum %llu.%06llu\n"
                        "lintel_request_duration_seconds_count %llu\n",
                        (unsigned long long)(sum_us / 1000000),
                        (unsigned long long)(sum_us % 1000000), (unsigned long long)count);
}

static int render_upstream_errors(struct lintel_metrics *m, struct evbuffer *out)
{
    struct rows r = {0};
    for (unsigned i = 0; i < m->nshards; i++) {
        struct lintel_metrics_shard *s = m->shards[i];
        for (unsigned j = 0; j < UPSTREAM_SLOTS; j++) {
            const char *name =
                atomic_load_explicit(&s->upstream_slots[j].name, memory_order_acquire);
            for (unsigned k = 0; name && k < NKINDS; k++)
                if (rows_add(&r, name, k, peek(&s->errors[j][k])) < 0)
                    goto oom;
        }
        for (unsigned k = 0; k < NKINDS; k++)
            if (rows_add(&r, OTHER, k, peek(&s->other_errors[k])) < 0)
                goto oom;
    }
    rows_merge(&r);
    add_family(out, "lintel_upstream_errors_total", "counter",
               "Failed upstream exchanges, by upstream and kind of failure.");
    for (size_t i = 0; i < r.len; i++) {
        evbuffer_add_printf(out, "lintel_upstream_errors_total{upstream=\"");
        add_label_value(out, r.v[i].name);
        evbuffer_add_printf(out, "\",kind=\"%s\"} %llu\n", error_kinds[r.v[i].sub],
                            (unsigned long long)r.v[i].n);
    }
    free(r.v);
    return 0;
oom:
    free(r.v);
    return -1;
}

struct images {
    const struct lintel_image **v;
    size_t len, cap;
    bool oom;
};

static void on_image(const struct lintel_image *img, void *arg)
{
    struct images *a = arg;
    if (a->oom)
        return;
    if (a->len == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        const struct lintel_image **v = realloc(a->v, cap * sizeof(*v));
        if (!v) {
            a->oom = true;
            return;
        }
        a->v = v;
        a->cap = cap;
    }
    a->v[a->len++] = img;
}

/* A record whose labels an earlier (newer) record already used: the same file loaded again
 * after it was unloaded. Rendering both would give one series two values. */
static bool shadowed(const struct images *a, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcmp(a->v[j]->name, a->v[i]->name) == 0 &&
            strcmp(a->v[j]->version, a->v[i]->version) == 0 &&
            strcmp(a->v[j]->hash, a->v[i]->hash) == 0)
            return true;
    return false;
}

static void add_image_labels(struct evbuffer *out, const char *metric,
                             const struct lintel_image *img)
{
    evbuffer_add_printf(out, "%s{plugin=\"", metric);
    add_label_value(out, img->name);
    evbuffer_add_printf(out, "\",version=\"");
    add_label_value(out, img->version);
    evbuffer_add_printf(out, "\",hash=\"");
    add_label_value(out, img->hash);
    evbuffer_add_printf(out, "\"");
}

static int render_plugins(struct lintel_registry *reg, struct evbuffer *out)
{
    static const char *const states[] = {
        [LINTEL_IMAGE_ACTIVE] = "active",
        [LINTEL_IMAGE_DRAINING] = "draining",
        [LINTEL_IMAGE_UNLOADED] = "unloaded",
    };
    struct images a = {0};
    if (reg)
        lintel_registry_foreach(reg, on_image, &a);
    if (a.oom) {
        free(a.v);
        return -1;
    }
    add_family(out, "lintel_plugin_inflight", "gauge",
               "Requests currently running an instance of a plugin image.");
    for (size_t i = 0; i < a.len; i++) {
        if (shadowed(&a, i))
            continue;
        add_image_labels(out, "lintel_plugin_inflight", a.v[i]);
        evbuffer_add_printf(out, "} %ld\n", lintel_image_inflight(a.v[i]));
    }
    add_family(out, "lintel_plugin_image_state", "gauge",
               "1 for the state a plugin image is in (active, draining, unloaded), else 0.");
    for (size_t i = 0; i < a.len; i++) {
        if (shadowed(&a, i))
            continue;
        int state = atomic_load_explicit(&a.v[i]->state, memory_order_relaxed);
        for (int st = 0; st < (int)(sizeof(states) / sizeof(*states)); st++) {
            add_image_labels(out, "lintel_plugin_image_state", a.v[i]);
            evbuffer_add_printf(out, ",state=\"%s\"} %d\n", states[st], st == state);
        }
    }
    free(a.v);
    return 0;
}

static bool plugin_metric_is(const struct plugin_metric *p, bool gauge, const char *plugin,
                             const char *instance, const char *name)
{
    return p->gauge == gauge && !strcmp(p->plugin, plugin) && !strcmp(p->instance, instance) &&
           !strcmp(p->name, name);
}

/* A per-thread memo of recent slot lookups. Plugins call metric_add with the same names on every
 * request, and formatting and hashing the key cost more than the add itself. An entry is only a
 * hint (an index into m's table, never a pointer), checked against the slot's names before use. */
#define SLOT_MEMO 64
struct slot_memo {
    const struct lintel_metrics *m;
    const char *name;
    size_t idx;
};
static _Thread_local struct slot_memo slot_memo[SLOT_MEMO];

/* The shard the calling thread writes plugin counters to, and its owner (compared before the
 * shard is touched, so a binding to other metrics is never followed). */
static _Thread_local const struct lintel_metrics *bound_owner;
static _Thread_local struct lintel_metrics_shard *bound_shard;

void lintel_metrics_shard_bind(struct lintel_metrics_shard *s)
{
    bound_owner = s ? s->owner : NULL;
    bound_shard = s;
}

/* The slot of a plugin's counter or gauge, claimed on first use; NULL when the table is full. */
static struct plugin_metric *plugin_slot(struct lintel_metrics *m, bool gauge, const char *plugin,
                                         const char *instance, const char *name)
{
    if (!m)
        return NULL;
    struct slot_memo *memo =
        &slot_memo[(((uintptr_t)name >> 3) ^ ((uintptr_t)instance >> 4)) % SLOT_MEMO];
    if (memo->m == m && memo->name == name) {
        struct plugin_metric *p = &m->plugin[memo->idx];
        if (atomic_load_explicit(&p->state, memory_order_acquire) == 2 &&
            plugin_metric_is(p, gauge, plugin, instance, name))
            return p;
    }
    if (strlen(plugin) >= 64 || strlen(instance) >= 96 || strlen(name) >= 64)
        return NULL;
    char key[256];
    int klen = snprintf(key, sizeof(key), "%c%s/%s/%s", gauge ? 'g' : 'c', plugin, instance, name);
    size_t h = (size_t)lintel_hash64(key, (size_t)klen);
    for (size_t i = 0; i < PLUGIN_METRICS; i++) {
        struct plugin_metric *p = &m->plugin[(h + i) % PLUGIN_METRICS];
        int st = atomic_load_explicit(&p->state, memory_order_acquire);
        if (st == 0) {
            int expect = 0;
            if (atomic_compare_exchange_strong(&p->state, &expect, 1)) {
                p->gauge = gauge;
                snprintf(p->plugin, sizeof(p->plugin), "%s", plugin);
                snprintf(p->instance, sizeof(p->instance), "%s", instance);
                snprintf(p->name, sizeof(p->name), "%s", name);
                atomic_store_explicit(&p->state, 2, memory_order_release);
            }
            st = atomic_load_explicit(&p->state, memory_order_acquire);
        }
        while (st == 1) /* another thread is writing the names: a few instructions */
            st = atomic_load_explicit(&p->state, memory_order_acquire);
        if (plugin_metric_is(p, gauge, plugin, instance, name)) {
            *memo = (struct slot_memo){m, name, (size_t)(p - m->plugin)};
            return p;
        }
    }
    return NULL;
}

/* An add or set that found no slot: counted (lintel_plugin_metrics_dropped_total) and, the first
 * time, logged with the names that did not fit. */
static void plugin_drop(struct lintel_metrics *m, const char *plugin, const char *instance,
                        const char *name, uint64_t n)
{
    atomic_fetch_add_explicit(&m->plugin_dropped, n, memory_order_relaxed);
    if (!atomic_flag_test_and_set(&m->plugin_drop_logged))
        lintel_warn("metrics: plugin %s, instance %s: metric \"%s\" not kept: the table of %d "
                    "plugin series is full or a name is too long (plugin and name at most 63 "
                    "bytes, instance 95); further drops are only counted, in "
                    "lintel_plugin_metrics_dropped_total",
                    plugin, instance, name, PLUGIN_METRICS);
}

void lintel_metrics_plugin_add(struct lintel_metrics *m, const char *plugin, const char *instance,
                               const char *name, uint64_t delta)
{
    struct plugin_metric *p = plugin_slot(m, false, plugin, instance, name);
    if (!p) {
        if (m)
            plugin_drop(m, plugin, instance, name, delta);
        return;
    }
    /* A worker is the only writer of its shard: a plain store, no locked instruction, no cache
     * line shared with another worker. */
    size_t i = (size_t)(p - m->plugin);
    if (bound_owner == m)
        bump(&bound_shard->plugin[i], delta);
    else
        atomic_fetch_add_explicit(&m->shared_values[i], delta, memory_order_relaxed);
}

void lintel_metrics_plugin_set(struct lintel_metrics *m, const char *plugin, const char *instance,
                               const char *name, int64_t value)
{
    struct plugin_metric *p = plugin_slot(m, true, plugin, instance, name);
    if (p)
        atomic_store_explicit(&m->shared_values[p - m->plugin], (uint64_t)value,
                              memory_order_relaxed);
    else if (m)
        plugin_drop(m, plugin, instance, name, 1);
}

static void render_plugin_metric(struct lintel_metrics *m, size_t i, bool gauge,
                                 struct evbuffer *out)
{
    struct plugin_metric *p = &m->plugin[i];
    if (atomic_load_explicit(&p->state, memory_order_acquire) != 2 || p->gauge != gauge)
        return;
    evbuffer_add_printf(out, gauge ? "lintel_plugin_gauge{plugin=\""
                                   : "lintel_plugin_events_total{plugin=\"");
    add_label_value(out, p->plugin);
    evbuffer_add_printf(out, "\",instance=\"");
    add_label_value(out, p->instance);
    evbuffer_add_printf(out, "\",name=\"");
    add_label_value(out, p->name);
    uint64_t v = peek(&m->shared_values[i]);
    for (unsigned s = 0; !gauge && s < m->nshards; s++)
        v += peek(&m->shards[s]->plugin[i]);
    if (gauge)
        evbuffer_add_printf(out, "\"} %lld\n", (long long)(int64_t)v);
    else
        evbuffer_add_printf(out, "\"} %llu\n", (unsigned long long)v);
}

static void render_plugin_metrics(struct lintel_metrics *m, struct evbuffer *out)
{
    add_family(out, "lintel_plugin_events_total", "counter",
               "Counters plugins keep (metric_add), by plugin, instance and name.");
    for (int gauge = 0; gauge < 2; gauge++) {
        if (gauge)
            add_family(out, "lintel_plugin_gauge", "gauge",
                       "Values plugins set (metric_set), by plugin, instance and name.");
        for (size_t i = 0; i < PLUGIN_METRICS; i++)
            render_plugin_metric(m, i, gauge, out);
    }
    add_family(out, "lintel_plugin_metrics_dropped_total", "counter",
               "Plugin metric_add and metric_set calls not kept: the plugin series table is full "
               "or a name is too long.");
    evbuffer_add_printf(out, "lintel_plugin_metrics_dropped_total %llu\n",
                        (unsigned long long)peek(&m->plugin_dropped));
}

static void add_target_labels(struct evbuffer *out, const char *metric,
                              const struct lintel_target_sample *t)
{
    evbuffer_add_printf(out, "%s{upstream=\"", metric);
    add_label_value(out, t->upstream);
    evbuffer_add_printf(out, "\",target=\"");
    add_label_value(out, t->target);
    evbuffer_add_printf(out, "\"}");
}

void lintel_metrics_render_targets(struct evbuffer *out, const struct lintel_target_sample *v,
                                   size_t n)
{
    add_family(out, "lintel_upstream_target_up", "gauge",
               "1 while an upstream target is up (health checks), 0 while it is down.");
    for (size_t i = 0; i < n; i++) {
        add_target_labels(out, "lintel_upstream_target_up", &v[i]);
        evbuffer_add_printf(out, " %d\n", v[i].up);
    }
    add_family(out, "lintel_upstream_target_health_changes_total", "counter",
               "Changes of an upstream target between up and down.");
    for (size_t i = 0; i < n; i++) {
        add_target_labels(out, "lintel_upstream_target_health_changes_total", &v[i]);
        evbuffer_add_printf(out, " %llu\n", (unsigned long long)v[i].changes);
    }
}

int lintel_metrics_render(struct lintel_metrics *m, struct lintel_registry *reg,
                          struct evbuffer *out)
{
    render_plugin_metrics(m, out);
    if (render_requests(m, out) < 0)
        return -1;
    render_latency(m, out);
    if (render_upstream_errors(m, out) < 0)
        return -1;
    add_family(out, "lintel_reloads_total", "counter", "Configuration reloads, by result.");
    evbuffer_add_printf(out,
                        "lintel_reloads_total{result=\"ok\"} %llu\n"
                        "lintel_reloads_total{result=\"failed\"} %llu\n",
                        (unsigned long long)m->reloads_ok, (unsigned long long)m->reloads_failed);
    return render_plugins(reg, out);
}
