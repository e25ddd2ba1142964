/* The test kit's plugin side: loading and checking a plugin, creating and freeing an instance,
 * and the host table its functions call into. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testkit-internal.h"

/* struct lintel_plugin as ABI 1.0 defined it: every plugin of major 1 has at least this much. */
#define PLUGIN_V1_SIZE (offsetof(struct lintel_plugin, reopen) + sizeof(void (*)(void *)))

/* When plugin.h's host table grows, the kit must offer the new entries too. */
_Static_assert(offsetof(struct lintel_host_api, cache_add) + sizeof(lk_host.cache_add) ==
                   sizeof(struct lintel_host_api),
               "plugin.h has new host functions: implement them in the test kit");

/* The kit runs every instance as worker 0 of 1 (lk_instance_new calls worker_init(..., 0)). */
static unsigned lk_worker_count(void)
{
    return 1;
}

static const char *lk_instance_name(const lintel_instance *self)
{
    return self ? self->kit->name : NULL;
}

const struct lintel_host_api lk_host = {
    .struct_size = sizeof(struct lintel_host_api),
    .abi_major = LINTEL_ABI_MAJOR,
    .abi_minor = LINTEL_ABI_MINOR,
    .log = lk_host_log,
    .cfg_type = lintel_cfg_type,
    .cfg_get = lintel_cfg_get,
    .cfg_len = lintel_cfg_len,
    .cfg_at = lintel_cfg_at,
    .cfg_key_at = lintel_cfg_key_at,
    .cfg_str = lintel_cfg_str,
    .cfg_int = lintel_cfg_int,
    .cfg_bool = lintel_cfg_bool,
    .cfg_duration_ms = lintel_cfg_duration_ms,
    .cfg_size = lintel_cfg_size,
    .cfg_error = lk_cfg_error,
    .req_method = lk_req_method_fn,
    .req_set_method = lk_req_set_method_fn,
    .req_path = lk_req_path_fn,
    .req_set_path = lk_req_set_path_fn,
    .req_query = lk_req_query_fn,
    .req_set_query = lk_req_set_query_fn,
    .req_arg = lk_req_arg_fn,
    .req_cookie = lk_req_cookie_fn,
    .req_header = lk_req_header_fn,
    .req_header_at = lk_req_header_at_fn,
    .req_header_set = lk_req_header_set_fn,
    .req_header_add = lk_req_header_add_fn,
    .req_header_remove = lk_req_header_remove_fn,
    .req_client_addr = lk_req_client_addr_fn,
    .req_route = lk_req_route_fn,
    .req_id = lk_req_id_fn,
    .consumer_set = lk_consumer_set_fn,
    .consumer_name = lk_consumer_name_fn,
    .consumer_id = lk_consumer_id_fn,
    .ctx_get = lk_ctx_get_fn,
    .ctx_set = lk_ctx_set_fn,
    .alloc = lk_alloc_fn,
    .respond = lk_respond_fn,
    .resp_status = lk_resp_status_fn,
    .resp_set_status = lk_resp_set_status_fn,
    .resp_header = lk_resp_header_fn,
    .resp_header_set = lk_resp_header_set_fn,
    .resp_header_add = lk_resp_header_add_fn,
    .resp_header_remove = lk_resp_header_remove_fn,
    .set_upstream = lk_set_upstream_fn,
    .upstream_name = lk_upstream_name_fn,
    .resume = lk_resume_fn,
    .req_timer = lk_req_timer_fn,
    .log_field = lk_log_field_fn,
    .log_field_at = lk_log_field_at_fn,
    .metric_add = lk_host_metric_add,
    .req_info = lk_req_info_fn,
    .req_worker = lk_req_worker_fn,
    .req_body_buffer = lk_req_body_buffer_fn,
    .req_body = lk_req_body_fn,
    .resp_body_chunk = lk_resp_body_chunk_fn,
    .resp_body_last = lk_resp_body_last_fn,
    .http_call = lk_http_call_fn,
    .worker_http_call = lk_worker_http_call_fn,
    .worker_timer = lk_worker_timer_fn,
    .timer_stop = lk_timer_stop_fn,
    .counter_add = lk_counter_add_fn,
    .cache_set = lk_cache_set_fn,
    .cache_get = lk_cache_get_fn,
    .consumer_count = lk_consumer_count_fn,
    .consumer_at = lk_consumer_at_fn,
    .secret = lk_secret_fn,
    .worker_watch = lk_worker_watch_fn,
    .watch_set = lk_watch_set_fn,
    .watch_stop = lk_watch_stop_fn,
    .worker_count = lk_worker_count,
    .set_target = lk_set_target_fn,
    .now_ms = lk_now_ms_fn,
    .instance_name = lk_instance_name,
    .resp_header_at = lk_resp_header_at_fn,
    .upstream_failure = lk_upstream_failure_fn,
    .resend = lk_resend_fn,
    .upstream_healthy = lk_upstream_healthy_fn,
    .metric_set = lk_host_metric_set,
    .counter_window = lk_counter_window_fn,
    .cache_add = lk_cache_add_fn,
};

