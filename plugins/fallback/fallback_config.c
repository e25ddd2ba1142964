/* fallback configuration: reads and checks the YAML once, in create (main thread), reads
 * static.body_file and sizes the per-worker stores (docs/plugins/fallback.md lists the keys). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lintel/config.h>
#include <lintel/text.h>

#include "fallback.h"

#define DEFAULT_MAX_BODY (1024 * 1024)
#define DEFAULT_MAX_BYTES (64ull * 1024 * 1024)
#define DEFAULT_MAX_ENTRIES 1000
#define DEFAULT_MAX_AGE_MS (3600ull * 1000)
#define DEFAULT_REFRESH_MS 1000
#define DEFAULT_FAILURES 5
#define DEFAULT_COOLDOWN_MS 10000
#define MAX_ENTRIES_LIMIT 10000000
#define MAX_STATIC_BODY (64ull * 1024 * 1024)

static const char *const top_keys[] = {"statuses", "last_good", "static", "breaker", NULL};
static const char *const last_good_keys[] = {"methods",     "key",          "max_body",
                                             "max_entries", "max_bytes",    "max_age",
                                             "refresh",     "skip_headers", NULL};
static const char *const key_keys[] = {"args", "headers", "consumer", NULL};
static const char *const static_keys[] = {"status", "headers", "body", "body_file", NULL};
static const char *const breaker_keys[] = {"failures", "cooldown", NULL};

static const char *const default_methods[] = {"GET"};
static const char *const default_skip[] = {"Set-Cookie"};

/* A list of strings (tokens when token is set) into a new array of borrowed pointers; a default
 * list when node is NULL. */
