/* Fuzz target: YAML configuration loading with the schema checks (core/config*.c, core/ynode.c)
 * from a memory buffer, then a router built from what was accepted (core/router.c).
 *
 * Invariants: a refused file gets "NAME:LINE:COL: ..." (the loader's promise, so that an operator
 * can find the problem); an accepted configuration satisfies the documented ranges (at least one
 * listener, one target per upstream, weights >= 1, limits within their bounds, each route's
 * upstream one of the configuration's); every accepted configuration builds a router; nothing
 * leaks (LeakSanitizer runs at exit and on each input's end). */
#include <dlfcn.h>
#include <netdb.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "fuzz_common.h"
#include "router.h"

/* Addresses in a fuzzed file must not reach DNS: a name lookup can take seconds and depends on
 * the machine. Only numeric hosts and "localhost" resolve here; the loader treats the rest as
 * unresolvable names, the same path as a real lookup failure. */
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
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        const struct lintel_upstream_conf *u = &cfg->upstreams[i];
        FUZZ_CHECK(u->index == i, "upstream index");
        FUZZ_CHECK(u->name && u->name[0], "upstream without a name");
        FUZZ_CHECK(u->ntargets >= 1, "upstream %s without targets", u->name);
        for (size_t t = 0; t < u->ntargets; t++) {
            FUZZ_CHECK(u->targets[t].weight >= 1, "weight 0");
            FUZZ_CHECK(u->targets[t].addr.len > 0, "target without an address");
        }
        FUZZ_CHECK(u->balance != LINTEL_BALANCE_HASH || u->hash_on == LINTEL_HASH_IP ||
                       (u->hash_name && u->hash_name[0]),
                   "hash without a name");
    }
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
    struct lintel_router *r = lintel_router_new(cfg->routes, cfg->nroutes, err, sizeof(err));
    FUZZ_CHECK(r != NULL, "router refused an accepted configuration: %s", err);
    lintel_router_free(r);
    lintel_config_free(cfg);
    return 0;
}
