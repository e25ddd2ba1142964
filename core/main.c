/* lintel: the gateway binary. Parses the command line, loads the configuration, starts one
 * worker per core and handles signals: SIGHUP reloads, SIGTERM/SIGINT drain and stop. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <lintel/version.h>

#include "admin.h"
#include "httpc.h"
#include "shared.h"
#include "config.h"
#include "dns.h"
#include "health.h"
#include "log.h"
#include "mm.h"
#include "metrics.h"
#include "plugin_host.h"
#include "plugin_loader.h"
#include "snapshot.h"
#include "worker.h"

struct gateway {
    const char *config_path;
    struct event_base *base;
    struct lintel_snapshot *current;
    struct lintel_worker *workers;
    unsigned nworkers;
    unsigned reloads_ok, reloads_failed;
    struct lintel_host_services svc;
    struct lintel_admin *admin;
    struct lintel_health *health; /* health probes and target states */
    struct lintel_dns *dns;       /* resolves host-name targets; NULL until a config has one */
    bool running;                 /* workers started: new snapshots go to them */
    struct event *reaper;
    long start_time;
};

/* Plugin images are copied here before dlopen (see plugin_loader.h). */
static struct lintel_registry *registry_open(char *err, size_t errlen)
{
    char dir[256];
    const char *base = getenv("LINTEL_RUN_DIR");
    snprintf(dir, sizeof(dir), "%s/lintel-%ld", base ? base : "/tmp", (long)getpid());
    return lintel_registry_new(dir, err, errlen);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: lintel -c FILE      run the gateway\n"
               "       lintel -t -c FILE   validate FILE and exit (0 valid, 1 invalid)\n"
               "       lintel -V           print version and plugin ABI version\n");
}

static void on_targets_changed(void *ctx);

/* Starts resolving cfg's host names (creating the resolver for the first configuration that
 * has some). Returns 0, or -1 with err set. */
static int track_names(struct gateway *g, const struct lintel_config *cfg, char *err, size_t errlen)
{
    if (!cfg->has_names)
        return 0;
    if (!g->dns && !(g->dns = lintel_dns_new(g->base, cfg, on_targets_changed, g, err, errlen)))
        return -1;
    if (lintel_dns_track(g->dns, cfg) < 0) {
        snprintf(err, errlen, "out of memory starting the resolver");
        return -1;
    }
    return 0;
}

/* Loads the file into a snapshot; host names get the addresses the resolver has now (g NULL:
 * none, for -t). nworkers 0: as many as the file asks for (first load and -t). */
static struct lintel_snapshot *load(struct gateway *g, const char *path, unsigned generation,
                                    unsigned nworkers, char *err, size_t errlen)
{
    struct lintel_config *cfg;
    if (lintel_config_load(path, &cfg, err, errlen) < 0)
        return NULL;
    if (g && track_names(g, cfg, err, errlen) < 0) {
        lintel_config_free(cfg);
        return NULL;
    }
    return lintel_snapshot_new_resolved(cfg, generation, nworkers ? nworkers : cfg->workers,
                                        g && g->dns ? lintel_dns_lookup : NULL, g ? g->dns : NULL,
                                        err, errlen);
}

/* Makes s (with its health view) the configuration every worker takes for new requests. */
static void publish(struct gateway *g, struct lintel_snapshot *s)
{
    for (unsigned i = 0; i < g->nworkers; i++)
        lintel_worker_publish(&g->workers[i], s);
    lintel_snapshot_unref(g->current);
    g->current = s;
}

/* The resolver found other addresses: the same configuration with the new targets. */
static void on_targets_changed(void *ctx)
{
    struct gateway *g = ctx;
    struct lintel_snapshot *s;
    char err[512];
    if (!g->running)
        return; /* the first snapshot is built from what the resolver has then */
    int rc = lintel_snapshot_retarget(g->current, lintel_dns_lookup, g->dns, &s, err, sizeof(err));
    if (rc == 0)
        return;
    if (rc < 0 || lintel_health_update(g->health, s, err, sizeof(err)) < 0) {
        if (rc > 0)
            lintel_snapshot_unref(s);
        lintel_error("resolver: new addresses not applied: %s", err);
        return;
    }
    for (size_t i = 0; i < s->cfg->nupstreams; i++) {
        const struct lintel_upstream_conf *u = &s->cfg->upstreams[i];
        if (u->ntargets != g->current->cfg->upstreams[i].ntargets)
            lintel_info("upstream %s: %zu target(s) now", u->name, u->ntargets);
    }
    publish(g, s);
}

