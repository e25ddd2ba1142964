/* The admin API: a few JSON (and one Prometheus) endpoints served by evhttp on the main
 * thread's event loop. Everything it shows comes from the current snapshot (taken with a
 * reference for the length of one request), the plugin registry and the metrics; nothing here
 * runs on a worker, so nothing here takes a lock. */
#include "admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <strings.h>

#include "health.h"
#include "log.h"

static const char JSON[] = "application/json";

struct lintel_admin {
    struct evhttp *http;
    struct lintel_admin_ops ops;
};

/* ---- JSON output ---- */

/* Length of the valid UTF-8 sequence at p, or 0 when the bytes there are not one (overlong,
 * surrogate, past U+10FFFF, cut short). */
static size_t utf8_seq(const unsigned char *p)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xbf;
    size_t n;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = c == 0xe0 ? 0xa0 : lo;
        hi = c == 0xed ? 0x9f : hi;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = c == 0xf0 ? 0x90 : lo;
        hi = c == 0xf4 ? 0x8f : hi;
    } else {
        return 0;
    }
    if (p[1] < lo || p[1] > hi)
        return 0; /* also stops at the terminating NUL */
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* Appends s escaped for the inside of a JSON string. Names and config text are UTF-8 (libyaml
 * checks), but file paths need not be: invalid bytes become U+FFFD so the answer stays JSON. */
static void json_chars(struct evbuffer *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s, *run = p;

    while (*p) {
        size_t n = utf8_seq(p);
        if (n && *p >= 0x20 && *p != '"' && *p != '\\') {
            p += n;
            continue;
        }
        evbuffer_add(out, run, (size_t)(p - run));
        if (*p == '"' || *p == '\\')
            evbuffer_add_printf(out, "\\%c", *p);
        else if (*p == '\n')
            evbuffer_add(out, "\\n", 2);
        else if (*p == '\t')
            evbuffer_add(out, "\\t", 2);
        else if (*p == '\r')
            evbuffer_add(out, "\\r", 2);
        else if (n)
            evbuffer_add_printf(out, "\\u%04x", *p);
        else
            evbuffer_add(out, "\\ufffd", 6);
        p += n ? n : 1;
        run = p;
    }
    evbuffer_add(out, run, (size_t)(p - run));
}

static void json_str(struct evbuffer *out, const char *s)
{
    evbuffer_add(out, "\"", 1);
    json_chars(out, s);
    evbuffer_add(out, "\"", 1);
}

/* Appends a separator before every item but the first of an array or object. */
static void json_sep(struct evbuffer *out, size_t i)
{
    if (i)
        evbuffer_add(out, ",", 1);
}

static int json_error(struct evbuffer *out, int code, const char *msg)
{
    evbuffer_add_printf(out, "{\"status\":\"error\",\"error\":");
    json_str(out, msg);
    evbuffer_add_printf(out, "}\n");
    return code;
}

/* ---- what the configuration says about plugins ---- */

/* Whether a plugins list (entries are maps with a name, checked by the loader) or a
 * disable_plugins list (plain names) names plugin name. list may be NULL. */
static bool list_names(const struct lintel_ynode *list, const char *name)
{
    for (size_t i = 0; list && i < list->len; i++) {
        const struct lintel_ynode *it = list->items[i];
        if (it->type == LINTEL_YNODE_MAP)
            it = lintel_ynode_get(it, "name");
        if (it && it->type == LINTEL_YNODE_SCALAR && strcmp(it->scalar, name) == 0)
            return true;
    }
    return false;
}

/* A route runs a plugin it lists, and a global one it does not disable. Which image serves it
 * (version constraints) is the plugin host's decision; this answers by name only. */
static bool route_uses(const struct lintel_config *cfg, const struct lintel_route_conf *r,
                       const char *plugin)
{
    return list_names(r->plugins, plugin) ||
           (list_names(cfg->plugins, plugin) && !list_names(r->disable_plugins, plugin));
}

/* ---- endpoints: each fills out and returns the HTTP status ---- */

