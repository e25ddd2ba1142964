/* Upstream health: the table of target states, the views snapshots hold, and the transitions
 * (probe results, passive observations, cooldowns) with their log lines.
 *
 * States are keyed by upstream name and target address and owned by reference counts: the
 * checker's table holds one while the state is listed, each view slot one more. Only the main
 * thread adds references (binding a configuration) or unlists states (sweeping those that no
 * view holds and the current configuration does not name), so a state seen with one reference
 * during a sweep cannot gain another under it. */
#include "health-internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "balance.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "snapshot.h"

struct lintel_health_view {
    size_t nupstreams;
    struct lintel_target_health ***up; /* per upstream: ntargets states, or NULL */
    struct lintel_target_health **slots;
    size_t nslots;
};

struct lintel_health {
    struct event_base *base;
    struct event *tick; /* every second: cooldowns that ended, states nobody lists any more */
    struct lintel_target_health **buckets;
    size_t nbuckets, count;
    unsigned gen;                 /* bumped by every bind; 0 until the first */
    struct lintel_snapshot *snap; /* the configuration probes follow (a reference), or NULL */
};

/* ---- the last change, packed into one word (info) -------------------------------------- */

/* What the last change was; the order is part of the packing, add at the end. */
enum change_kind {
    CHANGE_NONE,          /* the state was created */
    CHANGE_PROBES_DOWN,   /* `unhealthy` failed probes */
    CHANGE_PROBES_UP,     /* `healthy` good probes */
    CHANGE_PASSIVE_DOWN,  /* `failures` failed requests in a row */
    CHANGE_COOLDOWN_OVER, /* the passive cooldown ended */
    CHANGE_ACTIVE_OFF,    /* a reload removed the probes of a target they held down */
    CHANGE_PASSIVE_OFF,   /* a reload removed the passive checks of a target they held down */
};

/* Bits: 30..63 unix seconds, 26..29 kind, 22..25 cause, 10..21 count, 0..9 status. */
static uint64_t info_pack(enum change_kind kind, enum lintel_health_cause cause, unsigned count,
                          int status)
{
    uint64_t since = (uint64_t)time(NULL) & ((1ull << 34) - 1);
    if (count > 4095)
        count = 4095;
    if (status < 0 || status > 1023)
        status = 0;
    return since << 30 | (uint64_t)kind << 26 | (uint64_t)cause << 22 | (uint64_t)count << 10 |
           (uint64_t)status;
}

static void cause_text(enum lintel_health_cause cause, int status, char *buf, size_t len)
{
    static const char *const text[] = {
        [LINTEL_HEALTH_OK] = "ok",
        [LINTEL_HEALTH_STATUS] = "status",
        [LINTEL_HEALTH_REFUSED] = "connection refused",
        [LINTEL_HEALTH_CONNECT_ERROR] = "connect failed",
        [LINTEL_HEALTH_TIMEOUT] = "timed out",
        [LINTEL_HEALTH_RESET] = "closed before answering",
        [LINTEL_HEALTH_INVALID] = "invalid response",
        [LINTEL_HEALTH_TLS] = "TLS handshake failed",
    };
    if (cause == LINTEL_HEALTH_STATUS || (cause == LINTEL_HEALTH_OK && status))
        snprintf(buf, len, "status %d", status);
    else
        snprintf(buf, len, "%s", (size_t)cause < sizeof(text) / sizeof(*text) ? text[cause] : "?");
}

static void describe(uint64_t info, char *buf, size_t len)
{
    unsigned kind = (info >> 26) & 15, count = (info >> 10) & 4095;
    char last[64];
    cause_text((enum lintel_health_cause)((info >> 22) & 15), (int)(info & 1023), last,
               sizeof(last));
    const char *s = count == 1 ? "" : "s";
    switch (kind) {
    case CHANGE_PROBES_DOWN:
        snprintf(buf, len, "%u failed probe%s, last: %s", count, s, last);
        break;
    case CHANGE_PROBES_UP:
        snprintf(buf, len, "%u successful probe%s", count, s);
        break;
    case CHANGE_PASSIVE_DOWN:
        snprintf(buf, len, "%u failed request%s in a row, last: %s", count, s, last);
        break;
    case CHANGE_COOLDOWN_OVER:
        snprintf(buf, len, "cooldown over");
        break;
    case CHANGE_ACTIVE_OFF:
        snprintf(buf, len, "active checks removed");
        break;
    case CHANGE_PASSIVE_OFF:
        snprintf(buf, len, "passive checks removed");
        break;
    default:
        snprintf(buf, len, "initial state");
        break;
    }
}