static bool same_listeners(const struct lintel_config *a, const struct lintel_config *b)
{
    if (a->nlisten != b->nlisten || a->workers != b->workers)
        return false;
    for (size_t i = 0; i < a->nlisten; i++)
        if (a->listen[i].len != b->listen[i].len ||
            memcmp(&a->listen[i].ss, &b->listen[i].ss, a->listen[i].len) != 0)
            return false;
    return true;
}

/* Loads the file again and hands the new snapshot to every worker; on any error the running
 * configuration stays. Returns 0, or -1 with err set. */
static int reload(struct gateway *g, char *err, size_t errlen)
{
    struct lintel_snapshot *s =
        load(g, g->config_path, g->current->generation + 1, g->nworkers, err, errlen);
    if (s && g->dns && lintel_dns_settings_differ(&g->current->cfg->resolver, &s->cfg->resolver))
        lintel_warn("reload: resolver settings stay as they are until a restart");
    if (!s) {
        if (g->dns)
            lintel_dns_retain(g->dns, g->current->cfg); /* names only the refused file had */
        g->reloads_failed++;
        lintel_metrics_reload(g->svc.metrics, false);
        lintel_error("reload refused, configuration %u keeps serving: %s", g->current->generation,
                     err);
        return -1;
    }
    /* Last step that may fail: binds the new configuration's targets to their health states. */
    if (lintel_health_update(g->health, s, err, errlen) < 0) {
        lintel_snapshot_unref(s);
        if (g->dns)
            lintel_dns_retain(g->dns, g->current->cfg);
        g->reloads_failed++;
        lintel_metrics_reload(g->svc.metrics, false);
        lintel_error("reload refused, configuration %u keeps serving: %s", g->current->generation,
                     err);
        return -1;
    }
    lintel_metrics_reload(g->svc.metrics, true);
    if (!same_listeners(g->current->cfg, s->cfg))
        lintel_warn("reload: listen addresses and workers stay as they are until a restart");
    publish(g, s);
    if (g->dns)
        lintel_dns_retain(g->dns, s->cfg);
    g->reloads_ok++;
    lintel_info("configuration %u loaded from %s (%zu routes, %zu upstreams)", s->generation,
                g->config_path, s->cfg->nroutes, s->cfg->nupstreams);
    return 0;
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    struct gateway *g = arg;
    unsigned n = lintel_registry_reap(g->svc.registry);
    if (n)
        lintel_info("unloaded %u plugin image(s) no configuration uses any more", n);
}

static struct lintel_snapshot *admin_current(void *ctx)
{
    struct gateway *g = ctx;
    lintel_snapshot_ref(g->current);
    return g->current;
}

static int admin_reload(void *ctx, char *err, size_t errlen)
{
    return reload(ctx, err, errlen);
}

static unsigned admin_reloads_ok(void *ctx)
{
    return ((struct gateway *)ctx)->reloads_ok;
}

static unsigned admin_reloads_failed(void *ctx)
{
    return ((struct gateway *)ctx)->reloads_failed;
}

/* SIGUSR1: plugins reopen their files (log rotation), on every live instance of the current
 * configuration. */
static void on_sigusr1(evutil_socket_t sig, short what, void *arg)
{
    struct gateway *g = arg;
    const struct lintel_plugins *p = g->current->plugins;
    unsigned n = 0;
    for (unsigned i = 0; p && i < p->ninstances; i++)
        if (p->instances[i]->desc->reopen) {
            p->instances[i]->desc->reopen(p->instances[i]->instance);
            n++;
        }
    lintel_info("SIGUSR1: %u plugin instance(s) reopened their files", n);
}

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    char err[1024];
    reload(arg, err, sizeof(err));
}

