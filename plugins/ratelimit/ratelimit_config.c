/* ratelimit: reading and checking the configuration (create, main thread). Everything the
 * request path needs is computed here once: limits sorted by period with their header names,
 * token-bucket refill steps, the key's parts, the Redis address resolved to a numeric IP. */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <lintel/config.h>
#include <lintel/text.h>

#include "ratelimit.h"

#define LIMIT_MAX 1000000000 /* requests per period */
#define TICK_MIN_MS 10       /* token_bucket refill step bounds (ratelimit_local.c) */
#define TICK_MAX_MS 1000
#define REDIS_TIMEOUT_MS 100 /* default redis.timeout */
#define REDIS_PREFIX "lintel:ratelimit:"
#define PASSWORD_MAX 512

struct period {
    const char *key;
    char code;
    uint64_t ms;
    const char *limit_header, *remaining_header;
};

static const struct period periods[] = {
    {"second", 's', 1000, "X-RateLimit-Limit-Second", "X-RateLimit-Remaining-Second"},
    {"minute", 'm', 60 * 1000, "X-RateLimit-Limit-Minute", "X-RateLimit-Remaining-Minute"},
    {"hour", 'h', 3600 * 1000, "X-RateLimit-Limit-Hour", "X-RateLimit-Remaining-Hour"},
    {"day", 'd', 86400 * 1000, "X-RateLimit-Limit-Day", "X-RateLimit-Remaining-Day"},
};
#define NPERIODS (sizeof(periods) / sizeof(periods[0]))

static const char *const top_keys[] = {
    "second", "minute",       "hour",   "day",   "algorithm",      "burst", "key",
    "status", "hide_headers", "policy", "redis", "fault_tolerant", NULL};
static const char *const redis_keys[] = {"host",     "port",   "timeout", "password",
                                         "database", "prefix", NULL};

/* Shorthands for the config context every reader needs. */
struct reader {
    const struct lintel_host_api *host;
    const lintel_instance *self;
    lintel_cfg_error *err;
};

static int fail(const struct reader *rd, const lintel_cfg *node, const char *msg)
{
    rd->host->cfg_error(rd->err, node, "%s", msg);
    return -1;
}

/* An integer in [lo, hi] at node; msg describes the range. */
static int read_int(const struct reader *rd, const lintel_cfg *node, int64_t lo, int64_t hi,
                    const char *msg, int64_t *out)
{
    if (rd->host->cfg_int(node, out) != 0 || *out < lo || *out > hi)
        return fail(rd, node, msg);
    return 0;
}

static int read_bool(const struct reader *rd, const lintel_cfg *node, bool *out)
{
    int b;
    if (!node)
        return 0;
    if (rd->host->cfg_bool(node, &b) != 0)
        return fail(rd, node, "must be true or false");
    *out = b != 0;
    return 0;
}

/* A scalar that is one of words (NULL-terminated); its index, or -1 after the error. */
static int read_word(const struct reader *rd, const lintel_cfg *node, const char *const *words,
                     const char *msg)
{
    const char *s = rd->host->cfg_str(node);
    for (int i = 0; s && words[i]; i++)
        if (strcmp(s, words[i]) == 0)
            return i;
    return fail(rd, node, msg);
}

/* ---- limits and algorithm -------------------------------------------------------------------- */

static int read_limits(const struct reader *rd, const lintel_cfg *config, struct ratelimit *rl)
{
    for (size_t i = 0; i < NPERIODS; i++) {
        const lintel_cfg *node = rd->host->cfg_get(config, periods[i].key);
        if (!node)
            continue;
        int64_t n;
        if (read_int(rd, node, 1, LIMIT_MAX, "must be an integer from 1 to 1000000000", &n) < 0)
            return -1;
        struct rl_limit *l = &rl->limits[rl->nlimits++];
        *l = (struct rl_limit){.code = periods[i].code,
                               .limit_header = periods[i].limit_header,
                               .remaining_header = periods[i].remaining_header,
                               .period_ms = periods[i].ms,
                               .limit = n,
                               .burst = n};
        /* One refill step is worth at most one request (a shorter step cannot be told apart
         * from clock jitter): see ratelimit_local.c. */
        uint64_t tick = periods[i].ms / (uint64_t)n;
        l->tick_ms = tick < TICK_MIN_MS ? TICK_MIN_MS : tick > TICK_MAX_MS ? TICK_MAX_MS : tick;
    }
    if (rl->nlimits == 0) {
        rd->host->cfg_error(rd->err, config, "one of second, minute, hour, day: required");
        return -1;
    }
    return 0;
}

