/* tp-probe: a configurable plugin for the plugin-host integration tests.
 *
 * Every phase it runs in appends "TAG:phase" to the request header X-Trace (so the origin sees
 * the order) and, on the way back, to the response header X-Trace-Resp. Config:
 *   tag: A                      # required
 *   respond: { phase: access, status: 403, body: "..." }   # answer itself in that phase
 *   error_in: access            # return ERROR in that phase
 *   pause_ms: 30                # ACCESS pauses, a timer resumes with CONTINUE
 *   read_body: 1k               # ACCESS buffers the body (cap) and reports its length
 *   http: URL                   # ACCESS calls URL (outbound HTTP), pauses, and passes the status
 *                               # upstream as X-Probe-Http
 *   count: true                 # counts requests in a shared counter: X-Probe-Count
 *   target: ADDR                # BALANCE sends the request to that target (set_target)
 *   resend: { on: 503, path: /p, upstream: NAME }   # ABI 1.1: in RESPONSE_HEADERS, a response
 *                               # with that status or a gateway-made failure is sent again, once,
 *                               # re-aimed; the final response carries X-Probe-Resent: 1
 *   healthy_of: NAME            # X-Probe-Healthy: upstream_healthy(NAME) on the response
 * Every response carries X-Probe-Version: the plugin's version (set at build time), and (ABI 1.1)
 * X-Probe-Instance (instance_name), X-Probe-Headers (how many headers resp_header_at lists),
 * X-Probe-Failure (upstream_failure, when not 0); RESPONSE_HEADERS sets the gauge "last_status"
 * and X-Probe-Now (now_ms). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lintel/plugin.h>

#ifndef PROBE_VERSION
#define PROBE_VERSION "1.0.0"
#endif

struct probe {
    const struct lintel_host_api *host;
    lintel_instance *self;
    char tag[32];
    int respond_phase, error_phase; /* -1: none */
    int status;
    char body[256];
    uint64_t pause_ms;
    uint64_t read_body;
    char url[256];
    int count;
    char target[64];
    int resend_on;
    char resend_path[64], resend_upstream[64], healthy_of[64];
};

static const char *const phase_names[] = {"rewrite", "access", "balance", "response_headers",
                                          "response_body", "log"};

static int phase_of(const char *s)
{
    for (int i = 0; s && i < 6; i++)
        if (strcmp(s, phase_names[i]) == 0)
            return i;
    return -1;
}

static int create(const struct lintel_host_api *host, lintel_instance *self,
                  const lintel_cfg *config, lintel_cfg_error *err, void **out)
{
    struct probe *p = calloc(1, sizeof(*p));
    if (!p)
        return -1;
    p->host = host;
    p->self = self;
    p->respond_phase = p->error_phase = -1;
    const char *tag = host->cfg_str(host->cfg_get(config, "tag"));
    if (!tag) {
        host->cfg_error(err, config, "tag is required");
        free(p);
        return -1;
    }
    snprintf(p->tag, sizeof(p->tag), "%s", tag);
    const lintel_cfg *r = host->cfg_get(config, "respond");
    if (r) {
        int64_t st = 200;
        p->respond_phase = phase_of(host->cfg_str(host->cfg_get(r, "phase")));
        if (p->respond_phase < 0 || host->cfg_int(host->cfg_get(r, "status"), &st) < 0) {
            host->cfg_error(err, r, "needs a phase and a status");
            free(p);
            return -1;
        }
        p->status = (int)st;
        const char *b = host->cfg_str(host->cfg_get(r, "body"));
        snprintf(p->body, sizeof(p->body), "%s", b ? b : "");
    }
    const lintel_cfg *e = host->cfg_get(config, "error_in");
    if (e && (p->error_phase = phase_of(host->cfg_str(e))) < 0) {
        host->cfg_error(err, e, "must be a phase name");
        free(p);
        return -1;
    }
    const lintel_cfg *pm = host->cfg_get(config, "pause_ms");
    int64_t v;
    if (pm) {
        if (host->cfg_int(pm, &v) < 0 || v < 0) {
            host->cfg_error(err, pm, "must be a number of milliseconds");
            free(p);
            return -1;
        }
        p->pause_ms = (uint64_t)v;
    }
    const lintel_cfg *rb = host->cfg_get(config, "read_body");
    if (rb && host->cfg_size(rb, &p->read_body) < 0) {
        host->cfg_error(err, rb, "must be a size");
        free(p);
        return -1;
    }
    const char *target = host->cfg_str(host->cfg_get(config, "target"));
    if (target)
        snprintf(p->target, sizeof(p->target), "%s", target);
    const char *url = host->cfg_str(host->cfg_get(config, "http"));
    if (url)
        snprintf(p->url, sizeof(p->url), "%s", url);
    const lintel_cfg *rs = host->cfg_get(config, "resend");
    if (rs) {
        int64_t on = 0;
        if (host->cfg_int(host->cfg_get(rs, "on"), &on) < 0) {
            host->cfg_error(err, rs, "resend needs on: STATUS");
            free(p);
            return -1;
        }
        p->resend_on = (int)on;
        const char *rp = host->cfg_str(host->cfg_get(rs, "path"));
        const char *ru = host->cfg_str(host->cfg_get(rs, "upstream"));
        snprintf(p->resend_path, sizeof(p->resend_path), "%s", rp ? rp : "");
        snprintf(p->resend_upstream, sizeof(p->resend_upstream), "%s", ru ? ru : "");
    }
    const char *ho = host->cfg_str(host->cfg_get(config, "healthy_of"));
    if (ho)
        snprintf(p->healthy_of, sizeof(p->healthy_of), "%s", ho);
    const lintel_cfg *cnt = host->cfg_get(config, "count");
    if (cnt && host->cfg_bool(cnt, &p->count) < 0) {
        host->cfg_error(err, cnt, "must be true or false");
        free(p);
        return -1;
    }
    *out = p;
    return 0;
}

