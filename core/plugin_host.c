/* Building a snapshot's plugin instances and phase chains from the configuration. */
#include "plugin_host.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-internal.h"
#include "log.h"

struct build {
    struct lintel_config_ctx c; /* for "FILE:LINE:COL: path: message" */
    const struct lintel_host_services *svc;
    struct lintel_plugins *p;
    size_t cap;
};

static const struct lintel_host_services *services;
static unsigned workers = 1;

void lintel_host_workers_set(unsigned n)
{
    workers = n ? n : 1;
}

unsigned lintel_host_workers(void)
{
    return workers;
}

void lintel_host_services_set(const struct lintel_host_services *svc)
{
    services = svc;
}

const struct lintel_host_services *lintel_host_services_get(void)
{
    return services;
}

lintel_handler_fn lintel_instance_handler(const struct lintel_instance *inst, enum lintel_phase ph)
{
    static const size_t offsets[] = {
        offsetof(struct lintel_plugin, rewrite),
        offsetof(struct lintel_plugin, access),
        offsetof(struct lintel_plugin, balance),
        offsetof(struct lintel_plugin, response_headers),
        offsetof(struct lintel_plugin, response_body),
        offsetof(struct lintel_plugin, log),
    };
    if ((unsigned)ph >= sizeof(offsets) / sizeof(offsets[0]) ||
        offsets[ph] + sizeof(lintel_handler_fn) > inst->desc_size)
        return NULL;
    lintel_handler_fn fn;
    memcpy(&fn, (const char *)inst->desc + offsets[ph], sizeof(fn));
    return fn;
}

/* Appends to p the key path from root down to target ("" when target is root). */
static bool path_to(const struct lintel_ynode *root, const struct lintel_ynode *target,
                    struct lintel_ypath *p)
{
    if (root == target)
        return true;
    if (root->type == LINTEL_YNODE_SCALAR)
        return false;
    for (size_t i = 0; i < root->len; i++) {
        size_t mark = root->type == LINTEL_YNODE_MAP ? lintel_ypath_push_key(p, root->keys[i]->scalar)
                                                     : lintel_ypath_push_index(p, i);
        if (path_to(root->items[i], target, p))
            return true;
        lintel_ypath_restore(p, mark);
    }
    return false;
}

static void instance_free(struct lintel_instance *inst)
{
    if (inst->created && inst->desc->destroy)
        inst->desc->destroy(inst->instance);
    lintel_image_unref(inst->img);
    free(inst);
}

/* Creates one instance of entry (a map with name, version, ...) using image img. */
static struct lintel_instance *instance_create(struct build *b, const struct lintel_ynode *entry,
                                               struct lintel_image *img, const char *iname)
{
    struct lintel_instance *inst = calloc(1, sizeof(*inst));
    if (!inst) {
        lintel_image_unref(img);
        lintel_config_fail(&b->c, entry, "out of memory");
        return NULL;
    }
    inst->img = img;
    inst->desc = img->desc;
    inst->desc_size = img->desc->struct_size < sizeof(struct lintel_plugin)
                          ? img->desc->struct_size
                          : sizeof(struct lintel_plugin);
    inst->plugin = img->name;
    inst->name = iname;
    inst->node = entry;
    inst->consumers = b->c.cfg->consumers;
    inst->cfg = b->c.cfg;
    snprintf(inst->ns, sizeof(inst->ns), "%s/%s", img->name, iname);
    if (!inst->desc->create) {
        inst->created = true;
        return inst;
    }
    const struct lintel_ynode *config = lintel_ynode_get(entry, "config");
    struct lintel_cfg_error ce = {0};
    int rc = inst->desc->create(lintel_host_api_get(), inst, (const lintel_cfg *)config, &ce,
                                &inst->instance);
    if (rc == 0 && ce.set) { /* reported an error yet claimed success: the error wins */
        if (inst->desc->destroy)
            inst->desc->destroy(inst->instance);
        rc = -1;
    }
    if (rc == 0) {
        inst->created = true;
        return inst;
    }
    const struct lintel_ynode *at = ce.node ? ce.node : config ? config : entry;
    size_t mark = lintel_ypath_push_key(&b->c.path, "config");
    if (config && at != config && !path_to(config, at, &b->c.path)) {
        /* Not in the plugin's own config: a consumer's credentials (consumer_at). */
        lintel_ypath_restore(&b->c.path, 0);
        lintel_ypath_push_key(&b->c.path, "consumers");
        if (!b->c.cfg->consumers || !path_to(b->c.cfg->consumers, at, &b->c.path))
            lintel_ypath_restore(&b->c.path, 0);
    } else if (!config) {
        lintel_ypath_restore(&b->c.path, mark);
    }
    lintel_config_fail(&b->c, at, "plugin %s %s: %s", img->name, img->version,
                       ce.set ? ce.msg : "create failed");
    instance_free(inst);
    return NULL;
}