/* The limits of lintel's image records (64-byte name, 32-byte version, NUL included). */
#define NAME_MAX_LEN 63
#define VERSION_MAX_LEN 31

static bool name_ok(const char *s)
{
    if (!s || !*s || strnlen(s, NAME_MAX_LEN + 1) > NAME_MAX_LEN)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return false;
    return true;
}

/* Dot-separated non-empty [0-9A-Za-z-] identifiers (semver pre-release and build). */
static const char *identifiers_end(const char *s)
{
    for (;;) {
        const char *start = s;
        while ((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
               *s == '-')
            s++;
        if (s == start)
            return NULL;
        if (*s != '.')
            return s;
        s++;
    }
}

/* MAJOR.MINOR.PATCH[-pre][+build], numbers without leading zeros, as lintel's loader takes. */
static bool version_ok(const char *s)
{
    if (!s || strnlen(s, VERSION_MAX_LEN + 1) > VERSION_MAX_LEN)
        return false;
    for (int part = 0; part < 3; part++) {
        if (*s < '0' || *s > '9' || (*s == '0' && s[1] >= '0' && s[1] <= '9'))
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
        if (part < 2 && *s++ != '.')
            return false;
    }
    if (*s == '-' && !(s = identifiers_end(s + 1)))
        return false;
    if (*s == '+' && !(s = identifiers_end(s + 1)))
        return false;
    return *s == '\0';
}

/* The loader's checks, with its phrases (core/plugin_loader.c). */
static int check(const struct lintel_plugin *d, char *err, size_t errlen)
{
    /* The three ABI fields come first in every version of the struct, so they are always
     * readable; the rest only once struct_size says it is there. */
    if (d->abi_major != LINTEL_ABI_MAJOR) {
        snprintf(err, errlen, "wrong ABI major %u (host %u)", (unsigned)d->abi_major,
                 (unsigned)LINTEL_ABI_MAJOR);
        return -1;
    }
    if (d->abi_minor > LINTEL_ABI_MINOR) {
        snprintf(err, errlen, "ABI minor %u is newer than the host's %u", (unsigned)d->abi_minor,
                 (unsigned)LINTEL_ABI_MINOR);
        return -1;
    }
    if (d->struct_size < PLUGIN_V1_SIZE) {
        snprintf(err, errlen, "struct_size %u is smaller than the v1 descriptor (%zu)",
                 (unsigned)d->struct_size, PLUGIN_V1_SIZE);
        return -1;
    }
    if (!name_ok(d->name)) {
        snprintf(err, errlen, "bad plugin name");
        return -1;
    }
    if (!version_ok(d->version)) {
        if (d->version)
            snprintf(err, errlen, "bad version \"%.*s\"", 64, d->version);
        else
            snprintf(err, errlen, "bad version (none)");
        return -1;
    }
    return 0;
}

struct lk_plugin *lk_plugin_from_descriptor(const struct lintel_plugin *desc, char *err,
                                            size_t errlen)
{
    if (!desc) {
        snprintf(err, errlen, "no descriptor");
        return NULL;
    }
    /* The ABI version fields come before struct_size can be trusted to cover anything else. */
    if (check(desc, err, errlen) < 0)
        return NULL;
    struct lk_plugin *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* Fields past the plugin's struct_size are absent: they stay NULL / 0. */
    size_t n = desc->struct_size < sizeof(p->desc) ? desc->struct_size : sizeof(p->desc);
    memcpy(&p->desc, desc, n);
    return p;
}

struct lk_plugin *lk_plugin_load(const char *so_path, char *err, size_t errlen)
{
    void *dl = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        snprintf(err, errlen, "%s: dlopen: %s", so_path, dlerror());
        return NULL;
    }
    const struct lintel_plugin *desc = dlsym(dl, LINTEL_PLUGIN_SYMBOL);
    if (!desc) {
        snprintf(err, errlen, "%s: no symbol %s", so_path, LINTEL_PLUGIN_SYMBOL);
        dlclose(dl);
        return NULL;
    }
    char why[256];
    struct lk_plugin *p = lk_plugin_from_descriptor(desc, why, sizeof(why));
    if (!p) {
        snprintf(err, errlen, "%s: %s", so_path, why);
        dlclose(dl);
        return NULL;
    }
    p->dl = dl;
    return p;
}