static int read_algorithm(const struct reader *rd, const lintel_cfg *config, struct ratelimit *rl)
{
    static const char *const names[] = {"sliding_window", "fixed_window", "token_bucket", NULL};
    static const enum rl_algorithm values[] = {RL_SLIDING_WINDOW, RL_FIXED_WINDOW, RL_TOKEN_BUCKET};
    const lintel_cfg *node = rd->host->cfg_get(config, "algorithm");
    rl->algorithm = RL_SLIDING_WINDOW;
    if (node) {
        int i =
            read_word(rd, node, names, "must be one of sliding_window, fixed_window, token_bucket");
        if (i < 0)
            return -1;
        rl->algorithm = values[i];
    }
    const lintel_cfg *burst = rd->host->cfg_get(config, "burst");
    if (!burst)
        return 0;
    if (rl->algorithm != RL_TOKEN_BUCKET)
        return fail(rd, burst, "only with algorithm token_bucket");
    int64_t b;
    if (read_int(rd, burst, 1, LIMIT_MAX, "must be an integer from 1 to 1000000000", &b) < 0)
        return -1;
    for (unsigned i = 0; i < rl->nlimits; i++)
        rl->limits[i].burst = b;
    return 0;
}

/* ---- key ------------------------------------------------------------------------------------- */

static int read_part(const struct reader *rd, const lintel_cfg *node, struct rl_part *p)
{
    static const char *const words[] = {"ip", "consumer", "route", "global", NULL};
    static const enum rl_part_kind kinds[] = {RL_PART_IP, RL_PART_CONSUMER, RL_PART_ROUTE,
                                              RL_PART_GLOBAL};
    static const char msg[] = "must be ip, consumer, route, global, { header: NAME } or "
                              "{ arg: NAME }";
    const struct lintel_host_api *h = rd->host;
    if (h->cfg_type(node) == LINTEL_CFG_SCALAR) {
        int i = read_word(rd, node, words, msg);
        if (i < 0)
            return -1;
        *p = (struct rl_part){.kind = kinds[i]};
        return 0;
    }
    if (h->cfg_type(node) != LINTEL_CFG_MAP || h->cfg_len(node) != 1)
        return fail(rd, node, msg);
    const char *k = h->cfg_key_at(node, 0);
    const lintel_cfg *v = h->cfg_at(node, 0);
    if (strcmp(k, "header") == 0)
        p->kind = RL_PART_HEADER;
    else if (strcmp(k, "arg") == 0)
        p->kind = RL_PART_ARG;
    else
        return fail(rd, v, "unknown key");
    p->name = h->cfg_str(v);
    if (!p->name || !*p->name)
        return fail(rd, v, "must be a non-empty string");
    if (p->kind == RL_PART_HEADER && !lintel_is_token(p->name, strlen(p->name)))
        return fail(rd, v, "must be a header name");
    return 0;
}

static int read_key(const struct reader *rd, const lintel_cfg *config, struct ratelimit *rl)
{
    const struct lintel_host_api *h = rd->host;
    const lintel_cfg *node = h->cfg_get(config, "key");
    if (!node) {
        rl->parts[0] = (struct rl_part){.kind = RL_PART_IP};
        rl->nparts = 1;
        return 0;
    }
    if (h->cfg_type(node) != LINTEL_CFG_LIST) {
        rl->nparts = 1;
        return read_part(rd, node, &rl->parts[0]);
    }
    size_t n = h->cfg_len(node);
    if (n == 0 || n > RL_MAX_PARTS)
        return fail(rd, node, "must list 1 to 8 parts");
    for (size_t i = 0; i < n; i++) {
        const lintel_cfg *item = h->cfg_at(node, i);
        if (read_part(rd, item, &rl->parts[i]) < 0)
            return -1;
        if (rl->parts[i].kind == RL_PART_GLOBAL && n > 1)
            return fail(rd, item, "global cannot be combined");
    }
    rl->nparts = (unsigned)n;
    return 0;
}

/* ---- policy and redis ------------------------------------------------------------------------ */

/* Resolves name once, here, so that no worker ever waits for DNS. */
static int resolve(const struct reader *rd, const lintel_cfg *node, const char *name,
                   struct rl_redis_config *rc)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(name, NULL, &hints, &res) != 0 || !res)
        return fail(rd, node, "cannot resolve host");
    int rc_ = getnameinfo(res->ai_addr, res->ai_addrlen, rc->addr, sizeof(rc->addr), NULL, 0,
                          NI_NUMERICHOST);
    freeaddrinfo(res);
    return rc_ == 0 ? 0 : fail(rd, node, "cannot resolve host");
}