static int add_instance(struct build *b, struct lintel_instance *inst)
{
    struct lintel_plugins *p = b->p;
    if (p->ninstances == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        struct lintel_instance **v = realloc(p->instances, cap * sizeof(*v));
        if (!v)
            return -1;
        p->instances = v;
        b->cap = cap;
    }
    inst->index = p->ninstances;
    p->instances[p->ninstances++] = inst;
    return 0;
}

static const char *const entry_keys[] = {"name",      "instance", "version", "versions",
                                         "sticky_on", "priority", "config",  NULL};

static int read_sticky(struct build *b, const struct lintel_ynode *entry,
                       struct lintel_chain_slot *slot)
{
    const struct lintel_ynode *n = lintel_ynode_get(entry, "sticky_on");
    slot->sticky = STICKY_REQUEST_ID;
    if (!n)
        return 0;
    size_t mark = lintel_ypath_push_key(&b->c.path, "sticky_on");
    if (n->type == LINTEL_YNODE_SCALAR && strcmp(n->scalar, "ip") == 0)
        slot->sticky = STICKY_IP;
    else if (n->type == LINTEL_YNODE_SCALAR && strcmp(n->scalar, "request_id") == 0)
        slot->sticky = STICKY_REQUEST_ID;
    else if (n->type == LINTEL_YNODE_MAP && n->len == 1 &&
             n->items[0]->type == LINTEL_YNODE_SCALAR && n->items[0]->len > 0) {
        const char *k = n->keys[0]->scalar;
        if (strcmp(k, "header") == 0)
            slot->sticky = STICKY_HEADER;
        else if (strcmp(k, "cookie") == 0)
            slot->sticky = STICKY_COOKIE;
        else if (strcmp(k, "arg") == 0)
            slot->sticky = STICKY_ARG;
        else
            return lintel_config_fail(&b->c, n, "must be ip, request_id, or one of header, "
                                                "cookie, arg with a name");
        slot->sticky_name = n->items[0]->scalar;
    } else {
        return lintel_config_fail(&b->c, n, "must be ip, request_id, or one of header, cookie, "
                                            "arg with a name");
    }
    lintel_ypath_restore(&b->c.path, mark);
    return 0;
}

