/* mirror: sends a copy of the requests of a route to another service (a shadow), and forgets it.
 *
 *     plugins: [{ name: mirror, config: { to: { upstream: shadow }, sample: 0.1 } }]
 *
 * BALANCE (last, priority -100: after the plugins that answer or re-aim the request) decides
 * whether this request is copied (method, sample, the worker's in-flight cap, the body) and
 * builds the copy in the request's arena. LOG, once the response is queued, starts it with
 * worker_http_call: a call tied to the worker, not to the request, so nothing of the copy (its
 * connection, libcurl's work, its answer) happens while the client waits, and the request's end
 * does not cancel it. BALANCE returns CONTINUE in every case but one: a body to copy that is not
 * read yet, where req_body_buffer asks for a PAUSE until it is in (the body is then sent
 * upstream from that buffer). No handler returns ERROR: a copy that cannot be made is counted,
 * not felt by the client.
 *
 * The configuration is read once in mirror_config.c. Each worker counts its own copies in
 * flight in its own slot of m->workers; the copy's answer comes back on that worker. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lintel/hash.h>
#include <lintel/text.h>

#include "mirror-internal.h"

#define MIRROR_PRIORITY (-100)

/* ---- instances (create, destroy: main thread; worker_init, worker_fini: each worker) -------- */

static int create(const struct lintel_host_api *host, lintel_instance *self,
                  const lintel_cfg *config, lintel_cfg_error *err, void **instance)
{
    struct mirror *m = calloc(1, sizeof(*m));
    if (!m) {
        host->cfg_error(err, config, "out of memory");
        return -1;
    }
    m->host = host;
    m->self = self;
    if (mirror_config_parse(m, config, err) < 0) {
        free(m);
        return -1;
    }
    m->nworkers = host->worker_count();
    m->workers = m->nworkers ? aligned_alloc(_Alignof(struct mirror_worker),
                                             m->nworkers * sizeof(*m->workers))
                             : NULL;
    if (!m->workers) {
        host->cfg_error(err, config, "out of memory");
        mirror_config_free(m);
        free(m);
        return -1;
    }
    for (unsigned w = 0; w < m->nworkers; w++)
        m->workers[w] = (struct mirror_worker){.m = m};
    *instance = m;
    return 0;
}

static void destroy(void *instance)
{
    struct mirror *m = instance;
    free(m->workers);
    mirror_config_free(m);
    free(m);
}

/* The host has cancelled this instance's copies on the worker (their callbacks never run). */
static void worker_fini(void *instance, unsigned worker)
{
    struct mirror *m = instance;
    if (worker < m->nworkers)
        m->workers[worker].inflight = 0;
}

/* ---- which requests are copied ------------------------------------------------------------ */

static int method_selected(const struct mirror *m, struct lintel_str method)
{
    if (!m->methods)
        return 1;
    for (size_t i = 0; i < m->nmethods; i++)
        if (m->methods[i].len == method.len && memcmp(m->methods[i].s, method.ptr, method.len) == 0)
            return 1;
    return 0;
}

/* FNV-1a 64 of the request id, then MurmurHash3's fmix64 so that ids differing in their last
 * characters only spread evenly; copied when the result mod 10^6 is under sample × 10^6. The
 * same request id is always copied or never (docs/plugins/mirror.md: tests can predict it). */
static int sampled(const struct mirror *m, struct lintel_str id)
{
    if (m->sample_ppm >= MIRROR_SAMPLE_SCALE)
        return 1;
    uint64_t h = lintel_mix64(lintel_fnv1a64(LINTEL_FNV1A64_OFFSET, id.ptr, id.len));
    return h % MIRROR_SAMPLE_SCALE < m->sample_ppm;
}

enum body_state {
    BODY_NONE,   /* no body, or an empty one */
    BODY_READY,  /* buffered (by this plugin or another), at most body_max */
    BODY_FITS,   /* Content-Length within body_max: req_body_buffer cannot answer 413 */
    BODY_CANNOT, /* chunked, larger than body_max, or a Content-Length we cannot read */
};

