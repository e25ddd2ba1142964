#include "snapshot.h"

#include <stdio.h>
#include <stdlib.h>

#include "health.h"
#include "plugin_host.h"
#include "tls.h"

static void snapshot_free(struct lintel_snapshot *s)
{
    lintel_plugins_free(s->plugins); /* before the config: instances point into its YAML */
    lintel_health_view_free(s->health);
    for (size_t i = 0; s->tls && i < s->cfg->nlisten; i++)
        lintel_tls_free(s->tls[i]);
    free(s->tls);
    for (unsigned i = 0; s->routers && i < s->nrouters; i++)
        lintel_router_free(s->routers[i]);
    free(s->routers);
    lintel_config_free(s->cfg);
    free(s);
}

struct lintel_snapshot *lintel_snapshot_new(struct lintel_config *cfg, unsigned generation,
                                            unsigned nworkers, char *err, size_t errlen)
{
    struct lintel_snapshot *s = calloc(1, sizeof(*s));
    if (!s) {
        lintel_config_free(cfg);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->cfg = cfg;
    s->generation = generation;
    s->routers = calloc(nworkers, sizeof(*s->routers));
    if (!s->routers) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    s->nrouters = nworkers;
    for (unsigned i = 0; i < nworkers; i++) {
        s->routers[i] = lintel_router_new(cfg->routes, cfg->nroutes, err, errlen);
        if (!s->routers[i])
            goto fail;
    }
    s->tls = calloc(cfg->nlisten, sizeof(*s->tls));
    if (!s->tls) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < cfg->nlisten; i++)
        if (cfg->listen_tls[i] && !(s->tls[i] = lintel_tls_new(cfg, i, err, errlen)))
            goto fail;
    lintel_host_workers_set(nworkers);
    s->plugins = lintel_plugins_build(cfg, lintel_host_services_get(), err, errlen);
    if (!s->plugins)
        goto fail;
    atomic_init(&s->refs, 1);
    return s;
fail:
    snapshot_free(s);
    return NULL;
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