/* Reads one plugin entry into a chain slot, creating its instance(s). */
static int read_entry(struct build *b, const struct lintel_ynode *entry,
                      struct lintel_chain_slot *slot)
{
    char err[512];
    if (lintel_config_map(&b->c, entry, entry_keys) < 0)
        return -1;
    const char *name = lintel_ynode_get(entry, "name")->scalar;
    const char *iname = name, *version = NULL;
    if (lintel_config_string(&b->c, entry, "instance", false, &iname) < 0 ||
        lintel_config_string(&b->c, entry, "version", false, &version) < 0)
        return -1;
    const struct lintel_ynode *versions = lintel_ynode_get(entry, "versions");
    size_t mark = 0;
    if (versions && version) {
        mark = lintel_ypath_push_key(&b->c.path, "versions");
        return lintel_config_fail(&b->c, versions, "give either version or versions, not both");
    }
    if (versions) {
        mark = lintel_ypath_push_key(&b->c.path, "versions");
        if (versions->type != LINTEL_YNODE_MAP || versions->len == 0)
            return lintel_config_fail(&b->c, versions, "must be a map of version: weight");
        slot->nalts = (unsigned)versions->len;
    } else {
        slot->nalts = 1;
    }
    slot->alts = calloc(slot->nalts, sizeof(*slot->alts));
    slot->weights = calloc(slot->nalts, sizeof(*slot->weights));
    if (!slot->alts || !slot->weights)
        return lintel_config_fail(&b->c, entry, "out of memory");
    unsigned total = 0;
    for (unsigned i = 0; i < slot->nalts; i++) {
        const char *want = version;
        const struct lintel_ynode *at = lintel_ynode_get(entry, "name");
        if (versions) {
            size_t m2 = lintel_ypath_push_key(&b->c.path, versions->keys[i]->scalar);
            const struct lintel_ynode *w = versions->items[i];
            char *end = NULL;
            unsigned long weight = w->type == LINTEL_YNODE_SCALAR ? strtoul(w->scalar, &end, 10) : 0;
            if (!end || *end || w->scalar[0] == '-' || weight == 0 || weight > 1000000)
                return lintel_config_fail(&b->c, w, "must be a positive weight");
            total += (unsigned)weight;
            want = versions->keys[i]->scalar;
            at = versions->keys[i];
            lintel_ypath_restore(&b->c.path, m2);
        } else {
            total = 1;
        }
        slot->weights[i] = total;
        struct lintel_image *img =
            lintel_registry_find(b->svc->registry, name, want, err, sizeof(err));
        if (!img)
            return lintel_config_fail(&b->c, at, "%s", err);
        struct lintel_instance *inst = instance_create(b, entry, img, iname);
        if (!inst)
            return -1;
        if (add_instance(b, inst) < 0) {
            instance_free(inst);
            return lintel_config_fail(&b->c, entry, "out of memory");
        }
        slot->alts[i] = inst;
    }
    if (versions)
        lintel_ypath_restore(&b->c.path, mark);
    slot->priority = slot->alts[0]->desc->priority;
    const struct lintel_ynode *prio = lintel_ynode_get(entry, "priority");
    if (prio) {
        char *end = NULL;
        long v = prio->type == LINTEL_YNODE_SCALAR ? strtol(prio->scalar, &end, 10) : 0;
        if (!end || *end || v < -1000000 || v > 1000000) {
            lintel_ypath_push_key(&b->c.path, "priority");
            return lintel_config_fail(&b->c, prio, "must be an integer");
        }
        slot->priority = (int)v;
    }
    return read_sticky(b, entry, slot);
}

/* consumers: [ { name, id, credentials: {...} } ]: the core checks the shape and that names are
 * unique; each credential kind is the business of the plugin that reads it. */
