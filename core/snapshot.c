#include "snapshot.h"

#include <stdio.h>
#include <stdlib.h>

#include "health.h"
#include "log.h"
#include "plugin_host.h"
#include "tls.h"

struct lintel_snapshot_core {
    atomic_uint refs;
    struct lintel_config *cfg; /* as loaded */
    struct lintel_plugins *plugins;
    struct lintel_tls **tls;
    SSL_CTX **upstream_tls;
};

static void core_unref(struct lintel_snapshot_core *c)
{
    if (!c || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    lintel_plugins_free(c->plugins); /* before the config: instances point into its YAML */
    for (size_t i = 0; c->tls && i < c->cfg->nlisten; i++)
        lintel_tls_free(c->tls[i]);
    free(c->tls);
    for (size_t i = 0; c->upstream_tls && i < c->cfg->nupstreams; i++)
        SSL_CTX_free(c->upstream_tls[i]);
    free(c->upstream_tls);
    lintel_config_free(c->cfg);
    free(c);
}

/* Everything that does not depend on the names' addresses. Takes ownership of cfg. */
static struct lintel_snapshot_core *core_new(struct lintel_config *cfg, unsigned nworkers,
                                             char *err, size_t errlen)
{
    struct lintel_snapshot_core *c = calloc(1, sizeof(*c));
    if (!c) {
        lintel_config_free(cfg);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&c->refs, 1);
    c->cfg = cfg;
    c->tls = calloc(cfg->nlisten, sizeof(*c->tls));
    c->upstream_tls = calloc(cfg->nupstreams ? cfg->nupstreams : 1, sizeof(*c->upstream_tls));
    if (!c->tls || !c->upstream_tls) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < cfg->nlisten; i++)
        if (cfg->listen_tls[i] && !(c->tls[i] = lintel_tls_new(cfg, i, err, errlen)))
            goto fail;
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        const struct lintel_upstream_conf *u = &cfg->upstreams[i];
        if (!u->https)
            continue;
        if (!(c->upstream_tls[i] = lintel_tls_upstream_new(cfg, u, err, errlen)))
            goto fail;
        if (!u->tls.verify)
            lintel_warn("upstream %s: TLS certificate verification is off (tls.verify: false)",
                        u->name);
    }
    lintel_host_workers_set(nworkers);
    c->plugins = lintel_plugins_build(cfg, lintel_host_services_get(), err, errlen);
    if (!c->plugins)
        goto fail;
    return c;
fail:
    core_unref(c);
    return NULL;
}

static void snapshot_free(struct lintel_snapshot *s)
{
    lintel_health_view_free(s->health);
    for (unsigned i = 0; s->routers && i < s->nrouters; i++)
        lintel_router_free(s->routers[i]);
    free(s->routers);
    if (s->core && s->cfg != s->core->cfg)
        lintel_config_free(s->cfg); /* only what the resolution added */
    core_unref(s->core);
    free(s);
}

/* A snapshot on core (taking over the caller's reference) and cfg (a resolution of core's
 * configuration, taken over too; NULL: out of memory). */
static struct lintel_snapshot *snapshot_on(struct lintel_snapshot_core *core, unsigned generation,
                                           unsigned nworkers, struct lintel_config *cfg,
                                           char *err, size_t errlen)
{
    struct lintel_snapshot *s = calloc(1, sizeof(*s));
    if (!s) {
        if (cfg != core->cfg)
            lintel_config_free(cfg);
        core_unref(core);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->core = core;
    s->generation = generation;
    s->plugins = core->plugins;
    s->tls = core->tls;
    s->upstream_tls = core->upstream_tls;
    s->cfg = cfg;
    s->routers = calloc(nworkers, sizeof(*s->routers));
    if (!s->cfg || !s->routers) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    s->nrouters = nworkers;
    for (unsigned i = 0; i < nworkers; i++) {
        s->routers[i] = lintel_router_new(s->cfg->routes, s->cfg->nroutes, err, errlen);
        if (!s->routers[i])
            goto fail;
    }
    atomic_init(&s->refs, 1);
    return s;
fail:
    if (!s->cfg)
        s->cfg = core->cfg;
    snapshot_free(s);
    return NULL;
}

struct lintel_snapshot *lintel_snapshot_new_resolved(struct lintel_config *cfg,
                                                     unsigned generation, unsigned nworkers,
                                                     lintel_names_lookup_fn lookup, void *ctx,
                                                     char *err, size_t errlen)
{
    struct lintel_snapshot_core *core = core_new(cfg, nworkers, err, errlen);
    if (!core)
        return NULL;
    return snapshot_on(core, generation, nworkers, lintel_config_resolve(core->cfg, lookup, ctx),
                       err, errlen);
}

struct lintel_snapshot *lintel_snapshot_new(struct lintel_config *cfg, unsigned generation,
                                            unsigned nworkers, char *err, size_t errlen)
{
    return lintel_snapshot_new_resolved(cfg, generation, nworkers, NULL, NULL, err, errlen);
}

int lintel_snapshot_retarget(struct lintel_snapshot *s, lintel_names_lookup_fn lookup, void *ctx,
                             struct lintel_snapshot **out, char *err, size_t errlen)
{
    struct lintel_config *cfg = lintel_config_resolve(s->core->cfg, lookup, ctx);
    if (!cfg) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (lintel_config_same_targets(cfg, s->cfg)) {
        if (cfg != s->core->cfg)
            lintel_config_free(cfg);
        return 0;
    }
    atomic_fetch_add_explicit(&s->core->refs, 1, memory_order_relaxed);
    *out = snapshot_on(s->core, s->generation, s->nrouters, cfg, err, errlen);
    return *out ? 1 : -1;
}

void lintel_snapshot_ref(struct lintel_snapshot *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void lintel_snapshot_unref(struct lintel_snapshot *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    snapshot_free(s);
}
