/* ratelimit: limits requests per second, minute, hour and day, keyed by consumer, client IP,
 * header, query argument, route or a combination; counts are shared by every worker (the host's
 * shared counters) or by every gateway (policy redis). docs/plugins/ratelimit.md describes it.
 *
 * This file is the request path: the ACCESS handler builds the request's key, asks the local
 * store (ratelimit_local.c) or Redis (ratelimit_redis.c), and applies the decision: headers on
 * whatever response follows, or the refusal. Configuration is read in ratelimit_config.c. */
#include <stdlib.h>
#include <string.h>

#include <lintel/hash.h>

#include "ratelimit.h"

static const char *const metric_names[RL_M_N] = {"allowed", "limited", "redis", "fallback",
                                                 "store_errors"};

/* ---- small formatting helpers (no printf on the request path) -------------------------------- */

size_t rl_fmt_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}

static int set_number(const struct lintel_host_api *h, lintel_req *r, const char *name, uint64_t v)
{
    char num[21];
    size_t n = rl_fmt_u64(num, v);
    return h->resp_header_set(r, name, num, n);
}

/* Whole seconds, rounded up: a client that waits this long is not refused again early. */
static uint64_t ceil_seconds(uint64_t ms)
{
    return (ms + 999) / 1000;
}

/* ---- the request's key ----------------------------------------------------------------------- */

/* The key is the text of its parts, each as TAG LENGTH ':' VALUE ("i8:10.0.0.7h3:abc"), so that
 * no choice of header values can make two different requests' keys equal. Past RL_KEY_MAX bytes
 * the text keeps its start and ends in '#' and a hash of the whole. */
struct keybuf {
    char *out;    /* RL_KEY_MAX + 1 bytes */
    size_t len;   /* bytes in out */
    size_t total; /* bytes of the whole key */
    uint64_t hash;
};

static void key_add(struct keybuf *k, const char *p, size_t n)
{
    k->hash = lintel_fnv1a64(k->hash, p, n);
    if (k->len < RL_KEY_MAX) {
        size_t room = RL_KEY_MAX - k->len;
        memcpy(k->out + k->len, p, n < room ? n : room);
        k->len += n < room ? n : room;
    }
    k->total += n;
}

static void key_part(struct keybuf *k, char tag, struct lintel_str v)
{
    char head[24];
    head[0] = tag;
    size_t n = 1 + rl_fmt_u64(head + 1, v.len);
    head[n++] = ':';
    key_add(k, head, n);
    key_add(k, v.ptr ? v.ptr : "", v.len);
}

/* Writes r's key into out (RL_KEY_MAX + 1 bytes, NUL-terminated) and returns its length.
 * A part the request lacks (no consumer, header or argument) is replaced by the client IP. */
static size_t build_key(const struct ratelimit *rl, lintel_req *r, char *out)
{
    const struct lintel_host_api *h = rl->host;
    struct keybuf k = {.out = out, .hash = LINTEL_FNV1A64_OFFSET};
    for (unsigned i = 0; i < rl->nparts; i++) {
        const struct rl_part *p = &rl->parts[i];
        struct lintel_str v = {NULL, 0};
        char tag = 'i';
        switch (p->kind) {
        case RL_PART_GLOBAL:
            key_add(&k, "g", 1);
            continue;
        case RL_PART_ROUTE:
            tag = 'r';
            v = h->req_route(r);
            break;
        case RL_PART_CONSUMER:
            tag = 'c';
            v = h->consumer_name(r);
            break;
        case RL_PART_HEADER:
            tag = 'h';
            v = h->req_header(r, p->name);
            break;
        case RL_PART_ARG:
            tag = 'a';
            v = h->req_arg(r, p->name);
            break;
        case RL_PART_IP:
            break;
        }
        if (p->kind != RL_PART_ROUTE && !v.ptr) {
            tag = 'i';
            v = h->req_client_addr(r);
        }
        key_part(&k, tag, v);
    }
    if (k.total > RL_KEY_MAX) {
        static const char hex[] = "0123456789abcdef";
        char *end = out + RL_KEY_MAX - 17;
        *end++ = '#';
        for (int s = 60; s >= 0; s -= 4)
            *end++ = hex[(k.hash >> s) & 0xf];
        k.len = RL_KEY_MAX;
    }
    out[k.len] = '\0';
    return k.len;
}

/* ---- applying a decision --------------------------------------------------------------------- */

void rl_count(struct ratelimit *rl, enum rl_metric m)
{
    rl->host->metric_add(rl->self, metric_names[m], 1);
}

/* The limit a client should watch: the fewest requests left, and of those the one that takes
 * longest to come back. */
static unsigned tightest(const struct ratelimit *rl, const struct rl_decision *d)
{
    unsigned t = 0;
    for (unsigned i = 1; i < rl->nlimits; i++)
        if (d->o[i].remaining < d->o[t].remaining ||
            (d->o[i].remaining == d->o[t].remaining && d->o[i].reset_ms > d->o[t].reset_ms))
            t = i;
    return t;
}