static enum body_state body_state(const struct mirror *m, lintel_req *r, struct lintel_str *out)
{
    const struct lintel_host_api *h = m->host;
    *out = h->req_body(r);
    if (out->ptr)
        return out->len == 0 ? BODY_NONE : out->len <= m->body_max ? BODY_READY : BODY_CANNOT;
    if (h->req_header(r, "Transfer-Encoding").ptr)
        return BODY_CANNOT; /* its length is unknown until it is all in: it could pass the cap */
    struct lintel_str cl = h->req_header(r, "Content-Length");
    if (!cl.ptr)
        return BODY_NONE;
    uint64_t n;
    if (!lintel_parse_length(cl.ptr, cl.len, m->body_max, &n))
        return BODY_CANNOT;
    return n == 0 ? BODY_NONE : BODY_FITS;
}

/* ---- the copy ----------------------------------------------------------------------------- */

/* Request headers that are not the copy's to send: hop-by-hop ones (RFC 9110 7.6.1), what the
 * HTTP client writes itself (Host, Content-Length, Expect), and what this plugin sets. */
static const char *const skipped_headers[] = {"Connection",
                                              "Keep-Alive",
                                              "Proxy-Connection",
                                              "TE",
                                              "Trailer",
                                              "Transfer-Encoding",
                                              "Upgrade",
                                              "Proxy-Authorization",
                                              "Host",
                                              "Content-Length",
                                              "Expect",
                                              "X-Request-Id",
                                              "X-Forwarded-Host",
                                              "X-Forwarded-Proto",
                                              NULL};

static int str_ieq(struct lintel_str a, const char *b, size_t blen)
{
    return a.len == blen && strncasecmp(a.ptr, b, blen) == 0;
}

/* Whether the comma-separated list v names token (case-insensitive). */
static int list_has(struct lintel_str v, struct lintel_str token)
{
    size_t i = 0;
    while (i < v.len) {
        while (i < v.len && (v.ptr[i] == ' ' || v.ptr[i] == '\t' || v.ptr[i] == ','))
            i++;
        size_t start = i;
        while (i < v.len && v.ptr[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v.ptr[end - 1] == ' ' || v.ptr[end - 1] == '\t'))
            end--;
        if (end > start && str_ieq(token, v.ptr + start, end - start))
            return 1;
    }
    return 0;
}

static int header_skipped(const struct mirror *m, lintel_req *r, struct lintel_str name,
                          int has_connection)
{
    for (size_t i = 0; skipped_headers[i]; i++)
        if (str_ieq(name, skipped_headers[i], strlen(skipped_headers[i])))
            return 1;
    if (str_ieq(name, m->header_name.s, m->header_name.len))
        return 1;
    if (!has_connection)
        return 0;
    /* Headers the client's Connection header names are hop-by-hop too. */
    struct lintel_str n, v;
    for (size_t i = 0; m->host->req_header_at(r, i, &n, &v) == 0; i++)
        if (str_ieq(n, "Connection", 10) && list_has(v, name))
            return 1;
    return 0;
}

/* Appends "name: value" (curl's "name;" for an empty value: "name:" would delete the header)
 * at *p, NUL-terminated, and returns the line. */
static const char *put_line(char **p, struct lintel_str name, struct lintel_str value)
{
    char *line = *p, *q = line;
    memcpy(q, name.ptr, name.len);
    q += name.len;
    if (value.len) {
        memcpy(q, ": ", 2);
        memcpy(q + 2, value.ptr, value.len);
        q += 2 + value.len;
    } else {
        *q++ = ';';
    }
    *q++ = '\0';
    *p = q;
    return line;
}

#define LIT(s) ((struct lintel_str){s, sizeof(s) - 1})

/* The copy's header lines in one arena block: the client's (less the skipped ones), then
 * X-Forwarded-For, X-Forwarded-Host, X-Request-Id and the mirror header. NULL when out of
 * memory. */
