/* mirror configuration: reads and checks the YAML once, in create (main thread), into what the
 * handler uses as it is (docs/plugins/mirror.md lists the keys). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lintel/config.h>
#include <lintel/text.h>

#include "mirror-internal.h"

#define MAX_TIMEOUT_MS 60000u
#define MAX_INFLIGHT 1000000
#define MAX_BODY (16u * 1024u * 1024u)

static const char *const top_keys[] = {"to",     "path",    "sample",       "methods", "body",
                                       "header", "timeout", "max_inflight", NULL};
static const char *const to_keys[] = {"upstream", "url", NULL};
static const char *const path_keys[] = {"prefix", "replace", NULL};
static const char *const replace_keys[] = {"from", "to", NULL};
static const char *const body_keys[] = {"max", NULL};
static const char *const header_keys[] = {"name", "value", NULL};

/* Characters a URL path (or authority) may hold as written: visible ASCII but '?', '#' and
 * '\'. Percent-encoded bytes pass as '%' and hex digits. */
static int is_url_char(unsigned char ch)
{
    return ch > 0x20 && ch < 0x7f && ch != '?' && ch != '#' && ch != '\\';
}

static int all_url_chars(const char *s)
{
    for (; *s; s++)
        if (!is_url_char((unsigned char)*s))
            return 0;
    return 1;
}

/* A path piece ("/shadow", "/api/"): starts with '/', URL characters only. Returned without a
 * trailing '/', so "/" becomes "" (borrowed from the node). */
static int read_path_piece(struct mirror *m, const lintel_cfg *node, struct mirror_str *out,
                           lintel_cfg_error *err)
{
    const char *s = m->host->cfg_str(node);
    if (!s || s[0] != '/' || !all_url_chars(s)) {
        m->host->cfg_error(err, node, "must be a path starting with '/', without '?' or '#'");
        return -1;
    }
    size_t len = strlen(s);
    while (len > 0 && s[len - 1] == '/')
        len--;
    *out = (struct mirror_str){s, len};
    return 0;
}

static int read_to(struct mirror *m, const lintel_cfg *config, lintel_cfg_error *err)
{
    const struct lintel_host_api *h = m->host;
    const lintel_cfg *to = h->cfg_get(config, "to");
    if (!to) {
        h->cfg_error(err, config, "to: required");
        return -1;
    }
    if (lintel_cfg_require_map(m->host, to, to_keys, err) < 0)
        return -1;
    const lintel_cfg *up = h->cfg_get(to, "upstream"), *url = h->cfg_get(to, "url");
    if (!up == !url) {
        h->cfg_error(err, to, "give exactly one of upstream or url");
        return -1;
    }
    const char *s = h->cfg_str(up ? up : url);
    char buf[1024];
    if (up) {
        if (!s || !*s ||
            strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789._-") != strlen(s)) {
            h->cfg_error(err, up, "must be an upstream name (letters, digits, '.', '_', '-')");
            return -1;
        }
        if (!h->upstream_exists(m->self, s)) {
            h->cfg_error(err, up, "no upstream named \"%s\" in this configuration", s);
            return -1;
        }
        snprintf(buf, sizeof(buf), "upstream://%s", s);
    } else {
        size_t scheme = !s                                   ? 0
                        : strncasecmp(s, "http://", 7) == 0  ? 7
                        : strncasecmp(s, "https://", 8) == 0 ? 8
                                                             : 0;
        if (!scheme || !s[scheme] || s[scheme] == '/' || !all_url_chars(s)) {
            h->cfg_error(err, url,
                         "must be an http:// or https:// URL with a host, without '?' or '#'");
            return -1;
        }
        snprintf(buf, sizeof(buf), "%s", s);
    }
    size_t len = strlen(buf);
    if (len >= sizeof(buf) - 1) {
        h->cfg_error(err, up ? up : url, "too long");
        return -1;
    }
    while (buf[len - 1] == '/')
        len--;
    buf[len] = '\0';
    m->base = strdup(buf);
    m->base_len = len;
    if (!m->base) {
        h->cfg_error(err, to, "out of memory");
        return -1;
    }
    return 0;
}

static int read_path(struct mirror *m, const lintel_cfg *config, lintel_cfg_error *err)
{
    const struct lintel_host_api *h = m->host;
    const lintel_cfg *path = h->cfg_get(config, "path"), *node;
    m->prefix = m->from = m->to = (struct mirror_str){"", 0};
    if (!path)
        return 0;
    if (lintel_cfg_require_map(m->host, path, path_keys, err) < 0)
        return -1;
    if ((node = h->cfg_get(path, "prefix")) && read_path_piece(m, node, &m->prefix, err) < 0)
        return -1;
    const lintel_cfg *replace = h->cfg_get(path, "replace");
    if (!replace)
        return 0;
    if (lintel_cfg_require_map(m->host, replace, replace_keys, err) < 0)
        return -1;
    const lintel_cfg *from = h->cfg_get(replace, "from"), *to = h->cfg_get(replace, "to");
    if (!from || !to) {
        h->cfg_error(err, replace, from ? "to: required" : "from: required");
        return -1;
    }
    if (read_path_piece(m, from, &m->from, err) < 0 || read_path_piece(m, to, &m->to, err) < 0)
        return -1;
    m->has_replace = 1;
    return 0;
}