static int check_consumers(struct build *b, const struct lintel_ynode *list)
{
    static const char *const keys[] = {"name", "id", "credentials", NULL};
    if (!list)
        return 0;
    size_t mark = lintel_ypath_push_key(&b->c.path, "consumers");
    const char **names = calloc(list->len ? list->len : 1, sizeof(*names));
    if (!names)
        return lintel_config_fail(&b->c, list, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < list->len && rc == 0; i++) {
        const struct lintel_ynode *m = list->items[i];
        size_t m2 = lintel_ypath_push_index(&b->c.path, i);
        const char *name = NULL, *id = NULL;
        if (m->type != LINTEL_YNODE_MAP)
            rc = lintel_config_fail(&b->c, m, "must be a map");
        else if (lintel_config_map(&b->c, m, keys) < 0 ||
                 lintel_config_string(&b->c, m, "name", true, &name) < 0 ||
                 lintel_config_string(&b->c, m, "id", false, &id) < 0)
            rc = -1;
        else if (lintel_ynode_get(m, "credentials") &&
                 lintel_ynode_get(m, "credentials")->type != LINTEL_YNODE_MAP) {
            lintel_ypath_push_key(&b->c.path, "credentials");
            rc = lintel_config_fail(&b->c, lintel_ynode_get(m, "credentials"), "must be a map");
        }
        names[i] = name;
        if (rc == 0)
            lintel_ypath_restore(&b->c.path, m2);
    }
    size_t dup;
    if (rc == 0 && lintel_find_duplicate(names, list->len, &dup)) {
        lintel_ypath_push_index(&b->c.path, dup);
        rc = lintel_config_fail(&b->c, list->items[dup], "duplicate consumer name \"%s\"",
                                names[dup]);
    }
    free(names);
    if (rc == 0)
        lintel_ypath_restore(&b->c.path, mark);
    return rc;
}

static void chain_free(struct lintel_chain *ch, bool own_slots)
{
    if (own_slots)
        for (unsigned i = 0; i < ch->nslots; i++) {
            free(ch->slots[i].alts);
            free(ch->slots[i].weights);
        }
    free(ch->slots);
}

/* Stable: equal priorities keep their order (globals first, then YAML order). */
static void sort_slots(struct lintel_chain_slot *s, unsigned n)
{
    for (unsigned i = 1; i < n; i++) {
        struct lintel_chain_slot x = s[i];
        unsigned j = i;
        while (j > 0 && s[j - 1].priority < x.priority) {
            s[j] = s[j - 1];
            j--;
        }
        s[j] = x;
    }
}

static void chain_phases(struct lintel_chain *ch)
{
    ch->phases = 0;
    for (unsigned i = 0; i < ch->nslots; i++)
        for (unsigned a = 0; a < ch->slots[i].nalts; a++)
            for (int ph = 0; ph <= LINTEL_PHASE_LOG; ph++)
                if (lintel_instance_handler(ch->slots[i].alts[a], (enum lintel_phase)ph))
                    ch->phases |= 1u << ph;
}

static int read_list(struct build *b, const struct lintel_ynode *list, struct lintel_chain *ch)
{
    if (!list || list->len == 0)
        return 0;
    ch->slots = calloc(list->len, sizeof(*ch->slots));
    if (!ch->slots)
        return lintel_config_fail(&b->c, list, "out of memory");
    size_t mark = lintel_ypath_push_key(&b->c.path, "plugins");
    for (size_t i = 0; i < list->len; i++) {
        size_t m2 = lintel_ypath_push_index(&b->c.path, i);
        ch->nslots++;
        if (read_entry(b, list->items[i], &ch->slots[i]) < 0)
            return -1;
        lintel_ypath_restore(&b->c.path, m2);
    }
    lintel_ypath_restore(&b->c.path, mark);
    return 0;
}

static bool slot_named(const struct lintel_chain_slot *s, const char *name)
{
    return strcmp(s->alts[0]->plugin, name) == 0 || strcmp(s->alts[0]->name, name) == 0;
}

