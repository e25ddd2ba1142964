/* The `upstreams` section: named pools of targets, how to balance over them, and how long to
 * wait on them. */
#include <string.h>

#include "config-internal.h"

static int read_targets(struct lintel_config_ctx *c, const struct lintel_ynode *map,
                        struct lintel_upstream_conf *up)
{
    static const char *const keys[] = {"address", "weight", NULL};
    const struct lintel_ynode *n;
    size_t mark;

    if (lintel_config_child(c, map, "targets", LINTEL_YNODE_SEQ, true, &n, &mark) < 0)
        return -1;
    if (n->len == 0)
        return lintel_config_fail(c, n, "must not be empty");
    up->targets = lintel_arena_calloc(c->arena, n->len * sizeof(*up->targets));
    if (!up->targets)
        return lintel_config_fail(c, n, "out of memory");
    for (size_t i = 0; i < n->len; i++) {
        size_t item = lintel_ypath_push_index(&c->path, i);
        struct lintel_target_conf *t = &up->targets[i];
        t->weight = 1;
        /* The weight bound keeps the hash ring's virtual nodes (proportional to weight) small. */
        if (lintel_config_map(c, n->items[i], keys) < 0 ||
            lintel_config_address(c, n->items[i], "address", true, &t->addr) < 0 ||
            lintel_config_uint(c, n->items[i], "weight", 1, 1000, &t->weight) < 0)
            return -1;
        lintel_ypath_restore(&c->path, item);
    }
    up->ntargets = n->len;
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

static int read_balance(struct lintel_config_ctx *c, const struct lintel_ynode *map,
                        struct lintel_upstream_conf *up)
{
    static const char *const hash_keys[] = {"on", "name", NULL};
    static const char *const balances[] = {
        [LINTEL_BALANCE_ROUND_ROBIN] = "round_robin",
        [LINTEL_BALANCE_LEAST_CONN] = "least_conn",
        [LINTEL_BALANCE_HASH] = "hash",
    };
    static const char *const hash_ons[] = {
        [LINTEL_HASH_HEADER] = "header",
        [LINTEL_HASH_ARG] = "arg",
        [LINTEL_HASH_COOKIE] = "cookie",
        [LINTEL_HASH_IP] = "ip",
    };
    const struct lintel_ynode *n, *hash;
    const char *s = NULL;
    size_t mark, i;

    up->balance = LINTEL_BALANCE_ROUND_ROBIN;
    if (lintel_config_child(c, map, "balance", LINTEL_YNODE_SCALAR, false, &n, &mark) < 0)
        return -1;
    if (n) {
        for (i = 0; i < sizeof(balances) / sizeof(*balances); i++)
            if (strcmp(n->scalar, balances[i]) == 0)
                break;
        if (i == sizeof(balances) / sizeof(*balances))
            return lintel_config_fail(c, n, "must be round_robin, least_conn or hash");
        up->balance = (enum lintel_balance)i;
        lintel_ypath_restore(&c->path, mark);
    }

    bool want_hash = up->balance == LINTEL_BALANCE_HASH;
    if (lintel_config_child(c, map, "hash", LINTEL_YNODE_MAP, want_hash, &hash, &mark) < 0)
        return -1;
    if (!hash)
        return 0;
    if (!want_hash)
        return lintel_config_fail(c, hash, "only allowed with balance: hash");
    if (lintel_config_map(c, hash, hash_keys) < 0 ||
        lintel_config_string(c, hash, "on", true, &s) < 0)
        return -1;
    for (i = 0; i < sizeof(hash_ons) / sizeof(*hash_ons); i++)
        if (strcmp(s, hash_ons[i]) == 0)
            break;
    if (i == sizeof(hash_ons) / sizeof(*hash_ons)) {
        lintel_ypath_push_key(&c->path, "on");
        return lintel_config_fail(c, lintel_ynode_get(hash, "on"),
                                  "must be header, arg, cookie or ip");
    }
    up->hash_on = (enum lintel_hash_on)i;
    bool want_name = up->hash_on != LINTEL_HASH_IP;
    if (!want_name && lintel_ynode_get(hash, "name")) {
        lintel_ypath_push_key(&c->path, "name");
        return lintel_config_fail(c, lintel_ynode_get(hash, "name"), "not allowed with on: ip");
    }
    if (lintel_config_string(c, hash, "name", want_name, &up->hash_name) < 0)
        return -1;
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

static int read_upstream_timeouts(struct lintel_config_ctx *c, const struct lintel_ynode *map,
                                  struct lintel_upstream_conf *up)
{
    static const char *const keys[] = {"connect", "send", "read", "idle", NULL};
    const struct lintel_ynode *n;
    size_t mark;

    up->connect_ms = 5000;
    up->send_ms = up->read_ms = up->idle_ms = 60000;
    if (lintel_config_child(c, map, "timeouts", LINTEL_YNODE_MAP, false, &n, &mark) < 0)
        return -1;
    if (!n)
        return 0;
    if (lintel_config_map(c, n, keys) < 0 ||
        lintel_config_duration(c, n, "connect", false, &up->connect_ms) < 0 ||
        lintel_config_duration(c, n, "send", false, &up->send_ms) < 0 ||
        lintel_config_duration(c, n, "read", false, &up->read_ms) < 0 ||
        lintel_config_duration(c, n, "idle", false, &up->idle_ms) < 0)
        return -1;
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

static int read_upstream(struct lintel_config_ctx *c, const struct lintel_ynode *map,
                         struct lintel_upstream_conf *up)
{
    static const char *const keys[] = {"targets",  "balance", "hash", "keepalive",
                                       "timeouts", "retries", NULL};

    up->keepalive = 32;
    up->retries = 1;
    up->node = map;
    if (lintel_config_map(c, map, keys) < 0 || read_targets(c, map, up) < 0 ||
        read_balance(c, map, up) < 0 ||
        lintel_config_uint(c, map, "keepalive", 0, 65535, &up->keepalive) < 0 ||
        read_upstream_timeouts(c, map, up) < 0 ||
        lintel_config_uint(c, map, "retries", 0, 100, &up->retries) < 0)
        return -1;
    return 0;
}

int lintel_config_upstreams(struct lintel_config_ctx *c, const struct lintel_ynode *n)
{
    struct lintel_config *cfg = c->cfg;

    if (n->len &&
        !(cfg->upstreams = lintel_arena_calloc(c->arena, n->len * sizeof(*cfg->upstreams))))
        return lintel_config_fail(c, n, "out of memory");
    for (size_t i = 0; i < n->len; i++) {
        struct lintel_upstream_conf *up = &cfg->upstreams[i];
        if (n->keys[i]->len == 0)
            return lintel_config_fail(c, n->keys[i], "upstream name must not be empty");
        size_t mark = lintel_ypath_push_key(&c->path, n->keys[i]->scalar);
        up->index = i;
        up->name = n->keys[i]->scalar;
        if (read_upstream(c, n->items[i], up) < 0)
            return -1;
        lintel_ypath_restore(&c->path, mark);
    }
    cfg->nupstreams = n->len;
    return 0;
}