/* ---- transitions --------------------------------------------------------------------------- */

uint64_t lintel_health_now_ms(void)
{
    return lintel_mono_ms() + 1;
}

static bool word_down(uint64_t w, uint64_t now)
{
    return (w & LINTEL_HEALTH_ACTIVE_DOWN) || (w & LINTEL_HEALTH_UNTIL_MASK) > now;
}

/* Called by the one thread whose CAS changed e between up and down. */
static void changed(struct lintel_target_health *e, bool down, uint64_t info, uint64_t cooldown_ms)
{
    char why[128];
    atomic_store_explicit(&e->info, info, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->changes, 1, memory_order_relaxed);
    describe(info, why, sizeof(why));
    if (down && cooldown_ms)
        lintel_warn("upstream %s: target %s is down for %llu%s (%s)", e->upstream, e->address,
                    (unsigned long long)(cooldown_ms % 1000 ? cooldown_ms : cooldown_ms / 1000),
                    cooldown_ms % 1000 ? "ms" : "s", why);
    else if (down)
        lintel_warn("upstream %s: target %s is down (%s)", e->upstream, e->address, why);
    else
        lintel_info("upstream %s: target %s is up (%s)", e->upstream, e->address, why);
}

bool lintel_health_down_at(struct lintel_target_health *e, uint64_t now)
{
    uint64_t w = atomic_load_explicit(&e->state, memory_order_relaxed);
    for (;;) {
        uint64_t until = w & LINTEL_HEALTH_UNTIL_MASK;
        if ((w & LINTEL_HEALTH_ACTIVE_DOWN) || until > now || until == 0)
            return word_down(w, now);
        /* The cooldown is over: the first thread to see it clears it and says so. */
        if (atomic_compare_exchange_weak_explicit(&e->state, &w, w & ~LINTEL_HEALTH_UNTIL_MASK,
                                                  memory_order_relaxed, memory_order_relaxed)) {
            changed(e, false, info_pack(CHANGE_COOLDOWN_OVER, LINTEL_HEALTH_OK, 0, 0), 0);
            return false;
        }
    }
}

void lintel_health_passive_at(struct lintel_target_health *e,
                              const struct lintel_health_passive_conf *p,
                              enum lintel_health_cause cause, int status, uint64_t now)
{
    if (cause == LINTEL_HEALTH_OK) {
        if (!lintel_health_status_in(p->statuses, status)) {
            if (atomic_load_explicit(&e->fails, memory_order_relaxed))
                atomic_store_explicit(&e->fails, 0, memory_order_relaxed);
            return;
        }
        cause = LINTEL_HEALTH_STATUS;
    }
    unsigned n = atomic_fetch_add_explicit(&e->fails, 1, memory_order_relaxed) + 1;
    if (n < p->failures)
        return;
    /* The count is not reset when the target goes down: once the cooldown is over, one more
     * failure puts it back down at once, one success clears the count. */
    uint64_t until = now + p->cooldown_ms;
    if (until > LINTEL_HEALTH_UNTIL_MASK)
        until = LINTEL_HEALTH_UNTIL_MASK;
    uint64_t w = atomic_load_explicit(&e->state, memory_order_relaxed);
    do {
        if ((w & LINTEL_HEALTH_UNTIL_MASK) > now)
            return; /* already cooling down: requests that were in flight change nothing */
    } while (!atomic_compare_exchange_weak_explicit(&e->state, &w,
                                                    (w & LINTEL_HEALTH_ACTIVE_DOWN) | until,
                                                    memory_order_relaxed, memory_order_relaxed));
    /* Down already (probes): nothing changes for the balancers. */
    if (w & LINTEL_HEALTH_ACTIVE_DOWN)
        return;
    /* An earlier cooldown that ended unobserved: its end is a change too. */
    if (w & LINTEL_HEALTH_UNTIL_MASK)
        changed(e, false, info_pack(CHANGE_COOLDOWN_OVER, LINTEL_HEALTH_OK, 0, 0), 0);
    changed(e, true, info_pack(CHANGE_PASSIVE_DOWN, cause, n, status), p->cooldown_ms);
}