static void destroy(void *inst)
{
    free(inst);
}

static void append(struct probe *p, lintel_req *r, int response, const char *phase)
{
    const struct lintel_host_api *h = p->host;
    const char *name = response ? "X-Trace-Resp" : "X-Trace";
    struct lintel_str cur = response ? h->resp_header(r, name) : h->req_header(r, name);
    char buf[1024];
    int n = snprintf(buf, sizeof(buf), "%.*s%s%s:%s", (int)cur.len, cur.ptr ? cur.ptr : "",
                     cur.len ? "," : "", p->tag, phase);
    if (response)
        h->resp_header_set(r, name, buf, (size_t)n);
    else
        h->req_header_set(r, name, buf, (size_t)n);
}

static enum lintel_result common(struct probe *p, lintel_req *r, int phase)
{
    append(p, r, phase >= 3, phase_names[phase]);
    if (phase == p->error_phase)
        return LINTEL_ERROR;
    if (phase == p->respond_phase) {
        p->host->resp_header_set(r, "X-Probe-Version", PROBE_VERSION, strlen(PROBE_VERSION));
        p->host->respond(r, p->status, "text/plain", p->body, strlen(p->body));
        return LINTEL_RESPOND;
    }
    return LINTEL_CONTINUE;
}

static void on_timer(void *arg)
{
    struct probe *p = ((void **)arg)[0];
    lintel_req *r = ((void **)arg)[1];
    append(p, r, 0, "resumed");
    p->host->resume(r, LINTEL_CONTINUE);
}

static void on_http(void *arg, const struct lintel_http_response *resp)
{
    struct probe *p = ((void **)arg)[0];
    lintel_req *r = ((void **)arg)[1];
    char v[64];
    int n = resp->status ? snprintf(v, sizeof(v), "%d", resp->status)
                         : snprintf(v, sizeof(v), "error: %.50s", resp->error);
    p->host->req_header_set(r, "X-Probe-Http", v, (size_t)n);
    p->host->resume(r, LINTEL_CONTINUE);
}

static enum lintel_result h_rewrite(lintel_req *r, void *inst)
{
    return common(inst, r, 0);
}