static int build_route_chain(struct build *b, const struct lintel_route_conf *r,
                             struct lintel_chain *ch)
{
    struct lintel_chain own = {0};
    const struct lintel_chain *g = &b->p->global;
    const struct lintel_ynode *dis = r->disable_plugins;
    size_t mark = lintel_ypath_push_key(&b->c.path, "routes");
    lintel_ypath_push_index(&b->c.path, r->index);
    int rc = read_list(b, r->plugins, &own);
    if (rc == 0 && dis) {
        size_t m2 = lintel_ypath_push_key(&b->c.path, "disable_plugins");
        for (size_t i = 0; i < dis->len && rc == 0; i++) {
            bool found = false;
            for (unsigned s = 0; s < g->nslots; s++)
                found = found || slot_named(&g->slots[s], dis->items[i]->scalar);
            if (!found) {
                lintel_ypath_push_index(&b->c.path, i);
                rc = lintel_config_fail(&b->c, dis->items[i], "no global plugin \"%s\"",
                                        dis->items[i]->scalar);
            }
        }
        if (rc == 0)
            lintel_ypath_restore(&b->c.path, m2);
    }
    if (rc == 0) {
        ch->slots = calloc(g->nslots + own.nslots + 1, sizeof(*ch->slots));
        if (!ch->slots)
            rc = lintel_config_fail(&b->c, r->node, "out of memory");
    }
    if (rc == 0) {
        for (unsigned s = 0; s < g->nslots; s++) {
            bool off = false;
            for (size_t i = 0; dis && i < dis->len; i++)
                off = off || slot_named(&g->slots[s], dis->items[i]->scalar);
            if (!off)
                ch->slots[ch->nslots++] = g->slots[s]; /* shared with the global chain */
        }
        /* Route slots follow; their alts/weights arrays move into the route chain. */
        for (unsigned s = 0; s < own.nslots; s++)
            ch->slots[ch->nslots++] = own.slots[s];
        free(own.slots);
        own.slots = NULL;
        own.nslots = 0;
        sort_slots(ch->slots, ch->nslots);
        chain_phases(ch);
        lintel_ypath_restore(&b->c.path, mark);
    }
    chain_free(&own, true);
    return rc;
}

struct lintel_plugins *lintel_plugins_build(const struct lintel_config *cfg,
                                            const struct lintel_host_services *svc, char *err,
                                            size_t errlen)
{
    struct build b = {.c = {.cfg = (struct lintel_config *)cfg,
                            .arena = cfg->arena,
                            .name = cfg->path,
                            .err = err,
                            .errlen = errlen},
                      .svc = svc};
    b.p = calloc(1, sizeof(*b.p));
    if (!b.p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    b.p->routes = calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof(*b.p->routes));
    if (!b.p->routes) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    b.p->nroutes = cfg->nroutes;
    bool any = cfg->plugins && cfg->plugins->len;
    for (size_t i = 0; i < cfg->nroutes && !any; i++)
        any = cfg->routes[i].plugins && cfg->routes[i].plugins->len;
    if (any) {
        if (!svc || !svc->registry) {
            snprintf(err, errlen, "plugins are configured but no plugin registry is available");
            goto fail;
        }
        if (lintel_registry_scan(svc->registry, cfg->plugin_paths, cfg->nplugin_paths, err,
                                 errlen) < 0)
            goto fail;
    }
    if (check_consumers(&b, cfg->consumers) < 0 || read_list(&b, cfg->plugins, &b.p->global) < 0)
        goto fail;
    sort_slots(b.p->global.slots, b.p->global.nslots);
    chain_phases(&b.p->global);
    for (size_t i = 0; i < cfg->nroutes; i++)
        if (build_route_chain(&b, &cfg->routes[i], &b.p->routes[i]) < 0)
            goto fail;
    return b.p;
fail:
    lintel_plugins_free(b.p);
    return NULL;
}

void lintel_plugins_free(struct lintel_plugins *p)
{
    if (!p)
        return;
    if (p->routes) {
        /* Route chains own the slots that are not global ones. */
        for (size_t i = 0; i < p->nroutes; i++) {
            struct lintel_chain *ch = &p->routes[i];
            for (unsigned s = 0; s < ch->nslots; s++) {
                bool global = false;
                for (unsigned g = 0; g < p->global.nslots && !global; g++)
                    global = ch->slots[s].alts == p->global.slots[g].alts;
                if (!global) {
                    free(ch->slots[s].alts);
                    free(ch->slots[s].weights);
                }
            }
            free(ch->slots);
        }
        free(p->routes);
    }
    chain_free(&p->global, true);
    for (unsigned i = 0; i < p->ninstances; i++)
        instance_free(p->instances[i]);
    free(p->instances);
    free(p);
}
