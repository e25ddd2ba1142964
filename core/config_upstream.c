/* The `upstreams` section: named pools of targets, how to balance over them, how long to wait
 * on them, and how to tell whether they are healthy. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-internal.h"
#include "config_targets.h"

/* Host names as RFC 1123 allows them (labels of 1 to 63 letters, digits, '-', separated by '.',
 * an optional final '.'), plus '_' as service discovery names use it; the resolver gets them as
 * written. An empty label ("a..b") could never resolve. */
static bool host_name_ok(const char *h, size_t len)
{
    if (len == 0 || len > 253 || h[0] == '-')
        return false;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = h[i];
        if (ch == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_') ||
            ++label > 63)
            return false;
    }
    return true;
}

/* One `address`: an IP address now, or a host name for the resolver. */
static int read_target_address(struct lintel_config_ctx *c, const struct lintel_ynode *map,
                               struct lintel_target_decl *t)
{
    const struct lintel_ynode *n;
    size_t mark;
    char why[256];

    if (lintel_config_child(c, map, "address", LINTEL_YNODE_SCALAR, true, &n, &mark) < 0)
        return -1;
    const char *text = n->scalar, *colon = strrchr(text, ':');
    size_t hlen = colon ? (size_t)(colon - text) : 0;
    struct in_addr a4;
    char host[256];
    t->text = text;
    t->node = n;
    if (text[0] != '[' && colon && hlen > 0 && hlen < sizeof(host) && !memchr(text, ':', hlen)) {
        memcpy(host, text, hlen);
        host[hlen] = '\0';
        if (inet_pton(AF_INET, host, &a4) != 1) {
            /* A name: checked here, resolved by the running gateway (never while loading). */
            if (!host_name_ok(host, hlen))
                return lintel_config_fail(c, n, "must be host:port with a valid host name");
            char *end;
            unsigned long port = strtoul(colon + 1, &end, 10);
            if (colon[1] < '0' || colon[1] > '9' || *end || port < 1 || port > 65535)
                return lintel_config_fail(c, n, "port must be from 1 to 65535");
            t->is_name = true;
            t->port = (uint16_t)port;
            t->host = lintel_arena_strndup(c->arena, host, hlen);
            if (!t->host)
                return lintel_config_fail(c, n, "out of memory");
            c->cfg->has_names = true;
            lintel_ypath_restore(&c->path, mark);
            return 0;
        }
    }
    if (lintel_sockaddr_parse(c->arena, text, &t->addr, why, sizeof(why)) < 0)
        return lintel_config_fail(c, n, "%s", why);
    char ip[INET6_ADDRSTRLEN] = "";
    if (t->addr.ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&t->addr.ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        t->port = ntohs(s6->sin6_port);
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&t->addr.ss;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        t->port = ntohs(s4->sin_port);
    }
    t->host = lintel_arena_strndup(c->arena, ip, strlen(ip));
    if (!t->host)
        return lintel_config_fail(c, n, "out of memory");
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

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
    up->decl = lintel_arena_calloc(c->arena, n->len * sizeof(*up->decl));
    if (!up->decl)
        return lintel_config_fail(c, n, "out of memory");
    for (size_t i = 0; i < n->len; i++) {
        size_t item = lintel_ypath_push_index(&c->path, i);
        struct lintel_target_decl *t = &up->decl[i];
        t->weight = 1;
        /* The weight bound keeps the hash ring's virtual nodes (proportional to weight) small. */
        if (lintel_config_map(c, n->items[i], keys) < 0 ||
            read_target_address(c, n->items[i], t) < 0 ||
            lintel_config_uint(c, n->items[i], "weight", 1, 1000, &t->weight) < 0)
            return -1;
        lintel_ypath_restore(&c->path, item);
    }
    up->ndecl = n->len;
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

/* `scheme` and, for https, the `tls` map. */
static int read_scheme(struct lintel_config_ctx *c, const struct lintel_ynode *map,
                       struct lintel_upstream_conf *up)
{
    static const char *const keys[] = {"ca_file", "verify", "sni", NULL};
    const struct lintel_ynode *n, *tls;
    size_t mark;