static int read_redis(const struct reader *rd, const lintel_cfg *node, struct ratelimit *rl)
{
    const struct lintel_host_api *h = rd->host;
    struct rl_redis_config *rc = &rl->redis;
    if (lintel_cfg_require_map(h, node, redis_keys, rd->err) < 0)
        return -1;

    const lintel_cfg *host = h->cfg_get(node, "host");
    if (!host) {
        h->cfg_error(rd->err, node, "host: required");
        return -1;
    }
    const char *name = h->cfg_str(host);
    if (!name || !*name)
        return fail(rd, host, "must be a host name or address");
    if (resolve(rd, host, name, rc) < 0)
        return -1;

    int64_t v = 6379;
    const lintel_cfg *port = h->cfg_get(node, "port");
    if (port && read_int(rd, port, 1, 65535, "must be a port from 1 to 65535", &v) < 0)
        return -1;
    rc->port = (int)v;

    rc->timeout_ms = REDIS_TIMEOUT_MS;
    const lintel_cfg *timeout = h->cfg_get(node, "timeout");
    if (timeout && (h->cfg_duration_ms(timeout, &rc->timeout_ms) != 0 || rc->timeout_ms == 0))
        return fail(rd, timeout, "must be a positive duration");

    const lintel_cfg *db = h->cfg_get(node, "database");
    if (db && read_int(rd, db, 0, 1000000, "must be an integer from 0", &rc->database) < 0)
        return -1;

    rc->prefix = REDIS_PREFIX;
    const lintel_cfg *prefix = h->cfg_get(node, "prefix");
    if (prefix) {
        rc->prefix = h->cfg_str(prefix);
        if (!rc->prefix || strlen(rc->prefix) > 64)
            return fail(rd, prefix, "must be a string of at most 64 bytes");
    }

    const lintel_cfg *password = h->cfg_get(node, "password");
    if (password) {
        char buf[PASSWORD_MAX];
        long n = h->secret(rd->self, password, buf, sizeof(buf));
        const char *msg = NULL;
        if (n < 0)
            msg = "cannot read the secret";
        else if ((size_t)n > sizeof(buf))
            msg = "must be at most 512 bytes";
        else if (!(rc->password = malloc((size_t)n + 1)))
            msg = "out of memory";
        else {
            memcpy(rc->password, buf, (size_t)n);
            rc->password[n] = '\0';
            rc->password_len = (size_t)n;
        }
        explicit_bzero(buf, sizeof(buf)); /* no copy of the secret left on the stack */
        if (msg)
            return fail(rd, password, msg);
    }
    return 0;
}

static int read_policy(const struct reader *rd, const lintel_cfg *config, struct ratelimit *rl)
{
    static const char *const names[] = {"local", "redis", NULL};
    const struct lintel_host_api *h = rd->host;
    const lintel_cfg *node = h->cfg_get(config, "policy");
    const lintel_cfg *redis = h->cfg_get(config, "redis");
    const lintel_cfg *ft = h->cfg_get(config, "fault_tolerant");
    rl->policy = RL_POLICY_LOCAL;
    rl->fault_tolerant = true;
    if (node) {
        int i = read_word(rd, node, names, "must be one of local, redis");
        if (i < 0)
            return -1;
        rl->policy = i == 1 ? RL_POLICY_REDIS : RL_POLICY_LOCAL;
    }
    if (rl->policy == RL_POLICY_LOCAL) {
        if (redis)
            return fail(rd, redis, "only with policy redis");
        if (ft)
            return fail(rd, ft, "only with policy redis");
        return 0;
    }
    if (!redis) {
        h->cfg_error(rd->err, config, "redis: required");
        return -1;
    }
    if (read_bool(rd, ft, &rl->fault_tolerant) < 0)
        return -1;
    return read_redis(rd, redis, rl);
}

/* ---- create / destroy ------------------------------------------------------------------------ */

int rl_create(const struct lintel_host_api *host, lintel_instance *self, const lintel_cfg *config,
              lintel_cfg_error *err, void **instance)
{
    const struct reader rd = {.host = host, .self = self, .err = err};
    if (lintel_cfg_require_config(host, config, top_keys, err) < 0)
        return -1;

    struct ratelimit *rl = calloc(1, sizeof(*rl));
    if (!rl) {
        host->cfg_error(err, NULL, "out of memory");
        return -1;
    }
    rl->host = host;
    rl->self = self;
    rl->status = 429;
    int64_t status;
    const lintel_cfg *st = host->cfg_get(config, "status");
    if (read_limits(&rd, config, rl) < 0 || read_algorithm(&rd, config, rl) < 0 ||
        read_key(&rd, config, rl) < 0 ||
        (st &&
         read_int(&rd, st, 400, 599, "must be an HTTP status from 400 to 599", &status) < 0) ||
        read_bool(&rd, host->cfg_get(config, "hide_headers"), &rl->hide_headers) < 0 ||
        read_policy(&rd, config, rl) < 0)
        goto fail;
    if (st)
        rl->status = (int)status;
    *instance = rl;
    return 0;
fail:
    rl_destroy(rl);
    return -1;
}

void rl_destroy(void *instance)
{
    struct ratelimit *rl = instance;
    if (!rl)
        return;
    if (rl->redis.password) {
        explicit_bzero(rl->redis.password, rl->redis.password_len); /* no secret in freed memory */
        free(rl->redis.password);
    }
    free(rl);
}