static int on_status(struct lintel_admin *a, struct evbuffer *out)
{
    struct lintel_snapshot *s = a->ops.current(a->ops.ctx);
    evbuffer_add_printf(out, "{\"version\":");
    json_str(out, LINTEL_VERSION);
    evbuffer_add_printf(out,
                        ",\"pid\":%ld,\"uptime_s\":%ld,\"workers\":%u,\"generation\":%u,"
                        "\"reloads\":{\"ok\":%u,\"failed\":%u}}\n",
                        (long)getpid(), (long)time(NULL) - a->ops.start_time, a->ops.nworkers,
                        s->generation, a->ops.reloads_ok(a->ops.ctx),
                        a->ops.reloads_failed(a->ops.ctx));
    lintel_snapshot_unref(s);
    return 200;
}

static void route_json(struct evbuffer *out, const struct lintel_route_conf *r)
{
    static const char path_prefix[] = {
        [LINTEL_PATH_PREFIX] = 0, [LINTEL_PATH_EXACT] = '=', [LINTEL_PATH_REGEX] = '~'};

    evbuffer_add_printf(out, "{\"name\":");
    json_str(out, r->name);
    evbuffer_add_printf(out, ",\"hosts\":[");
    for (size_t i = 0; i < r->nhosts; i++) {
        json_sep(out, i);
        json_str(out, r->hosts[i]);
    }
    /* As written in the file, so that a path can be pasted back into it. */
    evbuffer_add_printf(out, "],\"paths\":[");
    for (size_t i = 0; i < r->npaths; i++) {
        json_sep(out, i);
        evbuffer_add(out, "\"", 1);
        if (path_prefix[r->paths[i].kind])
            evbuffer_add(out, &path_prefix[r->paths[i].kind], 1);
        json_chars(out, r->paths[i].text);
        evbuffer_add(out, "\"", 1);
    }
    evbuffer_add_printf(out, "],\"methods\":[");
    for (unsigned k = 0, n = 0; k < 64; k++) {
        if (r->methods & (1ull << k)) {
            json_sep(out, n++);
            json_str(out, http_method_str((enum http_method)k));
        }
    }
    evbuffer_add_printf(out, "],\"headers\":{");
    for (size_t i = 0; i < r->nheaders; i++) {
        json_sep(out, i);
        json_str(out, r->headers[i].name);
        evbuffer_add(out, ":", 1);
        json_str(out, r->headers[i].value);
    }
    evbuffer_add_printf(out, "},\"upstream\":");
    json_str(out, r->upstream->name);
    evbuffer_add_printf(out, ",\"strip_prefix\":%s,\"plugins\":[",
                        r->strip_prefix ? "true" : "false");
    for (size_t i = 0; r->plugins && i < r->plugins->len; i++) {
        json_sep(out, i);
        json_str(out, lintel_ynode_get(r->plugins->items[i], "name")->scalar);
    }
    evbuffer_add_printf(out, "]}");
}

static int on_routes(struct lintel_admin *a, struct evbuffer *out)
{
    struct lintel_snapshot *s = a->ops.current(a->ops.ctx);
    evbuffer_add(out, "[", 1);
    for (size_t i = 0; i < s->cfg->nroutes; i++) {
        json_sep(out, i);
        route_json(out, &s->cfg->routes[i]);
    }
    evbuffer_add(out, "]\n", 2);
    lintel_snapshot_unref(s);
    return 200;
}

/* A status bitmap as a JSON list of numbers. */
static void statuses_json(struct evbuffer *out, const uint64_t *set)
{
    evbuffer_add(out, "[", 1);
    for (int st = 100, n = 0; st < 600; st++) {
        if (lintel_health_status_in(set, st)) {
            json_sep(out, (size_t)n++);
            evbuffer_add_printf(out, "%d", st);
        }
    }
    evbuffer_add(out, "]", 1);
}