static void on_sigterm(evutil_socket_t sig, short what, void *arg)
{
    struct gateway *g = arg;
    lintel_info("%s: draining (up to %llu ms) and stopping", sig == SIGINT ? "SIGINT" : "SIGTERM",
                (unsigned long long)g->current->cfg->timeouts.drain_ms);
    for (unsigned i = 0; i < g->nworkers; i++)
        lintel_worker_stop(&g->workers[i]);
    event_base_loopexit(g->base, NULL);
}

static int run(struct gateway *g)
{
    char err[1024];
    int rc = 1;
    struct event *ev_hup = NULL, *ev_term = NULL, *ev_int = NULL, *ev_usr1 = NULL;
    unsigned started = 0;

    signal(SIGPIPE, SIG_IGN);
    g->start_time = (long)time(NULL);
    g->svc.registry = registry_open(err, sizeof(err));
    if (!g->svc.registry) {
        lintel_error("%s", err);
        return 1;
    }
    /* Shared by all workers: 64k counters (rate limits), 4k cache entries of up to 4 KiB. */
    g->svc.shared = lintel_shared_new(65536, 4096, 4096);
    if (!g->svc.shared || lintel_httpc_global_init() < 0) {
        lintel_error("out of memory setting up shared state");
        goto cleanup;
    }
    lintel_host_services_set(&g->svc);
    g->base = event_base_new();
    if (!g->base)
        goto cleanup;
    struct lintel_config *first;
    if (lintel_config_load(g->config_path, &first, err, sizeof(err)) < 0) {
        lintel_error("%s", err);
        goto cleanup;
    }
    if (track_names(g, first, err, sizeof(err)) < 0) {
        lintel_config_free(first);
        lintel_error("%s", err);
        goto cleanup;
    }
    /* Host names get their first answers (or failures) before the ports open; the resolver
     * runs on this loop and bounds the wait with its timeout and attempts. */
    while (g->dns && lintel_dns_pending(g->dns))
        if (event_base_loop(g->base, EVLOOP_ONCE) != 0)
            break;
    g->current = lintel_snapshot_new_resolved(first, 1, first->workers,
                                              g->dns ? lintel_dns_lookup : NULL, g->dns, err,
                                              sizeof(err));
    if (!g->current) {
        lintel_error("%s", err);
        goto cleanup;
    }
    g->health = lintel_health_new(g->base);
    if (!g->health || lintel_health_update(g->health, g->current, err, sizeof(err)) < 0) {
        lintel_error("%s", g->health ? err : "out of memory setting up health checks");
        goto cleanup;
    }
    g->nworkers = g->current->cfg->workers;
    g->svc.metrics = lintel_metrics_new(g->nworkers);
    if (!g->svc.metrics)
        goto cleanup;
    g->workers = calloc(g->nworkers, sizeof(*g->workers));
    if (!g->workers)
        goto cleanup;
    /* Signal handlers before the ports open: whoever sees the port accept may signal at once. */
    ev_hup = evsignal_new(g->base, SIGHUP, on_sighup, g);
    ev_term = evsignal_new(g->base, SIGTERM, on_sigterm, g);
    ev_int = evsignal_new(g->base, SIGINT, on_sigterm, g);
    ev_usr1 = evsignal_new(g->base, SIGUSR1, on_sigusr1, g);
    if (!ev_hup || !ev_term || !ev_int || !ev_usr1 || evsignal_add(ev_hup, NULL) ||
        evsignal_add(ev_term, NULL) || evsignal_add(ev_int, NULL) || evsignal_add(ev_usr1, NULL))
        goto cleanup;
    for (unsigned i = 0; i < g->nworkers; i++) {
        g->workers[i].id = i;
        g->workers[i].metrics = lintel_metrics_shard(g->svc.metrics, i);
        if (lintel_worker_listen(&g->workers[i], g->current->cfg, err, sizeof(err)) < 0) {
            lintel_error("%s", err);
            goto cleanup;
        }
    }
    const struct lintel_config *c0 = g->current->cfg;
    if (c0->admin_enabled) {
        struct lintel_admin_ops ops = {
            .ctx = g,
            .current = admin_current,
            .reload = admin_reload,
            .nworkers = g->nworkers,
            .start_time = g->start_time,
            .reloads_ok = admin_reloads_ok,
            .reloads_failed = admin_reloads_failed,
            .registry = g->svc.registry,
            .metrics = g->svc.metrics,
        };
        g->admin = lintel_admin_start(g->base, &c0->admin, &ops, err, sizeof(err));
        if (!g->admin) {
            lintel_error("%s", err);
            goto cleanup;
        }
    }
    struct timeval second = {1, 0};
    g->reaper = event_new(g->base, -1, EV_PERSIST, on_reap, g);
    if (!g->reaper || event_add(g->reaper, &second) < 0)
        goto cleanup;
    for (; started < g->nworkers; started++) {
        if (lintel_worker_start(&g->workers[started], g->current, err, sizeof(err)) < 0) {
            lintel_error("%s", err);
            goto cleanup;
        }
    }
    const struct lintel_config *cfg = g->current->cfg;
    lintel_info("lintel %s listening on %s%s with %u worker(s), %zu routes", LINTEL_VERSION,
                cfg->listen[0].text, cfg->nlisten > 1 ? " (and more)" : "", g->nworkers,
                cfg->nroutes);
    g->running = true;
    on_targets_changed(g); /* answers that came while the workers started */
    event_base_dispatch(g->base);
    rc = 0;
cleanup:
    for (unsigned i = 0; i < started; i++)
        lintel_worker_stop(&g->workers[i]);
    for (unsigned i = 0; i < started; i++)
        lintel_worker_join(&g->workers[i]);
    for (unsigned i = started; g->workers && i < g->nworkers; i++)
        for (size_t j = 0; j < g->workers[i].nlisten; j++)
            close(g->workers[i].listen_fds[j]);
    if (g->workers)
        for (unsigned i = started; i < g->nworkers; i++)
            free(g->workers[i].listen_fds);
    free(g->workers);
    if (ev_hup)
        event_free(ev_hup);
    if (ev_term)
        event_free(ev_term);
    if (ev_int)
        event_free(ev_int);
    if (ev_usr1)
        event_free(ev_usr1);
    if (g->reaper)
        event_free(g->reaper);
    lintel_admin_free(g->admin);
    lintel_health_free(g->health); /* before the loop its probes run on */
    lintel_dns_free(g->dns);
    if (g->base)
        event_base_free(g->base);
    lintel_snapshot_unref(g->current);
    lintel_metrics_free(g->svc.metrics);
    lintel_shared_free(g->svc.shared);
    lintel_registry_free(g->svc.registry);
    if (rc == 0)
        lintel_info("stopped");
    return rc;
}