static int read_sample(struct mirror *m, const lintel_cfg *config, lintel_cfg_error *err)
{
    const lintel_cfg *node = m->host->cfg_get(config, "sample");
    m->sample_ppm = MIRROR_SAMPLE_SCALE;
    if (!node)
        return 0;
    const char *s = m->host->cfg_str(node);
    char *end = NULL;
    double v = s && *s ? strtod(s, &end) : -1.0;
    if (!end || *end || !(v >= 0.0 && v <= 1.0)) { /* NaN fails the comparison too */
        m->host->cfg_error(err, node, "must be a number from 0 to 1");
        return -1;
    }
    m->sample_ppm = (uint32_t)(v * MIRROR_SAMPLE_SCALE + 0.5);
    return 0;
}

static int read_methods(struct mirror *m, const lintel_cfg *config, lintel_cfg_error *err)
{
    const struct lintel_host_api *h = m->host;
    const lintel_cfg *list = h->cfg_get(config, "methods");
    if (!list)
        return 0;
    size_t n = h->cfg_len(list);
    if (h->cfg_type(list) != LINTEL_CFG_LIST || n == 0) {
        h->cfg_error(err, list, "must be a non-empty list of methods");
        return -1;
    }
    m->methods = calloc(n, sizeof(*m->methods));
    if (!m->methods) {
        h->cfg_error(err, list, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const lintel_cfg *item = h->cfg_at(list, i);
        const char *s = h->cfg_str(item);
        if (!s || !lintel_is_token(s, strlen(s))) {
            h->cfg_error(err, item, "must be a method (GET, POST, ...)");
            return -1;
        }
        m->methods[m->nmethods++] = (struct mirror_str){s, strlen(s)};
    }
    return 0;
}

static int read_body(struct mirror *m, const lintel_cfg *config, lintel_cfg_error *err)
{
    const struct lintel_host_api *h = m->host;
    const lintel_cfg *body = h->cfg_get(config, "body"), *max;
    m->with_body = 1;
    m->body_max = MIRROR_DEFAULT_BODY_MAX;
    if (!body)
        return 0;
    if (h->cfg_type(body) == LINTEL_CFG_SCALAR) {
        if (h->cfg_bool(body, &m->with_body) < 0) {
            h->cfg_error(err, body, "must be true, false or { max: SIZE }");
            return -1;
        }
        return 0;
    }
    if (lintel_cfg_require_map(m->host, body, body_keys, err) < 0)
        return -1;
    if ((max = h->cfg_get(body, "max")) &&
        (h->cfg_size(max, &m->body_max) < 0 || m->body_max == 0 || m->body_max > MAX_BODY)) {
        h->cfg_error(err, max, "must be a size from 1 to 16m");
        return -1;
    }
    return 0;
}

static int read_header(struct mirror *m, const lintel_cfg *config, lintel_cfg_error *err)
{
    const struct lintel_host_api *h = m->host;
    const lintel_cfg *header = h->cfg_get(config, "header"), *node;
    const char *name = "X-Mirror", *value = "1";
    if (header) {
        if (lintel_cfg_require_map(m->host, header, header_keys, err) < 0)
            return -1;
        if ((node = h->cfg_get(header, "name")) &&
            (!(name = h->cfg_str(node)) || !lintel_is_token(name, strlen(name)))) {
            h->cfg_error(err, node, "must be a header name");
            return -1;
        }
        if ((node = h->cfg_get(header, "value"))) {
            value = h->cfg_str(node);
            for (const char *p = value; p && *p; p++) {
                if ((unsigned char)*p < 0x20 && *p != '\t') {
                    value = NULL;
                    break;
                }
            }
            if (!value || !*value) {
                h->cfg_error(err, node, "must be a non-empty header value");
                return -1;
            }
        }
    }
    size_t name_len = strlen(name), len = name_len + 2 + strlen(value) + 1;
    m->header_line = malloc(len);
    if (!m->header_line) {
        h->cfg_error(err, config, "out of memory");
        return -1;
    }
    snprintf(m->header_line, len, "%s: %s", name, value);
    m->header_name = (struct mirror_str){m->header_line, name_len};
    return 0;
}

static int read_limits(struct mirror *m, const lintel_cfg *config, lintel_cfg_error *err)
{
    const struct lintel_host_api *h = m->host;
    const lintel_cfg *node;
    m->timeout_ms = MIRROR_DEFAULT_TIMEOUT_MS;
    m->max_inflight = MIRROR_DEFAULT_MAX_INFLIGHT;
    if ((node = h->cfg_get(config, "timeout")) &&
        (h->cfg_duration_ms(node, &m->timeout_ms) < 0 || m->timeout_ms == 0 ||
         m->timeout_ms > MAX_TIMEOUT_MS)) {
        h->cfg_error(err, node, "must be a duration from 1ms to 60s");
        return -1;
    }
    int64_t n;
    if ((node = h->cfg_get(config, "max_inflight"))) {
        if (h->cfg_int(node, &n) < 0 || n < 1 || n > MAX_INFLIGHT) {
            h->cfg_error(err, node, "must be an integer from 1 to 1000000");
            return -1;
        }
        m->max_inflight = (unsigned)n;
    }
    return 0;
}

int mirror_config_parse(struct mirror *m, const lintel_cfg *config, lintel_cfg_error *err)
{
    const struct lintel_host_api *h = m->host;
    if (lintel_cfg_require_config(h, config, top_keys, err) < 0 || read_to(m, config, err) < 0 ||
        read_path(m, config, err) < 0 || read_sample(m, config, err) < 0 ||
        read_methods(m, config, err) < 0 || read_body(m, config, err) < 0 ||
        read_header(m, config, err) < 0 || read_limits(m, config, err) < 0) {
        mirror_config_free(m);
        return -1;
    }
    return 0;
}

void mirror_config_free(struct mirror *m)
{
    free(m->base);
    free(m->methods);
    free(m->header_line);
    m->base = m->header_line = NULL;
    m->methods = NULL;
    m->nmethods = 0;
}