static void health_conf_json(struct evbuffer *out, const struct lintel_upstream_conf *u)
{
    const struct lintel_health_active_conf *a = u->health.active;
    const struct lintel_health_passive_conf *p = u->health.passive;
    evbuffer_add_printf(out, "\"health\":{\"active\":");
    if (a) {
        evbuffer_add_printf(out, "{\"path\":");
        json_str(out, a->path);
        evbuffer_add_printf(out,
                            ",\"interval_ms\":%llu,\"timeout_ms\":%llu,\"healthy\":%u,"
                            "\"unhealthy\":%u,\"statuses\":",
                            (unsigned long long)a->interval_ms, (unsigned long long)a->timeout_ms,
                            a->healthy, a->unhealthy);
        statuses_json(out, a->statuses);
        evbuffer_add(out, "}", 1);
    } else {
        evbuffer_add_printf(out, "null");
    }
    evbuffer_add_printf(out, ",\"passive\":");
    if (p) {
        evbuffer_add_printf(out, "{\"failures\":%u,\"cooldown_ms\":%llu,\"statuses\":", p->failures,
                            (unsigned long long)p->cooldown_ms);
        statuses_json(out, p->statuses);
        evbuffer_add(out, "}", 1);
    } else {
        evbuffer_add_printf(out, "null");
    }
    evbuffer_add_printf(out, "},");
}

/* A target's health: just "up" without health checks; else state, since (UTC) and reason. */
static void target_health_json(struct evbuffer *out, const struct lintel_health_view *v,
                               const struct lintel_upstream_conf *u, size_t i)
{
    struct lintel_health_status st;
    lintel_health_status_get(v, u, i, &st);
    evbuffer_add_printf(out, ",\"health\":\"%s\"", st.up ? "up" : "down");
    if (!st.checked)
        return;
    char since[32];
    time_t t = (time_t)st.since;
    struct tm tm;
    strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    evbuffer_add_printf(out, ",\"since\":\"%s\",\"reason\":", since);
    json_str(out, st.reason);
}

static void upstream_json(struct evbuffer *out, const struct lintel_snapshot *s,
                          const struct lintel_upstream_conf *u)
{
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

    json_str(out, u->name);
    evbuffer_add_printf(out, ":{\"balance\":\"%s\",", balances[u->balance]);
    if (u->balance == LINTEL_BALANCE_HASH) {
        evbuffer_add_printf(out, "\"hash\":{\"on\":\"%s\"", hash_ons[u->hash_on]);
        if (u->hash_name) {
            evbuffer_add_printf(out, ",\"name\":");
            json_str(out, u->hash_name);
        }
        evbuffer_add_printf(out, "},");
    }
    if (u->health.active || u->health.passive)
        health_conf_json(out, u);
    evbuffer_add_printf(out,
                        "\"keepalive\":%u,\"retries\":%u,\"timeouts\":{\"connect_ms\":%llu,"
                        "\"send_ms\":%llu,\"read_ms\":%llu,\"idle_ms\":%llu},\"targets\":[",
                        u->keepalive, u->retries, (unsigned long long)u->connect_ms,
                        (unsigned long long)u->send_ms, (unsigned long long)u->read_ms,
                        (unsigned long long)u->idle_ms);
    for (size_t i = 0; i < u->ntargets; i++) {
        json_sep(out, i);
        evbuffer_add_printf(out, "{\"address\":");
        json_str(out, u->targets[i].addr.text);
        evbuffer_add_printf(out, ",\"weight\":%u", u->targets[i].weight);
        target_health_json(out, s->health, u, i);
        evbuffer_add(out, "}", 1);
    }
    evbuffer_add_printf(out, "]}");
}

static int on_upstreams(struct lintel_admin *a, struct evbuffer *out)
{
    struct lintel_snapshot *s = a->ops.current(a->ops.ctx);
    evbuffer_add(out, "{", 1);
    for (size_t i = 0; i < s->cfg->nupstreams; i++) {
        json_sep(out, i);
        upstream_json(out, s, &s->cfg->upstreams[i]);
    }
    evbuffer_add(out, "}\n", 2);
    lintel_snapshot_unref(s);
    return 200;
}

struct plugins_walk {
    struct evbuffer *out;
    const struct lintel_config *cfg;
    size_t n;
};