/* Sets or clears the probes' verdict; logs when that changes up/down. */
static void set_active(struct lintel_target_health *e, bool down, uint64_t info, uint64_t now)
{
    uint64_t w = atomic_load_explicit(&e->state, memory_order_relaxed), nw;
    do {
        nw = down ? w | LINTEL_HEALTH_ACTIVE_DOWN : w & ~LINTEL_HEALTH_ACTIVE_DOWN;
        if (nw == w)
            return;
    } while (!atomic_compare_exchange_weak_explicit(&e->state, &w, nw, memory_order_relaxed,
                                                    memory_order_relaxed));
    if (word_down(w, now) != word_down(nw, now))
        changed(e, down, info, 0);
}

void lintel_health_probe_result(struct lintel_target_health *e, bool ok,
                                enum lintel_health_cause cause, int status, uint64_t now)
{
    const struct lintel_health_active_conf *a = e->active;
    if (!a)
        return;
    if (ok) {
        e->fail_run = 0;
        e->ok_run += e->ok_run < UINT_MAX;
    } else {
        e->ok_run = 0;
        e->fail_run += e->fail_run < UINT_MAX;
    }
    bool down = atomic_load_explicit(&e->state, memory_order_relaxed) & LINTEL_HEALTH_ACTIVE_DOWN;
    if (down && ok && e->ok_run >= a->healthy)
        set_active(e, false, info_pack(CHANGE_PROBES_UP, cause, e->ok_run, status), now);
    else if (!down && !ok && e->fail_run >= a->unhealthy)
        set_active(e, true, info_pack(CHANGE_PROBES_DOWN, cause, e->fail_run, status), now);
}

/* A reload removed the passive checks: whatever they decided no longer holds. */
static void clear_passive(struct lintel_target_health *e, uint64_t now)
{
    atomic_store_explicit(&e->fails, 0, memory_order_relaxed);
    uint64_t w = atomic_load_explicit(&e->state, memory_order_relaxed), nw;
    do {
        nw = w & ~LINTEL_HEALTH_UNTIL_MASK;
        if (nw == w)
            return;
    } while (!atomic_compare_exchange_weak_explicit(&e->state, &w, nw, memory_order_relaxed,
                                                    memory_order_relaxed));
    if (word_down(w, now) && !word_down(nw, now))
        changed(e, false, info_pack(CHANGE_PASSIVE_OFF, LINTEL_HEALTH_OK, 0, 0), 0);
}

/* ---- the request path ------------------------------------------------------------------- */

struct lintel_target_health *lintel_health_entry(const struct lintel_health_view *v,
                                                 const struct lintel_upstream_conf *up, size_t i)
{
    if (!v || up->index >= v->nupstreams || !v->up[up->index] || i >= up->ntargets)
        return NULL;
    return v->up[up->index][i];
}

size_t lintel_health_skip_down(const struct lintel_health_view *v,
                               const struct lintel_upstream_conf *up, unsigned char *skip)
{
    if (!v || up->index >= v->nupstreams || !v->up[up->index])
        return 0;
    struct lintel_target_health **t = v->up[up->index];
    uint64_t now = 0;
    size_t down = 0;
    for (size_t i = 0; i < up->ntargets; i++) {
        uint64_t w = atomic_load_explicit(&t[i]->state, memory_order_relaxed);
        if (w == 0)
            continue; /* up, no cooldown: the common case costs one load */
        if (!(w & LINTEL_HEALTH_ACTIVE_DOWN)) {
            if (!now)
                now = lintel_health_now_ms();
            if (!lintel_health_down_at(t[i], now))
                continue;
        }
        skip[i] = 1;
        down++;
    }
    return down;
}

