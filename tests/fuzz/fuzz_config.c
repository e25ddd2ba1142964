/* Fuzz target: YAML configuration loading with the schema checks (core/config*.c, core/ynode.c)
 * from a memory buffer, the snapshot configuration built from it with host-name targets resolved
 * (core/config_targets.c, with a made-up resolver), then a router built from each (core/router.c).
 *
 * Invariants: a refused file gets "NAME:LINE:COL: ..." (the loader's promise, so that an operator
 * can find the problem); an accepted configuration satisfies the documented ranges (at least one
 * listener, one declared target per upstream, weights >= 1, limits within their bounds, each
 * route's upstream one of the configuration's). As loaded, an upstream's targets are exactly its
 * IP addresses (host names are resolved later, so an upstream of names only has none yet); once
 * resolved, each name contributes one target per address the resolver gave, with the name's port,
 * and a name without addresses is explained in `unresolved`. Every accepted configuration and
 * its resolution build a router; nothing leaks (LeakSanitizer runs at exit). */
#include <dlfcn.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "config_targets.h"
#include "fuzz_common.h"
#include "router.h"

/* Listen and admin addresses in a fuzzed file must not reach DNS (upstream targets never do
 * while loading): a name lookup can take seconds and depends on the machine. Only numeric hosts
 * and "localhost" resolve here; the rest fail as an unknown name does. */
int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    static int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
    if (!real)
        real = (int (*)(const char *, const char *, const struct addrinfo *,
                        struct addrinfo **))dlsym(RTLD_NEXT, "getaddrinfo");
    struct addrinfo h = hints ? *hints : (struct addrinfo){0};
    if (!node || strcmp(node, "localhost") != 0)
        h.ai_flags |= AI_NUMERICHOST;
    return real(node, service, &h, res);
}

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* A made-up resolver, the same answer for the same name: unknown yet, known without addresses,
 * or 1 to 3 addresses (IPv4 and IPv6) that may repeat across names. */
static bool fake_lookup(void *ctx, const char *host, struct lintel_name_addrs *out)
{
    uint64_t h = name_hash(host);
    switch (h % 5) {
    case 0:
        return false;
    case 1:
        *out = (struct lintel_name_addrs){.error = "no such host"};
        return true;
    }
    size_t n = 1 + (size_t)(h >> 8) % 3;
    struct sockaddr_storage *a = lintel_arena_calloc(ctx, n * sizeof(*a));
    FUZZ_CHECK(a != NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if ((h >> (16 + i)) & 1) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a[i];
            s6->sin6_family = AF_INET6;
            s6->sin6_addr.s6_addr[0] = 0xfd;
            s6->sin6_addr.s6_addr[15] = (uint8_t)(h >> (24 + 8 * i));
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&a[i];
            s4->sin_family = AF_INET;
            s4->sin_addr.s_addr = htonl(0x0a000000u | (uint8_t)(h >> (24 + 8 * i)) | (i << 8));
        }
    }
    *out = (struct lintel_name_addrs){.addrs = a, .naddrs = n};
    return true;
}

static uint16_t target_port(const struct lintel_target_conf *t)
{
    if (t->addr.ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&t->addr.ss)->sin6_port);
    return ntohs(((const struct sockaddr_in *)&t->addr.ss)->sin_port);
}

static void check_routes(const struct lintel_config *cfg)
{
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const struct lintel_route_conf *r = &cfg->routes[i];
        FUZZ_CHECK(r->index == i, "route index");
        FUZZ_CHECK(r->upstream >= cfg->upstreams && r->upstream < cfg->upstreams + cfg->nupstreams,
                   "route %zu upstream outside the configuration", i);
        for (size_t p = 0; p < r->npaths; p++)
            FUZZ_CHECK(r->paths[p].kind != LINTEL_PATH_REGEX || r->paths[p].re,
                       "regex path not compiled");
        for (size_t h = 0; h < r->nhosts; h++)
            for (const char *c = r->hosts[h]; *c; c++)
                FUZZ_CHECK(!(*c >= 'A' && *c <= 'Z'), "host %s not lowercased", r->hosts[h]);
    }
    char err[256] = "";
    struct lintel_router *router = lintel_router_new(cfg->routes, cfg->nroutes, err, sizeof(err));
    FUZZ_CHECK(router != NULL, "router refused an accepted configuration: %s", err);
    lintel_router_free(router);
}

/* Targets as the balancers see them: resolved says whether names have been looked up (through
 * fake_lookup) or not at all (as loaded). */