static void on_image(const struct lintel_image *img, void *arg)
{
    static const char *const states[] = {
        [LINTEL_IMAGE_ACTIVE] = "active",
        [LINTEL_IMAGE_DRAINING] = "draining",
        [LINTEL_IMAGE_UNLOADED] = "unloaded",
    };
    struct plugins_walk *w = arg;
    struct evbuffer *out = w->out;
    int state = atomic_load_explicit(&img->state, memory_order_relaxed);

    json_sep(out, w->n++);
    evbuffer_add_printf(out, "{\"name\":");
    json_str(out, img->name);
    evbuffer_add_printf(out, ",\"version\":");
    json_str(out, img->version);
    evbuffer_add_printf(out, ",\"hash\":");
    json_str(out, img->hash);
    evbuffer_add_printf(out, ",\"state\":\"%s\",\"inflight\":%ld,\"path\":",
                        state >= 0 && state <= LINTEL_IMAGE_UNLOADED ? states[state] : "unknown",
                        lintel_image_inflight(img));
    json_str(out, img->src_path);
    evbuffer_add_printf(out, ",\"routes\":[");
    for (size_t i = 0, n = 0; i < w->cfg->nroutes; i++) {
        if (route_uses(w->cfg, &w->cfg->routes[i], img->name)) {
            json_sep(out, n++);
            json_str(out, w->cfg->routes[i].name);
        }
    }
    evbuffer_add_printf(out, "]}");
}

static int on_plugins(struct lintel_admin *a, struct evbuffer *out)
{
    struct lintel_snapshot *s = a->ops.current(a->ops.ctx);
    struct plugins_walk w = {out, s->cfg, 0};
    evbuffer_add(out, "[", 1);
    if (a->ops.registry)
        lintel_registry_foreach(a->ops.registry, on_image, &w);
    evbuffer_add(out, "]\n", 2);
    lintel_snapshot_unref(s);
    return 200;
}

static int on_metrics(struct lintel_admin *a, struct evbuffer *out)
{
    struct lintel_snapshot *s = a->ops.current(a->ops.ctx);
    int rc = lintel_metrics_render(a->ops.metrics, a->ops.registry, out);
    if (rc == 0)
        rc = lintel_health_render_metrics(s, out);
    lintel_snapshot_unref(s);
    if (rc == 0)
        return 200;
    evbuffer_drain(out, evbuffer_get_length(out));
    return json_error(out, 500, "out of memory");
}

static int on_reload(struct lintel_admin *a, struct evbuffer *out)
{
    char err[1024] = "";
    if (a->ops.reload(a->ops.ctx, err, sizeof(err)) < 0)
        return json_error(out, 400, err[0] ? err : "reload failed");
    struct lintel_snapshot *s = a->ops.current(a->ops.ctx);
    evbuffer_add_printf(out, "{\"status\":\"ok\",\"generation\":%u}\n", s->generation);
    lintel_snapshot_unref(s);
    return 200;
}

static const struct endpoint {
    const char *path;
    enum evhttp_cmd_type method;
    const char *allow;
    const char *type; /* of a successful answer; errors are JSON */
    int (*fn)(struct lintel_admin *a, struct evbuffer *out);
} endpoints[] = {
    {"/-/status", EVHTTP_REQ_GET, "GET", JSON, on_status},
    {"/-/routes", EVHTTP_REQ_GET, "GET", JSON, on_routes},
    {"/-/upstreams", EVHTTP_REQ_GET, "GET", JSON, on_upstreams},
    {"/-/plugins", EVHTTP_REQ_GET, "GET", JSON, on_plugins},
    {"/-/metrics", EVHTTP_REQ_GET, "GET", "text/plain; version=0.0.4; charset=utf-8", on_metrics},
    {"/-/reload", EVHTTP_REQ_POST, "POST", JSON, on_reload},
};

/* Whether the request carries "Authorization: Bearer <token>" for the configured token (none
 * configured: every request is allowed). Both sides are hashed first and the digests compared
 * with CRYPTO_memcmp, so the time taken says nothing about the token, its length included. */