void lintel_health_observe(const struct lintel_health_view *v,
                           const struct lintel_upstream_conf *up, int target,
                           enum lintel_health_cause cause, int status)
{
    const struct lintel_health_passive_conf *p = up->health.passive;
    struct lintel_target_health *e =
        p && target >= 0 ? lintel_health_entry(v, up, (size_t)target) : NULL;
    if (!e)
        return;
    if (cause == LINTEL_HEALTH_OK && !lintel_health_status_in(p->statuses, status)) {
        /* A success: no clock read, and no write unless there is a count to clear. */
        if (atomic_load_explicit(&e->fails, memory_order_relaxed))
            atomic_store_explicit(&e->fails, 0, memory_order_relaxed);
        return;
    }
    lintel_health_passive_at(e, p, cause, status, lintel_health_now_ms());
}

/* ---- the table of states (main thread) ----------------------------------------------------- */

static uint64_t key_hash(const char *upstream, const struct lintel_sockaddr *a)
{
    uint64_t h[3] = {lintel_hash64(upstream, strlen(upstream)),
                     a->text ? lintel_hash64(a->text, strlen(a->text)) : 0,
                     lintel_hash64(&a->ss, a->len)};
    return lintel_hash64(h, sizeof(h));
}

/* Same upstream, same address as written and as resolved (a name that now resolves elsewhere
 * is another target). */
static bool key_eq(const struct lintel_target_health *e, uint64_t hash, const char *upstream,
                   const struct lintel_sockaddr *a)
{
    return e->hash == hash && strcmp(e->upstream, upstream) == 0 &&
           strcmp(e->address, a->text ? a->text : "") == 0 && e->sslen == a->len &&
           memcmp(&e->ss, &a->ss, a->len) == 0;
}

static void entry_unref(struct lintel_target_health *e)
{
    if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1)
        free(e);
}