static const char *const *copy_headers(const struct mirror *m, lintel_req *r, int with_body)
{
    const struct lintel_host_api *h = m->host;
    struct lintel_str n, v;
    int has_connection = h->req_header(r, "Connection").ptr != NULL;
    int has_type = 0;
    size_t count = 0, bytes = 0;
    for (size_t i = 0; h->req_header_at(r, i, &n, &v) == 0; i++) {
        if (header_skipped(m, r, n, has_connection))
            continue;
        has_type |= str_ieq(n, "Content-Type", 12);
        count++;
        bytes += n.len + 2 + v.len + 1;
    }
    struct lintel_str ip = h->req_client_addr(r), host = h->req_header(r, "Host"),
                      id = h->req_id(r);
    bytes += sizeof("X-Forwarded-For: ") + ip.len + sizeof("X-Forwarded-Host: ") + host.len +
             sizeof("X-Request-Id: ") + id.len + sizeof("Content-Type:");
    count += 5; /* X-Forwarded-For, X-Forwarded-Host, X-Request-Id, Content-Type, the mark */
    const char **lines = h->alloc(r, (count + 1) * sizeof(*lines) + bytes);
    if (!lines)
        return NULL;
    char *p = (char *)(lines + count + 1);
    size_t k = 0;
    for (size_t i = 0; h->req_header_at(r, i, &n, &v) == 0; i++)
        if (!header_skipped(m, r, n, has_connection))
            lines[k++] = put_line(&p, n, v);
    if (ip.len)
        lines[k++] = put_line(&p, LIT("X-Forwarded-For"), ip);
    if (host.len)
        lines[k++] = put_line(&p, LIT("X-Forwarded-Host"), host);
    if (id.len)
        lines[k++] = put_line(&p, LIT("X-Request-Id"), id);
    if (with_body && !has_type) {
        strcpy(p, "Content-Type:"); /* no value: the HTTP client adds no form type of its own */
        lines[k++] = p;
    }
    lines[k++] = m->header_line;
    lines[k] = NULL;
    return lines;
}

/* Whether path starts with the segment(s) seg: "/api" starts "/api" and "/api/x", not "/apix". */
static int starts_with_segment(struct lintel_str path, struct mirror_str seg)
{
    return path.len >= seg.len && memcmp(path.ptr, seg.s, seg.len) == 0 &&
           (path.len == seg.len || path.ptr[seg.len] == '/');
}

/* base + prefix + path (its start replaced) + "?" query, NUL-terminated in the arena. */
static const char *copy_url(const struct mirror *m, lintel_req *r)
{
    const struct lintel_host_api *h = m->host;
    struct lintel_str path = h->req_path(r), query = h->req_query(r);
    struct mirror_str head = {"", 0};
    if (m->has_replace && starts_with_segment(path, m->from)) {
        head = m->to;
        path.ptr += m->from.len;
        path.len -= m->from.len;
    }
    size_t len = m->base_len + m->prefix.len + head.len + path.len + 2 + query.len + 1;
    char *url = h->alloc(r, len), *p = url;
    if (!url)
        return NULL;
    memcpy(p, m->base, m->base_len);
    p += m->base_len;
    memcpy(p, m->prefix.s, m->prefix.len);
    p += m->prefix.len;
    memcpy(p, head.s, head.len);
    p += head.len;
    memcpy(p, path.ptr, path.len);
    p += path.len;
    if (p == url + m->base_len)
        *p++ = '/'; /* everything was replaced away */
    if (query.len) {
        *p++ = '?';
        memcpy(p, query.ptr, query.len);
        p += query.len;
    }
    *p = '\0';
    return url;
}

/* The copy's answer (read and dropped by the host), on the worker that sent it. */
static void on_copy_done(void *arg, const struct lintel_http_response *resp)
{
    struct mirror_worker *slot = arg;
    slot->inflight--;
    if (resp->status == 0)
        slot->m->host->metric_add(slot->m->self, "failed", 1);
}

/* The whole copy, built in the request's arena from the request as it stands now (BALANCE):
 * method, URL, headers, and the body copied (the host's buffer may be gone by LOG). NULL when
 * out of memory. */
