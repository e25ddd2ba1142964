/* canary: sends a sticky share of a route's users to a canary upstream.
 *
 *     plugins: [{ name: canary, config: { upstream: users-canary, percent: 10,
 *                                         key: { from: arg, name: uid } } }]
 *
 * BALANCE hashes the user's key into a bucket 0..9999 that never changes, and sends the request
 * to the canary upstream when the bucket is below the current percentage (in basis points), else
 * leaves the route's own upstream (stable). A user's bucket is fixed, so raising the percentage
 * only moves users from stable to canary, and lowering it only back. The percentage is fixed, or
 * follows a time ramp read from the host's clock (now_ms) on each request. An override header or
 * cookie forces either side; upstream_fallback keeps canary users on stable while the canary
 * upstream has no healthy target.
 *
 * The configuration is read once in canary_config.c; the handler here only reads the instance. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lintel/hash.h>

#include "canary-internal.h"

/* Runs before BALANCE plugins of priority 0 that pick a target of the upstream it chose. */
#define CANARY_PRIORITY 100
#define GAUGE_MS 1000 /* worker 0 sets the share gauges once a second */

static const char *const metric_names[CANARY_M_N] = {"canary",   "stable", "forced",
                                                     "fallback", "no_key", "errors"};

/* The share of users on the canary now, in basis points. */
static uint32_t current_bp(const struct canary *c, uint64_t now_ms)
{
    if (!c->ramp)
        return c->percent_bp;
    if (now_ms < c->start_ms)
        return c->from_bp;
    uint64_t elapsed = now_ms - c->start_ms;
    if (elapsed >= c->duration_ms)
        return c->to_bp;
    int64_t span = (int64_t)c->to_bp - (int64_t)c->from_bp;
    /* Steps: `steps` equal intervals; in interval k the share is from + span * k / steps, so the
     * last increment lands exactly at start + duration. Smooth: linear in the milliseconds. */
    int64_t done = c->steps ? (int64_t)(elapsed * c->steps / c->duration_ms) : (int64_t)elapsed;
    int64_t whole = c->steps ? (int64_t)c->steps : (int64_t)c->duration_ms;
    return (uint32_t)((int64_t)c->from_bp + span * done / whole);
}

/* ---- metrics --------------------------------------------------------------------------------- */

static void count(struct canary *c, enum canary_metric m)
{
    c->host->metric_add(c->self, metric_names[m], 1);
}

/* The gauges, from worker 0 only (one writer): the share in whole percent and in basis points. */
static void set_gauges(struct canary *c)
{
    uint32_t bp = current_bp(c, c->host->now_ms());
    c->host->metric_set(c->self, "percent", bp / 100);
    c->host->metric_set(c->self, "percent_bp", bp);
}

static void on_gauge_timer(void *arg)
{
    set_gauges(arg);
}

/* ---- instances (create, destroy: main thread; worker_init: each worker) -------------------- */

static int create(const struct lintel_host_api *host, lintel_instance *self,
                  const lintel_cfg *config, lintel_cfg_error *err, void **instance)
{
    struct canary *c = calloc(1, sizeof(*c));
    if (!c) {
        host->cfg_error(err, config, "out of memory");
        return -1;
    }
    c->host = host;
    c->self = self;
    if (canary_config_parse(c, config, err) < 0) {
        free(c);
        return -1;
    }
    *instance = c;
    return 0;
}

static void destroy(void *instance)
{
    free(instance);
}

/* Worker 0 keeps the gauges: set now, then once a second (also without traffic), ramp or not.
 * After a reload the instance it replaces keeps its timer until it has drained, and may set the
 * gauges of the same instance name meanwhile: the next tick puts this instance's share back. */
static int worker_init(void *instance, unsigned worker)
{
    struct canary *c = instance;
    if (worker != 0)
        return 0;
    set_gauges(c);
    if (!c->host->worker_timer(c->self, GAUGE_MS, 1, on_gauge_timer, c))
        return -1;
    return 0;
}