    if (lintel_config_child(c, map, "scheme", LINTEL_YNODE_SCALAR, false, &n, &mark) < 0)
        return -1;
    if (n) {
        if (strcmp(n->scalar, "https") == 0)
            up->https = true;
        else if (strcmp(n->scalar, "http") != 0)
            return lintel_config_fail(c, n, "must be http or https");
        lintel_ypath_restore(&c->path, mark);
    }
    up->tls.verify = true;
    up->tls.node = n;
    if (lintel_config_child(c, map, "tls", LINTEL_YNODE_MAP, false, &tls, &mark) < 0)
        return -1;
    if (!tls)
        return 0;
    if (!up->https)
        return lintel_config_fail(c, tls, "only allowed with scheme: https");
    up->tls.node = tls;
    if (lintel_config_map(c, tls, keys) < 0 ||
        lintel_config_string(c, tls, "ca_file", false, &up->tls.ca_file) < 0 ||
        lintel_config_bool(c, tls, "verify", &up->tls.verify) < 0 ||
        lintel_config_string(c, tls, "sni", false, &up->tls.sni) < 0)
        return -1;
    if (up->tls.sni && !host_name_ok(up->tls.sni, strlen(up->tls.sni))) {
        lintel_ypath_push_key(&c->path, "sni");
        return lintel_config_fail(c, lintel_ynode_get(tls, "sni"), "must be a host name");
    }
    if (up->tls.ca_file && !up->tls.verify) {
        lintel_ypath_push_key(&c->path, "ca_file");
        return lintel_config_fail(c, lintel_ynode_get(tls, "ca_file"),
                                  "not allowed with verify: false");
    }
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

static void status_range(uint64_t *set, unsigned from, unsigned to)
{
    for (unsigned s = from; s <= to; s++)
        set[s / 64] |= 1ull << (s % 64);
}

/* The list under `statuses` (HTTP statuses, 100..599) into the bitmap set. When the key is
 * absent, set keeps its default. */
static int read_statuses(struct lintel_config_ctx *c, const struct lintel_ynode *map, bool empty_ok,
                         uint64_t *set)
{
    const struct lintel_ynode *n;
    size_t mark;

    if (lintel_config_child(c, map, "statuses", LINTEL_YNODE_SEQ, false, &n, &mark) < 0)
        return -1;
    if (!n)
        return 0;
    if (n->len == 0 && !empty_ok)
        return lintel_config_fail(c, n, "must not be empty");
    memset(set, 0, LINTEL_STATUS_WORDS * sizeof(*set));
    for (size_t i = 0; i < n->len; i++) {
        const struct lintel_ynode *it = n->items[i];
        const char *d = it->scalar;
        size_t item = lintel_ypath_push_index(&c->path, i);
        /* Exactly three digits: no sign, space or leading zero gets through. */
        if (it->type != LINTEL_YNODE_SCALAR || it->len != 3 || d[0] < '1' || d[0] > '5' ||
            d[1] < '0' || d[1] > '9' || d[2] < '0' || d[2] > '9')
            return lintel_config_fail(c, it, "must be an HTTP status from 100 to 599");
        unsigned status = (unsigned)((d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0'));
        status_range(set, status, status);
        lintel_ypath_restore(&c->path, item);
    }
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

/* The probe path goes into a request line as is: it must be an origin-form target. */
static bool path_ok(const char *p)
{
    if (*p != '/')
        return false;
    for (; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return false;
    return true;
}

static int read_active(struct lintel_config_ctx *c, const struct lintel_ynode *map,
                       struct lintel_upstream_conf *up)
{
    static const char *const keys[] = {"path",      "interval", "timeout", "healthy",
                                       "unhealthy", "statuses", NULL};
    const struct lintel_ynode *n;
    size_t mark;

    if (lintel_config_child(c, map, "active", LINTEL_YNODE_MAP, false, &n, &mark) < 0)
        return -1;
    if (!n)
        return 0;
    struct lintel_health_active_conf *a = lintel_arena_calloc(c->arena, sizeof(*a));
    if (!a)
        return lintel_config_fail(c, n, "out of memory");
    a->path = "/";
    a->interval_ms = 5000;
    a->timeout_ms = 1000;
    a->healthy = 2;
    a->unhealthy = 3;
    status_range(a->statuses, 200, 399);
    if (lintel_config_map(c, n, keys) < 0 ||
        lintel_config_string(c, n, "path", false, &a->path) < 0)
        return -1;
    if (!path_ok(a->path)) {
        lintel_ypath_push_key(&c->path, "path");
        return lintel_config_fail(c, lintel_ynode_get(n, "path"),
                                  "must start with / and hold no spaces or control characters");
    }
    if (lintel_config_duration(c, n, "interval", false, &a->interval_ms) < 0 ||
        lintel_config_duration(c, n, "timeout", false, &a->timeout_ms) < 0 ||
        lintel_config_uint(c, n, "healthy", 1, 100, &a->healthy) < 0 ||
        lintel_config_uint(c, n, "unhealthy", 1, 100, &a->unhealthy) < 0 ||
        read_statuses(c, n, false, a->statuses) < 0)
        return -1;
    up->health.active = a;
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

static int read_passive(struct lintel_config_ctx *c, const struct lintel_ynode *map,
                        struct lintel_upstream_conf *up)
{
    static const char *const keys[] = {"failures", "statuses", "cooldown", NULL};
    const struct lintel_ynode *n;
    size_t mark;

    if (lintel_config_child(c, map, "passive", LINTEL_YNODE_MAP, false, &n, &mark) < 0)
        return -1;
    if (!n)
        return 0;
    struct lintel_health_passive_conf *p = lintel_arena_calloc(c->arena, sizeof(*p));
    if (!p)
        return lintel_config_fail(c, n, "out of memory");
    p->failures = 3;
    p->cooldown_ms = 10000;
    status_range(p->statuses, 502, 504);
    /* An empty list is fine: then only connect errors, timeouts and resets count. */
    if (lintel_config_map(c, n, keys) < 0 ||
        lintel_config_uint(c, n, "failures", 1, 1000, &p->failures) < 0 ||
        read_statuses(c, n, true, p->statuses) < 0 ||
        lintel_config_duration(c, n, "cooldown", false, &p->cooldown_ms) < 0)
        return -1;
    up->health.passive = p;
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

static int read_health(struct lintel_config_ctx *c, const struct lintel_ynode *map,
                       struct lintel_upstream_conf *up)
{
    static const char *const keys[] = {"active", "passive", NULL};
    const struct lintel_ynode *n;
    size_t mark;

    if (lintel_config_child(c, map, "health", LINTEL_YNODE_MAP, false, &n, &mark) < 0)
        return -1;
    if (!n)
        return 0;
    if (lintel_config_map(c, n, keys) < 0 || read_active(c, n, up) < 0 ||
        read_passive(c, n, up) < 0)
        return -1;
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

static int read_upstream(struct lintel_config_ctx *c, const struct lintel_ynode *map,
                         struct lintel_upstream_conf *up)
{
    static const char *const keys[] = {"targets",  "balance", "hash",   "keepalive",
                                       "timeouts", "retries", "health", "scheme",
                                       "tls",      "resolve_interval",  NULL};

    up->keepalive = 32;
    up->retries = 1;
    up->resolve_ms = c->cfg->resolver.interval_ms;
    up->node = map;
    if (lintel_config_map(c, map, keys) < 0 || read_targets(c, map, up) < 0 ||
        read_balance(c, map, up) < 0 ||
        lintel_config_uint(c, map, "keepalive", 0, 65535, &up->keepalive) < 0 ||
        read_upstream_timeouts(c, map, up) < 0 ||
        lintel_config_uint(c, map, "retries", 0, 100, &up->retries) < 0 ||
        read_health(c, map, up) < 0 || read_scheme(c, map, up) < 0 ||
        lintel_config_duration(c, map, "resolve_interval", false, &up->resolve_ms) < 0)
        return -1;
    /* The IP targets now; host names get theirs from the resolver (config_targets.c). */
    if (lintel_targets_build(c->arena, up, NULL, NULL) < 0)
        return lintel_config_fail(c, map, "out of memory");
    return 0;
}

/* "IP", "IP:port", "IPv6" or "[IPv6]:port", as the resolver takes them: never a name. */
static bool nameserver_ok(const char *s)
{
    unsigned char a[sizeof(struct in6_addr)];
    char host[INET6_ADDRSTRLEN];
    const char *port;
    size_t hlen;
    if (inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1)
        return true;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return false;
        hlen = (size_t)(close - s - 1);
        port = close + 2;
        s++;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon)
            return false;
        hlen = (size_t)(colon - s);
        port = colon + 1;
    }
    if (hlen == 0 || hlen >= sizeof(host))
        return false;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    char *end;
    unsigned long p = strtoul(port, &end, 10);
    return (inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1) &&
           port[0] >= '0' && port[0] <= '9' && !*end && p >= 1 && p <= 65535;
}

int lintel_config_resolver(struct lintel_config_ctx *c, const struct lintel_ynode *root)
{
    static const char *const keys[] = {"nameservers", "hosts",    "timeout",
                                       "attempts",    "interval", NULL};
    struct lintel_resolver_conf *r = &c->cfg->resolver;
    const struct lintel_ynode *n, *ns;
    size_t mark, nsmark;

    r->hosts = "/etc/hosts";
    r->timeout_ms = 5000;
    r->attempts = 2;
    r->interval_ms = 30000;
    if (lintel_config_child(c, root, "resolver", LINTEL_YNODE_MAP, false, &n, &mark) < 0)
        return -1;
    if (!n)
        return 0;
    r->node = n;
    if (lintel_config_map(c, n, keys) < 0 ||
        lintel_config_string(c, n, "hosts", false, &r->hosts) < 0 ||
        lintel_config_duration(c, n, "timeout", false, &r->timeout_ms) < 0 ||
        lintel_config_uint(c, n, "attempts", 1, 10, &r->attempts) < 0 ||
        lintel_config_duration(c, n, "interval", false, &r->interval_ms) < 0 ||
        lintel_config_child(c, n, "nameservers", LINTEL_YNODE_SEQ, false, &ns, &nsmark) < 0)
        return -1;
    if (!ns) {
        lintel_ypath_restore(&c->path, mark);
        return 0;
    }
    if (ns->len == 0)
        return lintel_config_fail(c, ns, "must not be empty (leave it out for /etc/resolv.conf)");
    r->nameservers = lintel_arena_calloc(c->arena, ns->len * sizeof(*r->nameservers));
    if (!r->nameservers)
        return lintel_config_fail(c, ns, "out of memory");
    for (size_t i = 0; i < ns->len; i++) {
        const struct lintel_ynode *it = ns->items[i];
        size_t item = lintel_ypath_push_index(&c->path, i);
        if (it->type != LINTEL_YNODE_SCALAR || !nameserver_ok(it->scalar))
            return lintel_config_fail(c, it, "must be an IP address, optionally with :port");
        r->nameservers[i] = it->scalar;
        lintel_ypath_restore(&c->path, item);
    }
    r->nnameservers = ns->len;
    lintel_ypath_restore(&c->path, mark);
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