static int set_headers(const struct ratelimit *rl, lintel_req *r, const struct rl_decision *d,
                       unsigned t)
{
    const struct lintel_host_api *h = rl->host;
    int rc = 0;
    for (unsigned i = 0; i < rl->nlimits; i++) {
        rc |= set_number(h, r, rl->limits[i].limit_header, (uint64_t)rl->limits[i].limit);
        rc |= set_number(h, r, rl->limits[i].remaining_header, (uint64_t)d->o[i].remaining);
    }
    rc |= set_number(h, r, "RateLimit-Limit", (uint64_t)rl->limits[t].limit);
    rc |= set_number(h, r, "RateLimit-Remaining", (uint64_t)d->o[t].remaining);
    rc |= set_number(h, r, "RateLimit-Reset", ceil_seconds(d->o[t].reset_ms));
    return rc;
}

enum lintel_result rl_apply(struct ratelimit *rl, lintel_req *r, const struct rl_decision *d,
                            const char *store)
{
    const struct lintel_host_api *h = rl->host;
    unsigned t = tightest(rl, d);
    if (!rl->hide_headers && set_headers(rl, r, d, t) != 0)
        return LINTEL_ERROR;

    char num[21];
    size_t n = rl_fmt_u64(num, (uint64_t)d->o[t].remaining);
    h->log_field(r, "ratelimit", d->allowed ? "allowed" : "limited", 7);
    h->log_field(r, "ratelimit_remaining", num, n);
    if (store)
        h->log_field(r, "ratelimit_store", store, strlen(store));
    rl_count(rl, d->allowed ? RL_M_ALLOWED : RL_M_LIMITED);
    if (d->allowed)
        return LINTEL_CONTINUE;

    uint64_t retry = 0;
    for (unsigned i = 0; i < rl->nlimits; i++)
        if (!d->o[i].allowed && d->o[i].retry_ms > retry)
            retry = d->o[i].retry_ms;
    retry = ceil_seconds(retry);
    if (set_number(h, r, "Retry-After", retry ? retry : 1) != 0)
        return LINTEL_ERROR;
    static const char body[] = "{\"error\":\"rate limit exceeded\"}";
    if (h->respond(r, rl->status, "application/json", body, sizeof(body) - 1) != 0)
        return LINTEL_ERROR;
    return LINTEL_RESPOND;
}

enum lintel_result rl_unavailable(struct ratelimit *rl, lintel_req *r)
{
    static const char body[] = "{\"error\":\"rate limit store unavailable\"}";
    rl->host->log_field(r, "ratelimit", "unavailable", 11);
    if (rl->host->respond(r, 503, "application/json", body, sizeof(body) - 1) != 0)
        return LINTEL_ERROR;
    return LINTEL_RESPOND;
}

/* ---- handlers -------------------------------------------------------------------------------- */

static enum lintel_result on_access(lintel_req *r, void *instance)
{
    struct ratelimit *rl = instance;
    char buf[RL_KEY_PREFIX + RL_KEY_MAX + 1];
    char *key = buf + RL_KEY_PREFIX;
    size_t keylen = build_key(rl, r, key);
    const char *store = NULL;
    if (rl->policy == RL_POLICY_REDIS) {
        unsigned w = rl->host->req_worker(r);
        struct rl_redis *rr = w < RL_MAX_WORKERS ? rl->conns[w] : NULL;
        if (rr && rl_redis_check(rr, r, key, keylen) == 1)
            return LINTEL_PAUSE;
        if (!rl->fault_tolerant)
            return rl_unavailable(rl, r);
        rl_count(rl, RL_M_FALLBACK);
        store = "fallback";
    }
    struct rl_decision d;
    rl_local_decide(rl, r, key, &d);
    return rl_apply(rl, r, &d, store);
}

/* Policy redis only: the worker's own connection (the counts need no per-worker state). */
static int worker_init(void *instance, unsigned worker)
{
    struct ratelimit *rl = instance;
    if (rl->policy != RL_POLICY_REDIS)
        return 0;
    if (worker >= RL_MAX_WORKERS)
        return -1;
    rl->conns[worker] = rl_redis_start(rl);
    return rl->conns[worker] ? 0 : -1;
}

static void worker_fini(void *instance, unsigned worker)
{
    struct ratelimit *rl = instance;
    if (worker >= RL_MAX_WORKERS || !rl->conns[worker])
        return;
    rl_redis_stop(rl->conns[worker], true);
    rl->conns[worker] = NULL;
}

LINTEL_PLUGIN_EXPORT const struct lintel_plugin lintel_plugin_v1 = {
    LINTEL_PLUGIN_INIT,
    .name = "ratelimit",
    .version = "1.1.1",
    /* After authentication plugins (which set the consumer a key may use), before the rest. */
    .priority = 900,
    .create = rl_create,
    .destroy = rl_destroy,
    .worker_init = worker_init,
    .worker_fini = worker_fini,
    .access = on_access,
};
