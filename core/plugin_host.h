/* The plugin host: plugin instances and per-route phase chains of one configuration snapshot.
 *
 * Built on the main thread when a configuration is loaded: every plugin entry (global and per
 * route) names an image in the registry (with an optional version constraint, or a weighted set
 * of versions) and becomes an instance created from its `config`. The chain of a route is the
 * global entries (minus the route's disable_plugins) followed by the route's own, ordered by
 * priority (higher first), then by that order. Everything here is immutable once built and is
 * freed with the snapshot: instances are destroyed and their images released. */
#ifndef LINTEL_PLUGIN_HOST_H
#define LINTEL_PLUGIN_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lintel/plugin.h>

#include "config.h"
#include "plugin_loader.h"
#include "ynode.h"

struct lintel_shared;

/* Process-wide services the plugin host hands to instances. */
struct lintel_host_services {
    struct lintel_registry *registry;
    struct lintel_shared *shared;
    struct lintel_metrics *metrics;
};

/* The host's side of one plugin instance (plugins see it as the opaque lintel_instance). */
struct lintel_instance {
    struct lintel_image *img;
    const struct lintel_plugin *desc;
    size_t desc_size; /* the plugin's struct_size, capped at ours: fields past it are absent */
    void *instance;   /* the plugin's own */
    unsigned index;   /* per-request context slot, unique within the snapshot */
    const char *plugin;   /* plugin name */
    const char *name;     /* instance name (defaults to the plugin name) */
    char ns[160];         /* "plugin/instance": shared-state namespace */
    const struct lintel_ynode *node; /* the entry in the YAML */
    const struct lintel_ynode *consumers; /* the configuration's validated consumers list */
    const struct lintel_config *cfg;      /* the configuration it belongs to (same lifetime) */
    bool created;
};

/* Where create reports a config error (plugins see it as the opaque lintel_cfg_error). */
struct lintel_cfg_error {
    const struct lintel_ynode *node;
    char msg[256];
    bool set;
};

enum lintel_sticky_on { STICKY_REQUEST_ID, STICKY_HEADER, STICKY_COOKIE, STICKY_ARG, STICKY_IP };

/* One entry of a chain: an instance, or a weighted choice of instances (plugin version canary). */
struct lintel_chain_slot {
    struct lintel_instance **alts;
    unsigned *weights; /* cumulative, last = total */
    unsigned nalts;
    enum lintel_sticky_on sticky;
    const char *sticky_name;
    int priority;
};

struct lintel_chain {
    struct lintel_chain_slot *slots; /* run order */
    unsigned nslots;
    unsigned phases; /* bit (1 << phase): some handler exists */
};

struct lintel_plugins {
    struct lintel_instance **instances;
    unsigned ninstances;
    struct lintel_chain *routes; /* one per route, same index */
    size_t nroutes;
    struct lintel_chain global;  /* requests without a route (404, bad requests): global only */
};

/* Builds instances and chains for cfg. Returns NULL with err set ("FILE:LINE:COL: key.path:
 * message" for config errors, "PATH: reason" for refused plugin files). Thread: main. */
struct lintel_plugins *lintel_plugins_build(const struct lintel_config *cfg,
                                            const struct lintel_host_services *svc, char *err,
                                            size_t errlen);

/* Destroys every instance and releases the images. NULL is ignored. Thread: any. */
void lintel_plugins_free(struct lintel_plugins *p);

/* The handler of inst for phase, or NULL (also when the plugin's descriptor is too old to have
 * it). */
lintel_handler_fn lintel_instance_handler(const struct lintel_instance *inst, enum lintel_phase ph);

/* The host API table (one for the process). */
const struct lintel_host_api *lintel_host_api_get(void);

struct lintel_request;
/* Applies the response headers plugins set before the response existed (kept in
 * req->pending_resp, validated and copied when set) onto the response, with set semantics. */
void lintel_host_apply_pending(struct lintel_request *req);

/* The number of workers plugins see (worker_count); set before instances are created. */
void lintel_host_workers_set(unsigned n);
unsigned lintel_host_workers(void);

/* Services in use (set once at startup by main; NULL members when absent). */
void lintel_host_services_set(const struct lintel_host_services *svc);
const struct lintel_host_services *lintel_host_services_get(void);

#endif