/* ---- requests (worker threads) ------------------------------------------------------------ */

static int value_is(struct lintel_str v, const char *word)
{
    size_t n = strlen(word);
    return v.len == n && strncasecmp(v.ptr, word, n) == 0;
}

/* What the override header (first) or cookie says: 1 canary, 0 stable, -1 nothing (absent, or
 * a value that is none of canary, 1, stable, 0). */
static int forced_side(const struct canary *c, lintel_req *r)
{
    struct lintel_str v[2] = {{NULL, 0}, {NULL, 0}};
    if (c->override_header)
        v[0] = c->host->req_header(r, c->override_header);
    if (c->override_cookie)
        v[1] = c->host->req_cookie(r, c->override_cookie);
    for (int i = 0; i < 2; i++) {
        if (!v[i].ptr)
            continue;
        if (value_is(v[i], "canary") || value_is(v[i], "1"))
            return 1;
        if (value_is(v[i], "stable") || value_is(v[i], "0"))
            return 0;
    }
    return -1;
}

/* The request's stickiness key; the client address when the configured one is absent or empty. */
static struct lintel_str user_key(struct canary *c, lintel_req *r)
{
    const struct lintel_host_api *h = c->host;
    struct lintel_str k = {NULL, 0};
    switch (c->key_from) {
    case CANARY_KEY_IP:
        return h->req_client_addr(r);
    case CANARY_KEY_CONSUMER:
        k = h->consumer_name(r);
        break;
    case CANARY_KEY_ARG:
        k = h->req_arg(r, c->key_name);
        break;
    case CANARY_KEY_HEADER:
        k = h->req_header(r, c->key_name);
        break;
    case CANARY_KEY_COOKIE:
        k = h->req_cookie(r, c->key_name);
        break;
    }
    if (k.ptr && k.len)
        return k;
    count(c, CANARY_M_NO_KEY);
    return h->req_client_addr(r);
}

static enum lintel_result on_balance(lintel_req *r, void *instance)
{
    struct canary *c = instance;
    const struct lintel_host_api *h = c->host;
    int canary = forced_side(c, r);
    if (canary >= 0) {
        count(c, CANARY_M_FORCED);
    } else {
        uint32_t bp = current_bp(c, c->ramp ? h->now_ms() : 0);
        struct lintel_str k = user_key(c, r);
        uint32_t bucket =
            (uint32_t)(lintel_mix64(lintel_fnv1a64(c->hash_seed, k.ptr, k.len)) % CANARY_BUCKETS);
        canary = bucket < bp;
    }
    if (canary && c->upstream_fallback && h->upstream_healthy(r, c->upstream) == 0) {
        count(c, CANARY_M_FALLBACK);
        canary = 0;
    }
    if (canary && h->set_upstream(r, c->upstream) != 0) {
        /* The name was checked at create (upstream_exists): only out of memory; stable serves. */
        count(c, CANARY_M_ERRORS);
        canary = 0;
    }
    count(c, canary ? CANARY_M_CANARY : CANARY_M_STABLE);
    /* The mark says "this is canary traffic": a client must not be able to send it to stable. */
    if (c->mark_header) {
        int rc = canary ? h->req_header_set(r, c->mark_header, c->mark_value, c->mark_value_len)
                        : h->req_header_remove(r, c->mark_header);
        if (rc != 0)
            return LINTEL_ERROR; /* only out of memory */
    }
    h->log_field(r, "canary", canary ? "canary" : "stable", 6);
    return LINTEL_CONTINUE;
}

/* One field per line, as in every plugin's descriptor. */
/* clang-format off */
LINTEL_PLUGIN_EXPORT const struct lintel_plugin lintel_plugin_v1 = {
    LINTEL_PLUGIN_INIT,
    .name = "canary",
    .version = "1.0.1",
    .priority = CANARY_PRIORITY,
    .create = create,
    .destroy = destroy,
    .worker_init = worker_init,
    .balance = on_balance,
};
/* clang-format on */
