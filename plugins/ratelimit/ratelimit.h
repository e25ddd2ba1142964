/* ratelimit: what the plugin's files share. Private to plugins/ratelimit (nothing here is
 * exported from the .so: the build hides every symbol but the descriptor).
 *
 *   ratelimit_config.c   create/destroy: YAML -> struct ratelimit (main thread)
 *   ratelimit.c          the ACCESS handler, the request's key, response headers, the descriptor
 *   ratelimit_local.c    the three algorithms on the host's shared counters and cache
 *   ratelimit_redis.c    policy redis: hiredis on the worker loop, the Lua script, fallbacks */
#ifndef LINTEL_RATELIMIT_H
#define LINTEL_RATELIMIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lintel/plugin.h>

#define RL_MAX_LIMITS 4     /* second, minute, hour, day */
#define RL_MAX_PARTS 8      /* parts of a composite key */
#define RL_MAX_WORKERS 1024 /* lintel's own ceiling on `workers` */
/* A request's key as text ("i:10.0.0.7|h:abc"); longer keys keep a prefix and a hash of the rest,
 * so the host's shared-state key (at most 200 bytes) always fits. */
#define RL_KEY_MAX 160
/* Room for "<alg><period>|" before the key in shared-state keys. */
#define RL_KEY_PREFIX 3

enum rl_algorithm { RL_SLIDING_WINDOW, RL_FIXED_WINDOW, RL_TOKEN_BUCKET };
enum rl_policy { RL_POLICY_LOCAL, RL_POLICY_REDIS };
enum rl_part_kind {
    RL_PART_IP,
    RL_PART_CONSUMER,
    RL_PART_HEADER,
    RL_PART_ARG,
    RL_PART_ROUTE,
    RL_PART_GLOBAL
};

struct rl_part {
    enum rl_part_kind kind;
    const char *name; /* header or query argument; borrowed from the config tree */
};

/* One configured limit: `limit` requests per `period_ms`. */
struct rl_limit {
    char code;                    /* 's', 'm', 'h', 'd': part of every shared-state key */
    const char *limit_header;     /* "X-RateLimit-Limit-Second" */
    const char *remaining_header; /* "X-RateLimit-Remaining-Second" */
    uint64_t period_ms;
    int64_t limit;
    int64_t burst;    /* token_bucket: bucket capacity in requests */
    uint64_t tick_ms; /* token_bucket: refill step (see ratelimit_local.c) */
};

/* What one limit says about one request. */
struct rl_outcome {
    bool allowed;
    int64_t remaining; /* requests left after this one (0 when refused) */
    uint64_t reset_ms; /* until the quota is whole again (window end / bucket full) */
    uint64_t retry_ms; /* refused: until a request would pass */
};

struct rl_decision {
    bool allowed;
    struct rl_outcome o[RL_MAX_LIMITS]; /* in the order of struct ratelimit's limits */
};

struct rl_redis_config {
    char addr[64]; /* numeric IP, resolved at create */
    int port;
    uint64_t timeout_ms;
    char *password; /* NULL: no AUTH; owned by the instance */
    size_t password_len;
    const char *prefix; /* of every Redis key; borrowed from the config tree or static */
    int64_t database;
};

struct rl_redis;

struct ratelimit {
    const struct lintel_host_api *host;
    const lintel_instance *self;
    enum rl_algorithm algorithm;
    struct rl_limit limits[RL_MAX_LIMITS]; /* shortest period first */
    unsigned nlimits;
    struct rl_part parts[RL_MAX_PARTS];
    unsigned nparts;
    int status;
    bool hide_headers;
    enum rl_policy policy;
    bool fault_tolerant;
    struct rl_redis_config redis;
    /* Once-only warnings, shared by every worker. */
    atomic_bool warned_store_full;
    atomic_bool warned_redis;       /* Redis down or slow; cleared when it answers again */
    atomic_bool warned_redis_setup; /* AUTH, SELECT or SCRIPT LOAD refused (every retry would) */
    /* The host's cache refused a new entry: new token_bucket keys use fixed windows. */
    atomic_bool cache_full;
    /* Policy redis: each worker's connection, made and freed on the worker itself
     * (worker_init / worker_fini). */
    struct rl_redis *conns[RL_MAX_WORKERS];
};

/* Events counted with metric_add, named by rl_count. */
enum rl_metric { RL_M_ALLOWED, RL_M_LIMITED, RL_M_REDIS, RL_M_FALLBACK, RL_M_STORE_ERRORS, RL_M_N };

/* ---- ratelimit_config.c ---------------------------------------------------------------------- */

/* The descriptor's create and destroy. */
int rl_create(const struct lintel_host_api *host, lintel_instance *self, const lintel_cfg *config,
              lintel_cfg_error *err, void **instance);
void rl_destroy(void *instance);

/* ---- ratelimit.c ----------------------------------------------------------------------------- */

/* Writes v in decimal to out (at least 21 bytes, NUL-terminated); returns the length. Used on
 * the request path instead of printf. */
size_t rl_fmt_u64(char *out, uint64_t v);

/* Counts one event (metric_add: cheap on a worker, so every event is added as it happens). */
void rl_count(struct ratelimit *rl, enum rl_metric m);

/* Applies a decision to r: rate-limit headers, log fields, metrics, and the refusal (status,
 * Retry-After, body). store is the log field's value ("local", "redis", "fallback"; NULL: no
 * field). Returns what the ACCESS handler returns: LINTEL_CONTINUE or LINTEL_RESPOND (LINTEL_ERROR
 * only when the host runs out of memory). Worker thread. */
enum lintel_result rl_apply(struct ratelimit *rl, lintel_req *r, const struct rl_decision *d,
                            const char *store);

/* Refuses r because the Redis store cannot be reached and fault_tolerant is off: 503. */
enum lintel_result rl_unavailable(struct ratelimit *rl, lintel_req *r);

/* ---- ratelimit_local.c ----------------------------------------------------------------------- */

/* Decides on r with the host's shared counters and cache. key points at a buffer with
 * RL_KEY_PREFIX free bytes before the key text (key[-3..-1] are overwritten) and NUL after it.
 * A store failure lets the request through (logged once, counted as store_errors). */
void rl_local_decide(struct ratelimit *rl, lintel_req *r, char *key, struct rl_decision *d);

/* ---- ratelimit_redis.c ----------------------------------------------------------------------- */

/* Per-worker connection: started in worker_init (connecting in the background), freed in
 * worker_fini on that worker. tasks_stopped: the host has already stopped the instance's watches
 * and timers (worker_fini), so they must not be stopped again. NULL when out of memory. */
struct rl_redis *rl_redis_start(struct ratelimit *rl);
void rl_redis_stop(struct rl_redis *rr, bool tasks_stopped);

/* Sends r's check to Redis. Returns 1 when the handler must return LINTEL_PAUSE (the reply, a
 * timeout or a failure resumes r later, deciding locally when Redis fails), 0 when Redis cannot
 * be used now (not connected, slow, too many calls in flight): decide without it. key is the
 * request's key text (copied). Worker thread. */
int rl_redis_check(struct rl_redis *rr, lintel_req *r, const char *key, size_t keylen);

#endif