static bool authorized(struct lintel_admin *a, struct evhttp_request *req)
{
    struct lintel_snapshot *s = a->ops.current(a->ops.ctx);
    const struct lintel_config *cfg = s->cfg;
    bool ok = true;
    if (cfg->admin_token) {
        const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
        unsigned char want[SHA256_DIGEST_LENGTH], got[SHA256_DIGEST_LENGTH];
        SHA256((const unsigned char *)cfg->admin_token, cfg->admin_token_len, want);
        if (h && strncasecmp(h, "Bearer ", 7) == 0) {
            const char *t = h + 7;
            while (*t == ' ')
                t++;
            SHA256((const unsigned char *)t, strlen(t), got);
            ok = CRYPTO_memcmp(want, got, sizeof(want)) == 0;
        } else {
            ok = false;
        }
    }
    lintel_snapshot_unref(s);
    return ok;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct lintel_admin *a = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    const struct endpoint *e = NULL;
    const char *type = JSON;
    int code;

    for (size_t i = 0; path && i < sizeof(endpoints) / sizeof(*endpoints); i++)
        if (strcmp(path, endpoints[i].path) == 0)
            e = &endpoints[i];
    struct evbuffer *out = evbuffer_new();
    if (!out) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    if (!authorized(a, req)) {
        evhttp_add_header(headers, "WWW-Authenticate", "Bearer realm=\"lintel-admin\"");
        code = json_error(out, 401, "missing or wrong bearer token");
    } else if (!e) {
        code = json_error(out, 404, "not found");
    } else if (evhttp_request_get_command(req) != e->method) {
        evhttp_add_header(headers, "Allow", e->allow);
        code = json_error(out, 405, "method not allowed");
    } else {
        code = e->fn(a, out);
        if (code == 200)
            type = e->type;
    }
    evhttp_add_header(headers, "Content-Type", type);
    evhttp_add_header(headers, "Cache-Control", "no-store");
    evhttp_send_reply(req, code, NULL, out);
    evbuffer_free(out);
}

static bool is_loopback(const struct lintel_sockaddr *addr)
{
    if (addr->ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&addr->ss;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (addr->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&addr->ss;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return false;
}

struct lintel_admin *lintel_admin_start(struct event_base *base, const struct lintel_sockaddr *addr,
                                        const struct lintel_admin_ops *ops, char *err,
                                        size_t errlen)
{
    struct lintel_admin *a = calloc(1, sizeof(*a));
    struct evconnlistener *lev;

    if (!a || !(a->http = evhttp_new(base)))
        goto oom;
    a->ops = *ops;
    lev = evconnlistener_new_bind(base, NULL, NULL,
                                  LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                                  16, (const struct sockaddr *)&addr->ss, (int)addr->len);
    if (!lev) {
        snprintf(err, errlen, "admin %s: %s", addr->text, strerror(errno));
        goto fail;
    }
    if (!evhttp_bind_listener(a->http, lev)) {
        evconnlistener_free(lev);
        goto oom;
    }
    /* Every method reaches on_request, so that all refusals are JSON. */
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_timeout(a->http, 30);
    evhttp_set_max_headers_size(a->http, 16 * 1024);
    evhttp_set_max_body_size(a->http, 64 * 1024);
    evhttp_set_gencb(a->http, on_request, a);
    if (!is_loopback(addr)) {
        struct lintel_snapshot *s = a->ops.current(a->ops.ctx);
        if (!s->cfg->admin_token)
            lintel_warn("admin API on %s is reachable beyond this host and has no token: set "
                        "admin.token (docs/security.md)",
                        addr->text);
        lintel_snapshot_unref(s);
    }
    return a;
oom:
    snprintf(err, errlen, "admin %s: out of memory", addr->text);
fail:
    lintel_admin_free(a);
    return NULL;
}

void lintel_admin_free(struct lintel_admin *a)
{
    if (!a)
        return;
    if (a->http)
        evhttp_free(a->http); /* closes the listener and any open connection */
    free(a);
}
