/* logging: the instance's `config:` map, read and checked once in create (main thread). Errors
 * are short phrases at the offending node; the host adds file, line, column and key path. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lintel/config.h>
#include <lintel/text.h>

#include "logging-internal.h"

struct parse {
    const struct lintel_host_api *host;
    const lintel_instance *self;
    lintel_cfg_error *err;
};

static const char *const top_keys[] = {"format",          "template", "escape",
                                       "request_headers", "sample",   "sample_by",
                                       "max_record",      "sink",     NULL};
static const char *const stdout_keys[] = {"type", "queue_size", "flush_interval", NULL};
static const char *const file_keys[] = {"type", "path", "queue_size", "flush_interval", NULL};
static const char *const http_keys[] = {"type",           "url",     "headers", "batch_size",
                                        "queue_size",     "timeout", "retries", "retry_backoff",
                                        "flush_interval", NULL};

/* The index of node's text in names, or -1 after reporting `phrase`. */
static int one_of(struct parse *ps, const lintel_cfg *node, const char *const *names,
                  const char *phrase)
{
    const char *s = ps->host->cfg_str(node);
    for (int i = 0; s && names[i]; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    ps->host->cfg_error(ps->err, node, "%s", phrase);
    return -1;
}

/* Optional size in [lo, hi]; *out keeps its default when absent. */
static int size_in(struct parse *ps, const lintel_cfg *map, const char *key, uint64_t lo,
                   uint64_t hi, const char *phrase, size_t *out)
{
    const lintel_cfg *n = ps->host->cfg_get(map, key);
    uint64_t v;
    if (!n)
        return 0;
    if (ps->host->cfg_size(n, &v) < 0 || v < lo || v > hi) {
        ps->host->cfg_error(ps->err, n, "%s", phrase);
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

static int duration_in(struct parse *ps, const lintel_cfg *map, const char *key, uint64_t lo,
                       uint64_t hi, const char *phrase, uint64_t *out)
{
    const lintel_cfg *n = ps->host->cfg_get(map, key);
    uint64_t v;
    if (!n)
        return 0;
    if (ps->host->cfg_duration_ms(n, &v) < 0 || v < lo || v > hi) {
        ps->host->cfg_error(ps->err, n, "%s", phrase);
        return -1;
    }
    *out = v;
    return 0;
}

static int int_in(struct parse *ps, const lintel_cfg *map, const char *key, int64_t lo, int64_t hi,
                  const char *phrase, int64_t *out)
{
    const lintel_cfg *n = ps->host->cfg_get(map, key);
    int64_t v;
    if (!n)
        return 0;
    if (ps->host->cfg_int(n, &v) < 0 || v < lo || v > hi) {
        ps->host->cfg_error(ps->err, n, "%s", phrase);
        return -1;
    }
    *out = v;
    return 0;
}

/* ---- record format ------------------------------------------------------------------------- */

static int parse_format(struct parse *ps, const lintel_cfg *config, struct lg_config *c)
{
    const struct lintel_host_api *h = ps->host;
    static const char *const formats[] = {"json", "template", NULL};
    const lintel_cfg *fmt = h->cfg_get(config, "format"), *tmpl = h->cfg_get(config, "template");
    if (fmt) {
        int f = one_of(ps, fmt, formats, "must be json or template");
        if (f < 0)
            return -1;
        c->format = (enum lg_format)f;
    } else if (tmpl)
        c->format = LG_FORMAT_TEMPLATE;
    if (c->format == LG_FORMAT_TEMPLATE) {
        if (!tmpl) {
            h->cfg_error(ps->err, config, "template: required with format: template");
            return -1;
        }
        const char *text = h->cfg_str(tmpl);
        char why[128];
        if (!text) {
            h->cfg_error(ps->err, tmpl, "must be a string");
            return -1;
        }
        if (lg_template_compile(text, &c->tmpl, why, sizeof(why)) < 0) {
            h->cfg_error(ps->err, tmpl, "%s", why);
            return -1;
        }
    } else if (tmpl) {
        h->cfg_error(ps->err, tmpl, "only with format: template");
        return -1;
    }
    const lintel_cfg *esc = h->cfg_get(config, "escape");
    if (esc) {
        static const char *const escapes[] = {"default", "json", NULL};
        if (c->format != LG_FORMAT_TEMPLATE) {
            h->cfg_error(ps->err, esc, "only with format: template");
            return -1;
        }
        int e = one_of(ps, esc, escapes, "must be default or json");
        if (e < 0)
            return -1;
        c->escape = (enum lg_escape)e;
    }

    const lintel_cfg *hdrs = h->cfg_get(config, "request_headers");
    if (hdrs) {
        size_t n = h->cfg_len(hdrs);
        if (h->cfg_type(hdrs) != LINTEL_CFG_LIST) {
            h->cfg_error(ps->err, hdrs, "must be a list of header names");
            return -1;
        }
        c->req_headers = calloc(n ? n : 1, sizeof(*c->req_headers));
        c->req_header_keys = calloc(n ? n : 1, sizeof(*c->req_header_keys));
        if (!c->req_headers || !c->req_header_keys) {
            h->cfg_error(ps->err, hdrs, "out of memory");
            return -1;
        }
        for (; c->nreq_headers < n; c->nreq_headers++) {
            const lintel_cfg *item = h->cfg_at(hdrs, c->nreq_headers);
            const char *name = h->cfg_str(item);
            if (!name || !lintel_is_token(name, strlen(name))) {
                h->cfg_error(ps->err, item, "must be a header name");
                return -1;
            }
            char *key = strdup(name);
            if (!key) {
                h->cfg_error(ps->err, item, "out of memory");
                return -1;
            }
            for (char *k = key; *k; k++)
                *k = (char)tolower((unsigned char)*k);
            c->req_headers[c->nreq_headers] = name;
            c->req_header_keys[c->nreq_headers] = key;
        }
    }
    return size_in(ps, config, "max_record", 1024, 1024 * 1024, "must be a size from 1k to 1m",
                   &c->max_record);
}

static int parse_sample(struct parse *ps, const lintel_cfg *config, struct lg_config *c)
{
    const struct lintel_host_api *h = ps->host;
    const lintel_cfg *n = h->cfg_get(config, "sample");
    if (n) {
        const char *s = h->cfg_str(n);
        char *end = NULL;
        double v = s ? strtod(s, &end) : -1;
        if (!s || end == s || *end || !(v >= 0 && v <= 1)) {
            h->cfg_error(ps->err, n, "must be a number from 0 to 1");
            return -1;
        }
        c->sample = v;
    }
    /* 2^64 * sample, saturated: a record is kept when its hash is below. */
    double t = c->sample * 18446744073709551616.0;
    c->sample_threshold = t >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)t;
    const lintel_cfg *by = h->cfg_get(config, "sample_by");
    if (by) {
        static const char *const ways[] = {"request_id", "random", NULL};
        int w = one_of(ps, by, ways, "must be request_id or random");
        if (w < 0)
            return -1;
        c->sample_by = (enum lg_sample_by)w;
    }
    return 0;
}

/* ---- sink ---------------------------------------------------------------------------------- */

/* `headers` of the http sink, after Content-Type, as "Name: value" lines. */
static int parse_http_headers(struct parse *ps, const lintel_cfg *sink, struct lg_config *c)
{
    const struct lintel_host_api *h = ps->host;
    const lintel_cfg *hdrs = h->cfg_get(sink, "headers");
    if (hdrs && h->cfg_type(hdrs) != LINTEL_CFG_MAP) {
        h->cfg_error(ps->err, hdrs, "must be a map of header names to values");
        return -1;
    }
    size_t n = hdrs ? h->cfg_len(hdrs) : 0, used = 0;
    int own_type = 0;
    c->http_headers = calloc(n + 2, sizeof(char *));
    if (!c->http_headers)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        const char *name = h->cfg_key_at(hdrs, i);
        const lintel_cfg *vnode = h->cfg_at(hdrs, i);
        char value[4096];
        if (!lintel_is_token(name, strlen(name))) {
            h->cfg_error(ps->err, vnode, "must be keyed by a header name");
            return -1;
        }
        /* env:NAME and file:PATH keep tokens out of the YAML. */
        long len = h->secret(ps->self, vnode, value, sizeof(value));
        if (len < 0 || (size_t)len >= sizeof(value)) {
            h->cfg_error(ps->err, vnode,
                         len < 0 ? "cannot be read (a string, env:NAME or file:PATH)"
                                 : "is longer than 4k");
            return -1;
        }
        if (memchr(value, '\r', (size_t)len) || memchr(value, '\n', (size_t)len) ||
            memchr(value, '\0', (size_t)len)) {
            h->cfg_error(ps->err, vnode, "must not contain CR, LF or NUL");
            return -1;
        }
        size_t sz = strlen(name) + 2 + (size_t)len + 1;
        char *line = malloc(sz);
        if (!line)
            goto oom;
        snprintf(line, sz, "%s: %.*s", name, (int)len, value);
        c->http_headers[used++] = line;
        own_type = own_type || strcasecmp(name, "Content-Type") == 0;
    }
    if (!own_type) {
        const char *ct = c->format == LG_FORMAT_JSON ? "Content-Type: application/x-ndjson"
                                                     : "Content-Type: text/plain; charset=utf-8";
        if (!(c->http_headers[used++] = strdup(ct)))
            goto oom;
    }
    return 0;
oom:
    h->cfg_error(ps->err, hdrs ? hdrs : sink, "out of memory");
    return -1;
}

static int parse_sink(struct parse *ps, const lintel_cfg *config, struct lg_config *c)
{
    const struct lintel_host_api *h = ps->host;
    static const char *const types[] = {"stdout", "file", "http", NULL};
    static const char *const *const keys[] = {stdout_keys, file_keys, http_keys};
    const char *phrase = "must be stdout, file or http";
    const lintel_cfg *sink = h->cfg_get(config, "sink");
    if (!sink)
        return 0;
    if (h->cfg_type(sink) == LINTEL_CFG_SCALAR) { /* sink: stdout */
        int t = one_of(ps, sink, types, phrase);
        if (t < 0)
            return -1;
        c->sink = (enum lg_sink_type)t;
        if (c->sink != LG_SINK_STDOUT) {
            h->cfg_error(ps->err, sink, "needs a map: { type: %s, %s: ... }", types[t],
                         t == LG_SINK_FILE ? "path" : "url");
            return -1;
        }
        return 0;
    }
    if (h->cfg_type(sink) != LINTEL_CFG_MAP) {
        h->cfg_error(ps->err, sink, "must be stdout or a map with a type");
        return -1;
    }
    const lintel_cfg *type = h->cfg_get(sink, "type");
    if (!type) {
        h->cfg_error(ps->err, sink, "type: required");
        return -1;
    }
    int t = one_of(ps, type, types, phrase);
    if (t < 0 || lintel_cfg_check_keys(ps->host, sink, keys[t], ps->err) < 0)
        return -1;
    c->sink = (enum lg_sink_type)t;

    char phrase_q[64];
    snprintf(phrase_q, sizeof(phrase_q), "must be a size from max_record (%zu) to 1g",
             c->max_record);
    if (size_in(ps, sink, "queue_size", c->max_record, 1ull << 30, phrase_q, &c->queue_size) < 0 ||
        duration_in(ps, sink, "flush_interval", 1, 60000, "must be a duration from 1ms to 60s",
                    &c->flush_ms) < 0)
        return -1;
    if (c->queue_size < c->max_record) { /* the default queue, a larger max_record */
        h->cfg_error(ps->err, sink, "queue_size: must be at least max_record (%zu)", c->max_record);
        return -1;
    }

    if (c->sink == LG_SINK_FILE) {
        const lintel_cfg *path = h->cfg_get(sink, "path");
        c->path = h->cfg_str(path);
        if (!path || !c->path || !*c->path) {
            h->cfg_error(ps->err, path ? path : sink,
                         path ? "must be a file path" : "path: required");
            return -1;
        }
    }
    if (c->sink != LG_SINK_HTTP)
        return 0;

    const lintel_cfg *url = h->cfg_get(sink, "url");
    c->url = h->cfg_str(url);
    if (!url || !c->url ||
        (strncmp(c->url, "http://", 7) != 0 && strncmp(c->url, "https://", 8) != 0)) {
        h->cfg_error(ps->err, url ? url : sink,
                     url ? "must be an http:// or https:// URL" : "url: required");
        return -1;
    }
    int64_t batch = (int64_t)c->batch_size, retries = c->retries;
    if (int_in(ps, sink, "batch_size", 1, 100000, "must be an integer from 1 to 100000", &batch) <
            0 ||
        int_in(ps, sink, "retries", 0, 100, "must be an integer from 0 to 100", &retries) < 0 ||
        duration_in(ps, sink, "timeout", 1, 600000, "must be a duration from 1ms to 10m",
                    &c->timeout_ms) < 0 ||
        duration_in(ps, sink, "retry_backoff", 1, 60000, "must be a duration from 1ms to 60s",
                    &c->retry_backoff_ms) < 0)
        return -1;
    c->batch_size = (size_t)batch;
    c->retries = (unsigned)retries;
    return parse_http_headers(ps, sink, c);
}

/* ---- the whole map ------------------------------------------------------------------------- */

int lg_config_parse(const struct lintel_host_api *host, const lintel_instance *self,
                    const lintel_cfg *config, lintel_cfg_error *err, struct lg_config *c)
{
    struct parse ps = {host, self, err};
    *c = (struct lg_config){
        .format = LG_FORMAT_JSON,
        .escape = LG_ESCAPE_DEFAULT,
        .sample = 1,
        .sample_by = LG_SAMPLE_REQUEST_ID,
        .max_record = 16 * 1024,
        .sink = LG_SINK_STDOUT,
        .queue_size = 1024 * 1024,
        .flush_ms = 1000,
        .batch_size = 100,
        .timeout_ms = 5000,
        .retries = 3,
        .retry_backoff_ms = 1000,
    };
    if (config && host->cfg_type(config) != LINTEL_CFG_MAP) {
        host->cfg_error(err, config, "must be a map");
        return -1;
    }
    if (config && (lintel_cfg_check_keys(ps.host, config, top_keys, ps.err) < 0 ||
                   parse_format(&ps, config, c) < 0 || parse_sample(&ps, config, c) < 0 ||
                   parse_sink(&ps, config, c) < 0)) {
        lg_config_free(c);
        return -1;
    }
    return 0;
}

void lg_config_free(struct lg_config *c)
{
    lg_template_free(&c->tmpl);
    for (size_t i = 0; c->req_header_keys && i < c->nreq_headers; i++)
        free(c->req_header_keys[i]);
    free(c->req_header_keys);
    free(c->req_headers);
    for (size_t i = 0; c->http_headers && c->http_headers[i]; i++)
        free(c->http_headers[i]);
    free(c->http_headers);
    *c = (struct lg_config){0};
}