void lk_plugin_free(struct lk_plugin *p)
{
    if (!p)
        return;
    if (p->dl)
        dlclose(p->dl);
    free(p);
}

/* Releases what lk_instance_new built before create succeeded. */
static void instance_release(struct lk_instance *in)
{
    lk_metrics_free(in->metrics);
    lk_metrics_free(in->gauges);
    lintel_arena_free(in->arena);
    free(in);
}

struct lk_instance *lk_instance_new(struct lk_plugin *p, const char *yaml_config, char *err,
                                    size_t errlen)
{
    struct lk_instance *in = calloc(1, sizeof(*in));
    if (!in || !(in->arena = lintel_arena_new(4096))) {
        free(in);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    in->handle.kit = in;
    in->plugin = p;
    in->name = p->desc.name;
    snprintf(in->ns, sizeof(in->ns), "%s/%s", p->desc.name, in->name);
    if (yaml_config) {
        in->config = lintel_ynode_parse(in->arena, yaml_config, strlen(yaml_config), err, errlen);
        if (!in->config)
            goto fail;
    }
    if (lk_consumers_load(in, err, errlen) < 0)
        goto fail;

    /* As in lintel, a plugin without create has instances without data of their own. */
    struct lintel_cfg_error cerr = {.in = in};
    int rc = 0;
    if (p->desc.create) {
        in->in_create = true;
        rc =
            p->desc.create(&lk_host, &in->handle, (const lintel_cfg *)in->config, &cerr, &in->data);
        in->in_create = false;
    }
    if (rc != 0) {
        snprintf(err, errlen, "%s", cerr.set ? cerr.msg : "create failed");
        goto fail;
    }
    if (cerr.set) {
        /* lintel would run this instance with a config its plugin called wrong: refuse it. */
        lk_violation("%s: create returned 0 after cfg_error (%s)", in->name, cerr.msg);
        snprintf(err, errlen, "%s", cerr.msg);
        goto fail_created;
    }
    if (p->desc.worker_init && p->desc.worker_init(in->data, 0) != 0) {
        snprintf(err, errlen, "worker_init failed on worker 0");
        goto fail_created;
    }
    return in;

fail_created:
    if (p->desc.destroy)
        p->desc.destroy(in->data);
fail:
    instance_release(in);
    return NULL;
}

void lk_instance_free(struct lk_instance *in)
{
    if (!in)
        return;
    const struct lintel_plugin *d = &in->plugin->desc;
    /* Worker timers, calls and watches stop before worker_fini, which may still stop its own. */
    lk_timers_disarm_instance(in);
    lk_watches_disarm_instance(in);
    if (d->worker_fini)
        d->worker_fini(in->data, 0);
    lk_timers_free_instance(in);
    lk_watches_free_instance(in);
    if (d->destroy)
        d->destroy(in->data);
    instance_release(in);
}

void lk_instance_reopen(struct lk_instance *in)
{
    if (in->plugin->desc.reopen)
        in->plugin->desc.reopen(in->data);
}

uint64_t lk_metric(const struct lk_instance *in, const char *name)
{
    for (const struct lk_metric *m = in->metrics; m; m = m->next)
        if (strcmp(m->name, name) == 0)
            return m->value;
    return 0;
}

int64_t lk_gauge(const struct lk_instance *in, const char *name)
{
    for (const struct lk_metric *m = in->gauges; m; m = m->next)
        if (strcmp(m->name, name) == 0)
            return (int64_t)m->value;
    return 0;
}