int main(int argc, char **argv)
{
    lintel_mm_install(); /* before libevent allocates anything (mm.h) */
    const char *path = NULL;
    bool test_only = false;
    int opt;
    const char *lvl = getenv("LINTEL_LOG");
    if (lvl && strcmp(lvl, "debug") == 0)
        lintel_log_set_level(LINTEL_LOG_DEBUG);
    while ((opt = getopt(argc, argv, "c:tVh")) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            test_only = true;
            break;
        case 'V':
            printf("lintel %s (plugin abi %d.%d)\n", LINTEL_VERSION, LINTEL_ABI_MAJOR,
                   LINTEL_ABI_MINOR);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!path || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (test_only) {
        char err[1024];
        struct lintel_host_services svc = {.registry = registry_open(err, sizeof(err))};
        if (!svc.registry) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        lintel_host_services_set(&svc);
        struct lintel_snapshot *s = load(NULL, path, 1, 0, err, sizeof(err));
        if (!s) {
            fprintf(stderr, "%s\n", err);
            lintel_registry_free(svc.registry);
            return 1;
        }
        printf("%s: configuration is valid (%zu routes, %zu upstreams)\n", path, s->cfg->nroutes,
               s->cfg->nupstreams);
        lintel_snapshot_unref(s);
        lintel_registry_free(svc.registry);
        return 0;
    }
    struct gateway g = {.config_path = path};
    return run(&g);
}
