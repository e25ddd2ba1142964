#include "snapshot.h"

#include <stdlib.h>

struct lintel_snapshot *lintel_snapshot_new(struct lintel_config *cfg, unsigned generation,
                                            char *err, size_t errlen)
{
    struct lintel_snapshot *s = calloc(1, sizeof(*s));
    if (!s) {
        lintel_config_free(cfg);
        return NULL;
    }
    s->cfg = cfg;
    s->generation = generation;
    s->router = lintel_router_new(cfg->routes, cfg->nroutes, err, errlen);
    if (!s->router) {
        lintel_config_free(cfg);
        free(s);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    return s;
}

void lintel_snapshot_ref(struct lintel_snapshot *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void lintel_snapshot_unref(struct lintel_snapshot *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    lintel_router_free(s->router);
    lintel_config_free(s->cfg);
    free(s);
}