static int read_list(struct fallback *fb, const lintel_cfg *node, const char *what,
                     const char *const *defaults, size_t ndefaults, const char ***out, size_t *nout,
                     lintel_cfg_error *err)
{
    const struct lintel_host_api *h = fb->host;
    size_t n = node ? h->cfg_len(node) : ndefaults;
    if (node && h->cfg_type(node) != LINTEL_CFG_LIST) {
        h->cfg_error(err, node, "must be a list of %ss", what);
        return -1;
    }
    *out = calloc(n ? n : 1, sizeof(**out));
    if (!*out) {
        h->cfg_error(err, node, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = node ? h->cfg_str(h->cfg_at(node, i)) : defaults[i];
        if (!s || !lintel_is_token(s, strlen(s))) {
            h->cfg_error(err, h->cfg_at(node, i), "must be a %s", what);
            return -1;
        }
        (*out)[i] = s;
    }
    *nout = n;
    return 0;
}

static int read_bool(struct fallback *fb, const lintel_cfg *map, const char *key, bool *out,
                     lintel_cfg_error *err)
{
    const lintel_cfg *node = fb->host->cfg_get(map, key);
    int v = 0;
    if (node && fb->host->cfg_bool(node, &v) < 0) {
        fb->host->cfg_error(err, node, "must be true or false");
        return -1;
    }
    if (node)
        *out = v;
    return 0;
}

/* A size in [min, max] (out keeps its default when the key is absent). */
static int read_size(struct fallback *fb, const lintel_cfg *map, const char *key, uint64_t min,
                     uint64_t max, uint64_t *out, lintel_cfg_error *err)
{
    const lintel_cfg *node = fb->host->cfg_get(map, key);
    if (!node)
        return 0;
    if (fb->host->cfg_size(node, out) < 0 || *out < min || *out > max) {
        fb->host->cfg_error(err, node, "must be a size from %llu to %llu bytes",
                            (unsigned long long)min, (unsigned long long)max);
        return -1;
    }
    return 0;
}

static int read_duration(struct fallback *fb, const lintel_cfg *map, const char *key, bool positive,
                         uint64_t *out, lintel_cfg_error *err)
{
    const lintel_cfg *node = fb->host->cfg_get(map, key);
    if (!node)
        return 0;
    if (fb->host->cfg_duration_ms(node, out) < 0 || (positive && *out == 0) ||
        *out > (1ull << 40)) {
        fb->host->cfg_error(err, node,
                            positive ? "must be a positive duration" : "must be a duration");
        return -1;
    }
    return 0;
}

static int read_int(struct fallback *fb, const lintel_cfg *node, int64_t min, int64_t max,
                    const char *what, int64_t *out, lintel_cfg_error *err)
{
    if (fb->host->cfg_int(node, out) < 0 || *out < min || *out > max) {
        fb->host->cfg_error(err, node, "must be %s from %lld to %lld", what, (long long)min,
                            (long long)max);
        return -1;
    }
    return 0;
}

static int read_statuses(struct fallback *fb, const lintel_cfg *config, lintel_cfg_error *err)
{
    const struct lintel_host_api *h = fb->host;
    const lintel_cfg *list = config ? h->cfg_get(config, "statuses") : NULL;
    if (!list) {
        static const int defaults[] = {500, 502, 503, 504};
        for (size_t i = 0; i < 4; i++)
            fb->statuses[defaults[i] / 64] |= 1ull << (defaults[i] % 64);
        return 0;
    }
    if (h->cfg_type(list) != LINTEL_CFG_LIST) {
        h->cfg_error(err, list, "must be a list of statuses");
        return -1;
    }
    for (size_t i = 0; i < h->cfg_len(list); i++) {
        int64_t s;
        if (read_int(fb, h->cfg_at(list, i), 400, 599, "a status", &s, err) < 0)
            return -1;
        fb->statuses[s / 64] |= 1ull << (s % 64);
    }
    return 0;
}

static int read_key(struct fallback *fb, const lintel_cfg *node, lintel_cfg_error *err)
{
    const struct lintel_host_api *h = fb->host;
    if (!node)
        return 0;
    if (lintel_cfg_require_map(fb->host, node, key_keys, err) < 0)
        return -1;
    const lintel_cfg *args = h->cfg_get(node, "args"), *headers = h->cfg_get(node, "headers");
    if (args &&
        read_list(fb, args, "query argument name", NULL, 0, &fb->key_args, &fb->nkey_args, err) < 0)
        return -1;
    if (headers && read_list(fb, headers, "header name", NULL, 0, &fb->key_headers,
                             &fb->nkey_headers, err) < 0)
        return -1;
    return read_bool(fb, node, "consumer", &fb->key_consumer, err);
}

static int read_last_good(struct fallback *fb, const lintel_cfg *config, lintel_cfg_error *err)
{
    const struct lintel_host_api *h = fb->host;
    const lintel_cfg *node = config ? h->cfg_get(config, "last_good") : NULL;
    int on = 1;
    fb->max_body = DEFAULT_MAX_BODY;
    fb->max_bytes = DEFAULT_MAX_BYTES;
    fb->max_age_ms = DEFAULT_MAX_AGE_MS;
    fb->refresh_ms = DEFAULT_REFRESH_MS;
    uint64_t entries = DEFAULT_MAX_ENTRIES;
    if (node && h->cfg_type(node) == LINTEL_CFG_SCALAR) {
        if (h->cfg_bool(node, &on) < 0) {
            h->cfg_error(err, node, "must be true, false or a map");
            return -1;
        }
        node = NULL;
    }
    fb->last_good = on;
    if (!on)
        return 0;
    if (node && lintel_cfg_require_map(fb->host, node, last_good_keys, err) < 0)
        return -1;
    const lintel_cfg *n;
    if (node && (n = h->cfg_get(node, "max_entries"))) {
        int64_t v;
        if (read_int(fb, n, 1, MAX_ENTRIES_LIMIT, "a count", &v, err) < 0)
            return -1;
        entries = (uint64_t)v;
    }
    fb->max_entries = (size_t)entries;
    if (node && (read_size(fb, node, "max_body", 0, 1ull << 31, &fb->max_body, err) < 0 ||
                 read_size(fb, node, "max_bytes", 1024, 1ull << 40, &fb->max_bytes, err) < 0 ||
                 read_duration(fb, node, "max_age", true, &fb->max_age_ms, err) < 0 ||
                 read_duration(fb, node, "refresh", false, &fb->refresh_ms, err) < 0 ||
                 read_key(fb, h->cfg_get(node, "key"), err) < 0))
        return -1;
    if (fb->max_body > fb->max_bytes) {
        h->cfg_error(err, h->cfg_get(node, "max_body"), "must not exceed max_bytes");
        return -1;
    }
    if (read_list(fb, node ? h->cfg_get(node, "methods") : NULL, "method", default_methods, 1,
                  &fb->methods, &fb->nmethods, err) < 0 ||
        read_list(fb, node ? h->cfg_get(node, "skip_headers") : NULL, "header name", default_skip,
                  1, &fb->skip_headers, &fb->nskip_headers, err) < 0)
        return -1;
    if (fb->nmethods == 0) {
        h->cfg_error(err, h->cfg_get(node, "methods"), "must not be empty");
        return -1;
    }
    return 0;
}

/* Reads a whole file into *out (malloc'd) for static.body_file. */
static int read_file(struct fallback *fb, const lintel_cfg *node, const char *path, char **out,
                     size_t *len, lintel_cfg_error *err)
{
    const struct lintel_host_api *h = fb->host;
    FILE *f = fopen(path, "rb");
    if (!f) {
        h->cfg_error(err, node, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;
    for (;;) {
        if (n == cap) {
            if (cap >= MAX_STATIC_BODY) {
                h->cfg_error(err, node, "%s: larger than 64 MiB", path);
                goto done;
            }
            cap = cap ? cap * 2 : 4096;
            char *grown = realloc(buf, cap);
            if (!grown) {
                h->cfg_error(err, node, "out of memory");
                goto done;
            }
            buf = grown;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                h->cfg_error(err, node, "cannot read %s: %s", path, strerror(errno));
                goto done;
            }
            break;
        }
    }
    *out = buf;
    *len = n;
    buf = NULL;
    rc = 0;
done:
    free(buf);
    fclose(f);
    return rc;
}

static bool value_ok(const char *v)
{
    for (; *v; v++)
        if (*v == '\r' || *v == '\n')
            return false;
    return true;
}

static int read_static_headers(struct fallback *fb, const lintel_cfg *map, lintel_cfg_error *err)
{
    const struct lintel_host_api *h = fb->host;
    if (h->cfg_type(map) != LINTEL_CFG_MAP) {
        h->cfg_error(err, map, "must be a map of header names to values");
        return -1;
    }
    size_t n = h->cfg_len(map);
    fb->static_headers = calloc(n ? n : 1, sizeof(*fb->static_headers));
    if (!fb->static_headers) {
        h->cfg_error(err, map, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = h->cfg_key_at(map, i);
        const lintel_cfg *vnode = h->cfg_at(map, i);
        const char *value = h->cfg_str(vnode);
        if (!lintel_is_token(name, strlen(name))) {
            h->cfg_error(err, vnode, "not a header name");
            return -1;
        }
        if (!value || !value_ok(value)) {
            h->cfg_error(err, vnode, "must be a single-line string");
            return -1;
        }
        if (strcasecmp(name, "Content-Length") == 0 || strcasecmp(name, "Transfer-Encoding") == 0) {
            h->cfg_error(err, vnode, "set by lintel from the body");
            return -1;
        }
        if (strcasecmp(name, "Content-Type") == 0)
            fb->static_type = value;
        else
            fb->static_headers[fb->nstatic_headers++] = (struct fb_header){name, value};
    }
    return 0;
}

static int read_static(struct fallback *fb, const lintel_cfg *config, lintel_cfg_error *err)
{
    const struct lintel_host_api *h = fb->host;
    const lintel_cfg *node = config ? h->cfg_get(config, "static") : NULL;
    if (!node)
        return 0;
    if (lintel_cfg_require_map(fb->host, node, static_keys, err) < 0)
        return -1;
    fb->has_static = true;
    fb->static_status = 200;
    const lintel_cfg *n;
    int64_t status;
    if ((n = h->cfg_get(node, "status"))) {
        if (read_int(fb, n, 200, 599, "a status", &status, err) < 0)
            return -1;
        fb->static_status = (int)status;
    }
    if ((n = h->cfg_get(node, "headers")) && read_static_headers(fb, n, err) < 0)
        return -1;
    const lintel_cfg *body = h->cfg_get(node, "body"), *file = h->cfg_get(node, "body_file");
    if (body && file) {
        h->cfg_error(err, file, "body and body_file exclude each other");
        return -1;
    }
    if (body) {
        const char *s = h->cfg_str(body);
        if (!s) {
            h->cfg_error(err, body, "must be a string");
            return -1;
        }
        fb->static_body_len = strlen(s);
        fb->static_body = strdup(s);
        if (!fb->static_body) {
            h->cfg_error(err, body, "out of memory");
            return -1;
        }
    } else if (file) {
        const char *path = h->cfg_str(file);
        if (!path || !*path) {
            h->cfg_error(err, file, "must be a file path");
            return -1;
        }
        if (read_file(fb, file, path, &fb->static_body, &fb->static_body_len, err) < 0)
            return -1;
    }
    return 0;
}

static int read_breaker(struct fallback *fb, const lintel_cfg *config, lintel_cfg_error *err)
{
    const struct lintel_host_api *h = fb->host;
    const lintel_cfg *node = config ? h->cfg_get(config, "breaker") : NULL;
    if (!node)
        return 0;
    if (lintel_cfg_require_map(fb->host, node, breaker_keys, err) < 0)
        return -1;
    struct fb_breaker *b = &fb->breaker;
    b->enabled = true;
    b->failures = DEFAULT_FAILURES;
    b->cooldown_ms = DEFAULT_COOLDOWN_MS;
    const lintel_cfg *n = h->cfg_get(node, "failures");
    int64_t v;
    if (n) {
        if (read_int(fb, n, 1, 1000000, "a count", &v, err) < 0)
            return -1;
        b->failures = (uint32_t)v;
    }
    return read_duration(fb, node, "cooldown", true, &b->cooldown_ms, err);
}

static int make_stores(struct fallback *fb, const lintel_cfg *config, lintel_cfg_error *err)
{
    if (!fb->last_good)
        return 0;
    unsigned n = fb->host->worker_count();
    fb->stores = aligned_alloc(64, sizeof(*fb->stores) * (n ? n : 1));
    if (!fb->stores)
        goto oom;
    for (fb->nstores = 0; fb->nstores < n; fb->nstores++)
        if (fb_store_init(&fb->stores[fb->nstores], fb->max_entries, fb->max_bytes) < 0)
            goto oom;
    return 0;
oom:
    fb->host->cfg_error(err, config, "out of memory");
    return -1;
}

int fb_config_parse(struct fallback *fb, const lintel_cfg *config, lintel_cfg_error *err)
{
    const struct lintel_host_api *h = fb->host;
    if ((config && lintel_cfg_require_map(h, config, top_keys, err) < 0) ||
        read_statuses(fb, config, err) < 0 || read_last_good(fb, config, err) < 0 ||
        read_static(fb, config, err) < 0 || read_breaker(fb, config, err) < 0 ||
        make_stores(fb, config, err) < 0) {
        fb_config_free(fb);
        return -1;
    }
    return 0;
}

void fb_config_free(struct fallback *fb)
{
    for (unsigned i = 0; i < fb->nstores; i++)
        fb_store_free(&fb->stores[i]);
    free(fb->stores);
    free(fb->methods);
    free(fb->key_args);
    free(fb->key_headers);
    free(fb->skip_headers);
    free(fb->static_headers);
    free(fb->static_body);
    fb->stores = NULL;
    fb->nstores = 0;
    fb->methods = fb->key_args = fb->key_headers = fb->skip_headers = NULL;
    fb->static_headers = NULL;
    fb->static_body = NULL;
}