static void check_targets(const struct lintel_upstream_conf *u, bool resolved, void *lookup_ctx)
{
    size_t k = 0, unresolved = 0;
    for (size_t d = 0; d < u->ndecl; d++) {
        const struct lintel_target_decl *decl = &u->decl[d];
        FUZZ_CHECK(decl->weight >= 1 && decl->weight <= 1000, "weight %u", decl->weight);
        FUZZ_CHECK(decl->port >= 1, "target %s without a port", decl->text);
        FUZZ_CHECK(decl->host && decl->host[0], "target %s without a host", decl->text);
        size_t want = 1;
        if (decl->is_name) {
            struct lintel_name_addrs a = {0};
            want = resolved && fake_lookup(lookup_ctx, decl->host, &a) ? a.naddrs : 0;
            unresolved += want == 0;
        }
        for (size_t i = 0; i < want; i++, k++) {
            FUZZ_CHECK(k < u->ntargets, "upstream %s: fewer targets than declared", u->name);
            const struct lintel_target_conf *t = &u->targets[k];
            FUZZ_CHECK(t->decl == decl, "upstream %s: target %zu out of order", u->name, k);
            FUZZ_CHECK(t->weight == decl->weight, "target weight");
            FUZZ_CHECK(t->addr.len > 0 && t->addr.text, "target without an address");
            FUZZ_CHECK(target_port(t) == decl->port, "target %s port %u", decl->text,
                       target_port(t));
            FUZZ_CHECK(!u->https || t->pool_key, "https target without a pool key");
        }
    }
    FUZZ_CHECK(k == u->ntargets, "upstream %s: %zu targets, %zu expected", u->name, u->ntargets, k);
    FUZZ_CHECK((unresolved > 0) == (u->unresolved != NULL),
               "upstream %s: unresolved '%s' with %zu names without addresses", u->name,
               u->unresolved ? u->unresolved : "(null)", unresolved);
}

static void check_config(const struct lintel_config *cfg)
{
    FUZZ_CHECK(cfg->nlisten >= 1, "no listener");
    FUZZ_CHECK(cfg->workers >= 1 && cfg->workers <= 1024, "workers %u", cfg->workers);
    FUZZ_CHECK(cfg->limits.header_bytes >= 1024 && cfg->limits.header_bytes <= 65536,
               "header_bytes %llu", (unsigned long long)cfg->limits.header_bytes);
    FUZZ_CHECK(cfg->limits.headers >= 1 && cfg->limits.headers <= 10000, "headers %u",
               cfg->limits.headers);
    FUZZ_CHECK(cfg->timeouts.client_header_ms > 0 && cfg->timeouts.client_body_ms > 0 &&
                   cfg->timeouts.keepalive_ms > 0,
               "a zero timeout");
    bool names = false;
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        const struct lintel_upstream_conf *u = &cfg->upstreams[i];
        FUZZ_CHECK(u->index == i, "upstream index");
        FUZZ_CHECK(u->name && u->name[0], "upstream without a name");
        FUZZ_CHECK(u->ndecl >= 1, "upstream %s without targets", u->name);
        for (size_t d = 0; d < u->ndecl; d++)
            names |= u->decl[d].is_name;
        check_targets(u, false, NULL);
        FUZZ_CHECK(u->balance != LINTEL_BALANCE_HASH || u->hash_on == LINTEL_HASH_IP ||
                       (u->hash_name && u->hash_name[0]),
                   "hash without a name");
    }
    FUZZ_CHECK(names == cfg->has_names, "has_names %d", cfg->has_names);
    check_routes(cfg);
}

/* The snapshot configuration of a loaded one, as the gateway builds it after each resolution. */
static void check_resolved(const struct lintel_config *base)
{
    struct lintel_arena *answers = lintel_arena_new(1024);
    FUZZ_CHECK(answers != NULL, "out of memory");
    struct lintel_config *cfg = lintel_config_resolve(base, fake_lookup, answers);
    FUZZ_CHECK(cfg != NULL, "resolution failed");
    FUZZ_CHECK(base->has_names || cfg == base, "a configuration without names was copied");
    FUZZ_CHECK(cfg->nupstreams == base->nupstreams && cfg->nroutes == base->nroutes, "sizes");
    for (size_t i = 0; i < cfg->nupstreams; i++)
        check_targets(&cfg->upstreams[i], true, answers);
    check_routes(cfg);
    FUZZ_CHECK(lintel_config_same_targets(cfg, cfg), "a resolution differs from itself");
    if (cfg != base)
        lintel_config_free(cfg);
    lintel_arena_free(answers);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lintel_config *cfg = NULL;
    char err[1024] = "";
    if (lintel_config_load_string("fuzz.yaml", (const char *)data, size, &cfg, err, sizeof(err)) <
        0) {
        FUZZ_CHECK(strncmp(err, "fuzz.yaml:", 10) == 0, "error without the file name: %s", err);
        FUZZ_CHECK(err[10] >= '0' && err[10] <= '9', "error without a line: %s", err);
        FUZZ_CHECK(cfg == NULL, "config set on failure");
        return 0;
    }
    check_config(cfg);
    check_resolved(cfg);
    lintel_config_free(cfg);
    return 0;
}