static int table_grow(struct lintel_health *h)
{
    size_t n = h->nbuckets ? h->nbuckets * 2 : 64;
    struct lintel_target_health **b = calloc(n, sizeof(*b));
    if (!b)
        return -1;
    for (size_t i = 0; i < h->nbuckets; i++) {
        struct lintel_target_health *e = h->buckets[i], *next;
        for (; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }
    free(h->buckets);
    h->buckets = b;
    h->nbuckets = n;
    return 0;
}

/* The listed state of (upstream, a), created (up, unstamped) when new; NULL when out of memory. */
static struct lintel_target_health *table_get(struct lintel_health *h, const char *upstream,
                                              const struct lintel_sockaddr *a)
{
    uint64_t hash = key_hash(upstream, a);
    if (h->nbuckets) {
        struct lintel_target_health *e = h->buckets[hash & (h->nbuckets - 1)];
        for (; e; e = e->next)
            if (key_eq(e, hash, upstream, a))
                return e;
    }
    if (h->count >= h->nbuckets && table_grow(h) < 0)
        return NULL;
    const char *text = a->text ? a->text : "";
    size_t ul = strlen(upstream) + 1, al = strlen(text) + 1;
    struct lintel_target_health *e = calloc(1, sizeof(*e) + ul + al);
    if (!e)
        return NULL;
    char *p = (char *)(e + 1);
    e->upstream = memcpy(p, upstream, ul);
    e->address = memcpy(p + ul, text, al);
    e->ss = a->ss;
    e->sslen = a->len;
    e->hash = hash;
    atomic_init(&e->refs, 1);
    atomic_init(&e->info, info_pack(CHANGE_NONE, LINTEL_HEALTH_OK, 0, 0));
    e->next = h->buckets[hash & (h->nbuckets - 1)];
    h->buckets[hash & (h->nbuckets - 1)] = e;
    h->count++;
    return e;
}

static void stop_probing(struct lintel_target_health *e)
{
    lintel_probe_free(e->probe);
    e->probe = NULL;
    e->active = NULL; /* points into a configuration that may go away */
    e->target = NULL;
    e->tls = NULL;
    e->ok_run = e->fail_run = 0;
}

/* Stops the probes of states the current configuration does not name, and unlists those no
 * view holds any more. */
static void sweep(struct lintel_health *h)
{
    for (size_t i = 0; i < h->nbuckets; i++) {
        struct lintel_target_health **pp = &h->buckets[i];
        while (*pp) {
            struct lintel_target_health *e = *pp;
            if (e->gen != h->gen) {
                stop_probing(e);
                if (atomic_load_explicit(&e->refs, memory_order_acquire) == 1) {
                    *pp = e->next;
                    h->count--;
                    entry_unref(e);
                    continue;
                }
            }
            pp = &e->next;
        }
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct lintel_health *h = arg;
    uint64_t now = lintel_health_now_ms();
    /* So that a cooldown's end is logged when it happens, not at the next request. */
    for (size_t i = 0; i < h->nbuckets; i++)
        for (struct lintel_target_health *e = h->buckets[i]; e; e = e->next)
            if (atomic_load_explicit(&e->state, memory_order_relaxed) & LINTEL_HEALTH_UNTIL_MASK)
                lintel_health_down_at(e, now);
    sweep(h);
}

struct lintel_health *lintel_health_new(struct event_base *base)
{
    struct lintel_health *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->base = base;
    struct timeval second = {1, 0};
    h->tick = event_new(base, -1, EV_PERSIST, on_tick, h);
    if (!h->tick || event_add(h->tick, &second) < 0 || table_grow(h) < 0) {
        lintel_health_free(h);
        return NULL;
    }
    return h;
}

void lintel_health_free(struct lintel_health *h)
{
    if (!h)
        return;
    if (h->tick)
        event_free(h->tick);
    for (size_t i = 0; i < h->nbuckets; i++) {
        struct lintel_target_health *e = h->buckets[i], *next;
        for (; e; e = next) {
            next = e->next;
            stop_probing(e);
            entry_unref(e);
        }
    }
    free(h->buckets);
    lintel_snapshot_unref(h->snap);
    free(h);
}

/* ---- views ---------------------------------------------------------------------------------- */

static bool has_health(const struct lintel_upstream_conf *u)
{
    return u->health.active || u->health.passive;
}

void lintel_health_view_free(struct lintel_health_view *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->nslots; i++)
        entry_unref(v->slots[i]);
    free(v->slots);
    free(v->up);
    free(v);
}

/* Everything that can fail: the view, new states, new probes. A failure leaves states and probes
 * that nothing stamped; the next sweep drops them. */
static struct lintel_health_view *view_build(struct lintel_health *h,
                                             const struct lintel_config *cfg)
{
    size_t total = 0;
    for (size_t i = 0; i < cfg->nupstreams; i++)
        if (has_health(&cfg->upstreams[i]))
            total += cfg->upstreams[i].ntargets;
    struct lintel_health_view *v = calloc(1, sizeof(*v));
    if (!v)
        return NULL;
    v->nupstreams = cfg->nupstreams;
    v->up = calloc(cfg->nupstreams ? cfg->nupstreams : 1, sizeof(*v->up));
    v->slots = calloc(total ? total : 1, sizeof(*v->slots));
    if (!v->up || !v->slots)
        goto fail;
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        const struct lintel_upstream_conf *u = &cfg->upstreams[i];
        if (!has_health(u))
            continue;
        v->up[i] = &v->slots[v->nslots];
        for (size_t t = 0; t < u->ntargets; t++) {
            struct lintel_target_health *e = table_get(h, u->name, &u->targets[t].addr);
            if (!e || (u->health.active && !e->probe && !(e->probe = lintel_probe_new(h->base, e))))
                goto fail;
            atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
            v->slots[v->nslots++] = e;
        }
    }
    return v;
fail:
    lintel_health_view_free(v);
    return NULL;
}