static struct lintel_http_request *build_copy(const struct mirror *m, lintel_req *r,
                                              struct lintel_str body)
{
    const struct lintel_host_api *h = m->host;
    struct lintel_str method = h->req_method(r);
    struct lintel_http_request *spec = h->alloc(r, sizeof(*spec) + method.len + 1 + body.len);
    const char *url = copy_url(m, r);
    const char *const *headers = copy_headers(m, r, body.len > 0);
    if (!spec || !url || !headers)
        return NULL;
    char *method_z = (char *)(spec + 1), *body_copy = method_z + method.len + 1;
    memcpy(method_z, method.ptr, method.len);
    method_z[method.len] = '\0';
    if (body.len)
        memcpy(body_copy, body.ptr, body.len);
    *spec = (struct lintel_http_request){
        .struct_size = sizeof(*spec),
        .method = method_z,
        .url = url,
        .headers = headers,
        .body = body.len ? body_copy : NULL,
        .body_len = body.len,
        .timeout_ms = m->timeout_ms,
    };
    return spec;
}

/* ---- the handlers (worker threads) -------------------------------------------------------- */

static enum lintel_result on_balance(lintel_req *r, void *instance)
{
    struct mirror *m = instance;
    const struct lintel_host_api *h = m->host;
    unsigned w = h->req_worker(r);
    if (w >= m->nworkers || !method_selected(m, h->req_method(r)) || !sampled(m, h->req_id(r)))
        return LINTEL_CONTINUE;
    /* Checked before the body is read (no wait for a copy that will not be sent), and again
     * when the copy is sent. */
    if (m->workers[w].inflight >= m->max_inflight) {
        h->metric_add(m->self, "dropped", 1);
        return LINTEL_CONTINUE;
    }
    struct lintel_str body = {"", 0};
    if (m->with_body) {
        switch (body_state(m, r, &body)) {
        case BODY_NONE:
            body = (struct lintel_str){"", 0};
            break;
        case BODY_READY:
            break;
        case BODY_FITS:
            switch (h->req_body_buffer(r, m->body_max)) {
            case 0:
                return LINTEL_PAUSE; /* the host runs this handler again with the body in */
            case 1:
                body = h->req_body(r);
                break;
            default:
                h->metric_add(m->self, "skipped_body", 1);
                return LINTEL_CONTINUE;
            }
            break;
        case BODY_CANNOT:
            h->metric_add(m->self, "skipped_body", 1);
            return LINTEL_CONTINUE;
        }
    }
    struct lintel_http_request *spec = build_copy(m, r, body);
    if (!spec || h->ctx_set(r, m->self, spec, NULL) < 0)
        h->metric_add(m->self, "failed", 1);
    return LINTEL_CONTINUE;
}

/* The response is complete and queued: the copy leaves now, so that starting it (a connection,
 * libcurl's work) never runs between the client's request and its response on this worker. */
static enum lintel_result on_log(lintel_req *r, void *instance)
{
    struct mirror *m = instance;
    const struct lintel_host_api *h = m->host;
    const struct lintel_http_request *spec = h->ctx_get(r, m->self);
    unsigned w = h->req_worker(r);
    if (!spec || w >= m->nworkers)
        return LINTEL_CONTINUE;
    struct mirror_worker *slot = &m->workers[w];
    if (slot->inflight >= m->max_inflight) {
        h->metric_add(m->self, "dropped", 1);
        return LINTEL_CONTINUE;
    }
    /* worker_http_call copies everything: the arena may go when this returns. */
    if (h->worker_http_call(m->self, spec, on_copy_done, slot) < 0) {
        h->metric_add(m->self, "failed", 1);
        return LINTEL_CONTINUE;
    }
    slot->inflight++;
    h->metric_add(m->self, "sent", 1);
    return LINTEL_CONTINUE;
}

/* One field per line, as in every plugin's descriptor. */
/* clang-format off */
LINTEL_PLUGIN_EXPORT const struct lintel_plugin lintel_plugin_v1 = {
    LINTEL_PLUGIN_INIT,
    .name = "mirror",
    .version = "1.0.0",
    .priority = MIRROR_PRIORITY,
    .create = create,
    .destroy = destroy,
    .worker_fini = worker_fini,
    .balance = on_balance,
    .log = on_log,
};
/* clang-format on */