static enum lintel_result h_access(lintel_req *r, void *inst)
{
    struct probe *p = inst;
    if (p->read_body) {
        int rc = p->host->req_body_buffer(r, p->read_body);
        if (rc == 0)
            return LINTEL_PAUSE;
        if (rc < 0)
            return LINTEL_ERROR;
        struct lintel_str b = p->host->req_body(r);
        char len[32];
        int n = snprintf(len, sizeof(len), "%zu", b.len);
        p->host->req_header_set(r, "X-Probe-Body-Len", len, (size_t)n);
    }
    if (p->count) {
        int64_t n = 0;
        if (p->host->counter_add(p->self, "hits", 1, 0, &n, NULL) < 0)
            return LINTEL_ERROR;
        char v[32];
        int len = snprintf(v, sizeof(v), "%lld", (long long)n);
        p->host->resp_header_set(r, "X-Probe-Count", v, (size_t)len);
    }
    enum lintel_result res = common(p, r, 1);
    if (res == LINTEL_CONTINUE && p->url[0]) {
        void **arg = p->host->alloc(r, 2 * sizeof(void *));
        arg[0] = p;
        arg[1] = r;
        struct lintel_http_request q = {.struct_size = sizeof(q), .url = p->url, .timeout_ms = 2000};
        return p->host->http_call(r, &q, on_http, arg) == 0 ? LINTEL_PAUSE : LINTEL_ERROR;
    }
    if (res != LINTEL_CONTINUE || !p->pause_ms)
        return res;
    void **arg = p->host->alloc(r, 2 * sizeof(void *));
    arg[0] = p;
    arg[1] = r;
    if (p->host->req_timer(r, p->pause_ms, on_timer, arg) < 0)
        return LINTEL_ERROR;
    return LINTEL_PAUSE;
}

static enum lintel_result h_balance(lintel_req *r, void *inst)
{
    struct probe *p = inst;
    if (p->target[0] && p->host->set_target(r, p->target) < 0)
        return LINTEL_ERROR;
    return common(p, r, 2);
}

static void resp_num(struct probe *p, lintel_req *r, const char *name, long long v)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%lld", v);
    p->host->resp_header_set(r, name, buf, (size_t)n);
}

static enum lintel_result h_response_headers(lintel_req *r, void *inst)
{
    struct probe *p = inst;
    const struct lintel_host_api *h = p->host;
    int failure = h->upstream_failure(r);
    if (p->resend_on && !h->ctx_get(r, p->self) &&
        (h->resp_status(r) == p->resend_on || failure != LINTEL_UPSTREAM_OK)) {
        h->ctx_set(r, p->self, p, NULL); /* marks "resent": once per request */
        if (p->resend_path[0] && h->req_set_path(r, p->resend_path, strlen(p->resend_path)) < 0)
            return LINTEL_ERROR;
        if (h->resend(r) < 0) {
            h->resp_header_set(r, "X-Probe-Resent", "refused", 7);
        } else {
            if (p->resend_upstream[0] && h->set_upstream(r, p->resend_upstream) < 0)
                return LINTEL_ERROR;
            return LINTEL_CONTINUE;
        }
    } else if (h->ctx_get(r, p->self)) {
        h->resp_header_set(r, "X-Probe-Resent", "1", 1);
    }
    size_t nh = 0;
    struct lintel_str name, value;
    while (h->resp_header_at(r, nh, &name, &value) == 0)
        nh++;
    resp_num(p, r, "X-Probe-Headers", (long long)nh);
    if (failure)
        resp_num(p, r, "X-Probe-Failure", failure);
    if (p->healthy_of[0])
        resp_num(p, r, "X-Probe-Healthy", h->upstream_healthy(r, p->healthy_of));
    resp_num(p, r, "X-Probe-Now", (long long)h->now_ms());
    const char *in = h->instance_name(p->self);
    h->resp_header_set(r, "X-Probe-Instance", in, strlen(in));
    h->metric_set(p->self, "last_status", h->resp_status(r));
    h->resp_header_set(r, "X-Probe-Version", PROBE_VERSION, strlen(PROBE_VERSION));
    return common(p, r, 3);
}

static enum lintel_result h_log(lintel_req *r, void *inst)
{
    struct probe *p = inst;
    struct lintel_req_info info = {.struct_size = sizeof(info)};
    p->host->req_info(r, &info);
    p->host->log(p->self, LINTEL_LOG_LEVEL_INFO, "probe-log tag=%s status=%d", p->tag, info.status);
    return LINTEL_CONTINUE;
}

LINTEL_PLUGIN_EXPORT const struct lintel_plugin lintel_plugin_v1 = {
    LINTEL_PLUGIN_INIT,
    .name = "tp-probe",
    .version = PROBE_VERSION,
    .priority = 100,
    .create = create,
    .destroy = destroy,
    .rewrite = h_rewrite,
    .access = h_access,
    .balance = h_balance,
    .response_headers = h_response_headers,
    .log = h_log,
};