struct lintel_health_view *lintel_health_bind(struct lintel_health *h,
                                              const struct lintel_config *cfg, char *err,
                                              size_t errlen)
{
    sweep(h); /* a target dropped earlier and no longer held starts afresh if named again */
    struct lintel_health_view *v = view_build(h, cfg);
    if (!v) {
        snprintf(err, errlen, "health checks: out of memory");
        return NULL;
    }
    /* Nothing below can fail: the configuration becomes the one probes follow. */
    uint64_t now = lintel_health_now_ms();
    unsigned prev = h->gen++;
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        const struct lintel_upstream_conf *u = &cfg->upstreams[i];
        for (size_t t = 0; v->up[i] && t < u->ntargets; t++) {
            struct lintel_target_health *e = v->up[i][t];
            e->gen = h->gen;
            if (u->health.active) {
                e->active = u->health.active;
                lintel_probe_configure(e->probe, u->health.active);
            } else {
                stop_probing(e);
                set_active(e, false, info_pack(CHANGE_ACTIVE_OFF, LINTEL_HEALTH_OK, 0, 0), now);
            }
            if (!u->health.passive)
                clear_passive(e, now);
        }
    }
    /* Targets that lost their checks (or left) are up for the new configuration: say so for
     * those that were down. */
    for (size_t i = 0; prev && i < h->nbuckets; i++)
        for (struct lintel_target_health *e = h->buckets[i]; e; e = e->next)
            if (e->gen == prev && lintel_health_down_at(e, now))
                lintel_info("upstream %s: target %s is no longer checked (it was down)",
                            e->upstream, e->address);
    sweep(h);
    return v;
}

int lintel_health_update(struct lintel_health *h, struct lintel_snapshot *s, char *err,
                         size_t errlen)
{
    struct lintel_health_view *v = lintel_health_bind(h, s->cfg, err, errlen);
    if (!v)
        return -1;
    /* Probes speak to a target as requests do: its Host, and TLS for an https upstream. */
    for (size_t i = 0; i < s->cfg->nupstreams; i++) {
        const struct lintel_upstream_conf *u = &s->cfg->upstreams[i];
        for (size_t t = 0; v->up[i] && t < u->ntargets; t++) {
            v->up[i][t]->target = &u->targets[t];
            v->up[i][t]->tls = s->upstream_tls ? s->upstream_tls[i] : NULL;
        }
    }
    lintel_health_view_free(s->health);
    s->health = v;
    lintel_snapshot_ref(s);
    lintel_snapshot_unref(h->snap); /* its configuration is no longer referenced by probes */
    h->snap = s;
    return 0;
}

/* ---- the admin API and metrics -------------------------------------------------------------- */

void lintel_health_status_get(const struct lintel_health_view *v,
                              const struct lintel_upstream_conf *up, size_t i,
                              struct lintel_health_status *out)
{
    struct lintel_target_health *e = lintel_health_entry(v, up, i);
    memset(out, 0, sizeof(*out));
    out->up = true;
    if (!e) {
        snprintf(out->reason, sizeof(out->reason), "no health checks");
        return;
    }
    out->checked = true;
    out->up = !lintel_health_down_at(e, lintel_health_now_ms());
    uint64_t info = atomic_load_explicit(&e->info, memory_order_relaxed);
    out->since = (int64_t)(info >> 30);
    describe(info, out->reason, sizeof(out->reason));
    out->changes = atomic_load_explicit(&e->changes, memory_order_relaxed);
}

int lintel_health_render_metrics(const struct lintel_snapshot *s, struct evbuffer *out)
{
    const struct lintel_config *cfg = s->cfg;
    size_t total = 0, n = 0;
    for (size_t i = 0; i < cfg->nupstreams; i++)
        total += cfg->upstreams[i].ntargets;
    struct lintel_target_sample *v = malloc((total ? total : 1) * sizeof(*v));
    if (!v)
        return -1;
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        const struct lintel_upstream_conf *u = &cfg->upstreams[i];
        for (size_t t = 0; t < u->ntargets; t++) {
            const char *addr = u->targets[t].addr.text ? u->targets[t].addr.text : "";
            bool listed = false; /* one series per address, even if the file lists it twice */
            for (size_t k = 0; k < t && !listed; k++)
                listed = u->targets[k].addr.text && strcmp(u->targets[k].addr.text, addr) == 0;
            if (listed)
                continue;
            struct lintel_health_status st;
            lintel_health_status_get(s->health, u, t, &st);
            v[n++] = (struct lintel_target_sample){u->name, addr, st.up, st.changes};
        }
    }
    lintel_metrics_render_targets(out, v, n);
    free(v);
    return 0;
}
