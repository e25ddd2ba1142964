/* cors: Cross-Origin Resource Sharing on the routes it is enabled on.
 *
 *     plugins: [{ name: cors, config: { origins: ["https://app.example.com"] } }]
 *
 * REWRITE answers a preflight (OPTIONS with Origin and Access-Control-Request-Method) with 204
 * itself, unless preflight_continue: it runs before every ACCESS plugin whatever their priority,
 * because browsers send preflights without credentials, so authentication must never see them.
 * RESPONSE_HEADERS adds the CORS headers to every other response: proxied ones, and the 401, 429
 * or 5xx made by other plugins or by lintel, which pass there too.
 *
 * The configuration is read once in cors_config.c; the handlers here only read the instance,
 * except for the per-worker regex copies that worker_init and worker_fini manage. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cors-internal.h"

#define CORS_PRIORITY 9000 /* before other REWRITE plugins (redirects would break preflights) */

#define H_ALLOW_ORIGIN "Access-Control-Allow-Origin"
#define H_ALLOW_CREDENTIALS "Access-Control-Allow-Credentials"
#define H_EXPOSE_HEADERS "Access-Control-Expose-Headers"
#define H_ALLOW_METHODS "Access-Control-Allow-Methods"
#define H_ALLOW_HEADERS "Access-Control-Allow-Headers"
#define H_MAX_AGE "Access-Control-Max-Age"
#define H_REQUEST_METHOD "Access-Control-Request-Method"
#define H_REQUEST_HEADERS "Access-Control-Request-Headers"

static const char denied_body[] = "{\"status\":403,\"error\":\"origin not allowed by CORS\"}\n";

/* Per-request context value meaning "this instance answered the preflight itself": its
 * RESPONSE_HEADERS pass then leaves that answer alone. Only its address is used. */
static const char answered_preflight;

/* ---- instances (create, destroy: main thread; worker_init, worker_fini: each worker) -------- */

static int create(const struct lintel_host_api *host, lintel_instance *self,
                  const lintel_cfg *config, lintel_cfg_error *err, void **instance)
{
    struct cors *c = calloc(1, sizeof(*c));
    if (!c) {
        host->cfg_error(err, config, "out of memory");
        return -1;
    }
    c->host = host;
    c->self = self;
    if (cors_config_parse(c, config, err) < 0) {
        free(c);
        return -1;
    }
    if (c->npatterns) {
        c->worker_re = calloc(CORS_MAX_WORKERS, sizeof(*c->worker_re));
        if (!c->worker_re) {
            host->cfg_error(err, config, "out of memory");
            cors_config_free(c);
            free(c);
            return -1;
        }
    }
    *instance = c;
    return 0;
}

static void free_regex_set(regex_t *set, size_t n)
{
    for (size_t i = 0; set && i < n; i++)
        regfree(&set[i]);
    free(set);
}

static void destroy(void *instance)
{
    struct cors *c = instance;
    for (unsigned w = 0; c->worker_re && w < CORS_MAX_WORKERS; w++)
        free_regex_set(c->worker_re[w], c->npatterns); /* workers that never ran worker_fini */
    free(c->worker_re);
    cors_config_free(c);
    free(c);
}

/* Each worker compiles its own copy of the patterns, so that workers never contend for the lock
 * glibc's regexec takes on a regex_t. Returns -1 (lintel logs it) when out of memory; that
 * worker then allows no origin by pattern: it fails closed. */
static int worker_init(void *instance, unsigned worker)
{
    struct cors *c = instance;
    if (!c->npatterns)
        return 0;
    if (worker >= CORS_MAX_WORKERS)
        return -1;
    regex_t *set = calloc(c->npatterns, sizeof(*set));
    if (!set)
        return -1;
    for (size_t i = 0; i < c->npatterns; i++) {
        if (regcomp(&set[i], c->patterns[i], REG_EXTENDED | REG_NOSUB) != 0) {
            free_regex_set(set, i); /* compiled in create, so only memory can fail here */
            return -1;
        }
    }
    c->worker_re[worker] = set;
    return 0;
}

static void worker_fini(void *instance, unsigned worker)
{
    struct cors *c = instance;
    if (!c->worker_re || worker >= CORS_MAX_WORKERS)
        return;
    free_regex_set(c->worker_re[worker], c->npatterns);
    c->worker_re[worker] = NULL;
}

/* ---- requests (worker threads) ------------------------------------------------------------ */

enum verdict {
    ORIGIN_ABSENT,  /* no Origin header: not a cross-origin request */
    ORIGIN_DENIED,  /* an Origin the configuration does not allow */
    ORIGIN_ALLOWED, /* allowed; with "*" and no credentials also when absent */
};

/* Whether origin matches one of the `~regex` origins, with this worker's compiled copies. */
static int matches_pattern(const struct cors *c, lintel_req *r, struct lintel_str origin)
{
    unsigned w = c->host->req_worker(r);
    const regex_t *set = w < CORS_MAX_WORKERS ? c->worker_re[w] : NULL;
    if (!set || memchr(origin.ptr, '\0', origin.len))
        return 0; /* regexec would stop at the NUL and match a prefix */
    char stack[256], *s = stack;
    if (origin.len >= sizeof(stack) && !(s = c->host->alloc(r, origin.len + 1)))
        return 0;
    memcpy(s, origin.ptr, origin.len);
    s[origin.len] = '\0';
    for (size_t i = 0; i < c->npatterns; i++)
        if (regexec(&set[i], s, 0, NULL, 0) == 0)
            return 1;
    return 0;
}

/* The request's Origin (first value; {NULL,0} when absent) into *origin, and whether it is
 * allowed. */
static enum verdict check_origin(const struct cors *c, lintel_req *r, struct lintel_str *origin)
{
    *origin = c->host->req_header(r, "Origin");
    if (!c->vary_origin) /* "*" without credentials: every request gets "*" */
        return ORIGIN_ALLOWED;
    if (!origin->ptr)
        return ORIGIN_ABSENT;
    if (c->any_origin)
        return ORIGIN_ALLOWED;
    for (size_t i = 0; i < c->nexact; i++)
        if (c->exact[i].len == origin->len && memcmp(c->exact[i].s, origin->ptr, origin->len) == 0)
            return ORIGIN_ALLOWED;
    return c->npatterns && matches_pattern(c, r, *origin) ? ORIGIN_ALLOWED : ORIGIN_DENIED;
}

static int is_preflight(const struct cors *c, lintel_req *r)
{
    struct lintel_str m = c->host->req_method(r);
    return m.len == 7 && memcmp(m.ptr, "OPTIONS", 7) == 0 && c->host->req_header(r, "Origin").ptr &&
           c->host->req_header(r, H_REQUEST_METHOD).ptr;
}

static int is_ows(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* Whether the comma-separated list v holds token (case-insensitive). */
static int list_has(struct lintel_str v, const char *token)
{
    size_t tlen = strlen(token), i = 0;
    while (i < v.len) {
        while (i < v.len && (is_ows(v.ptr[i]) || v.ptr[i] == ','))
            i++;
        size_t start = i;
        while (i < v.len && v.ptr[i] != ',')
            i++;
        size_t end = i;
        while (end > start && is_ows(v.ptr[end - 1]))
            end--;
        if (end - start == tlen && strncasecmp(v.ptr + start, token, tlen) == 0)
            return 1;
    }
    return 0;
}

/* Adds token to Vary unless the response already varies on it (or on everything). A second Vary
 * line is as good as a merged one (RFC 9110 5.3) and keeps whatever other Vary lines say. */
static int add_vary(const struct cors *c, lintel_req *r, const char *token)
{
    struct lintel_str v = c->host->resp_header(r, "Vary");
    if (v.ptr && (list_has(v, token) || list_has(v, "*")))
        return 0;
    return c->host->resp_header_add(r, "Vary", token, strlen(token));
}

/* An Access-Control-Request-Headers value worth echoing: a comma-separated list of tokens, with
 * optional whitespace around the commas only. */
static int is_token_list(struct lintel_str v)
{
    int tokens = 0;
    size_t i = 0;
    while (i < v.len) {
        while (i < v.len && is_ows(v.ptr[i]))
            i++;
        size_t start = i;
        while (i < v.len && lintel_is_tchar((unsigned char)v.ptr[i]))
            i++;
        tokens += i > start;
        while (i < v.len && is_ows(v.ptr[i]))
            i++;
        if (i < v.len && v.ptr[i++] != ',')
            return 0;
    }
    return tokens > 0;
}

/* Sets (or removes, when value is NULL) one header of the response being built. */
static int set_or_remove(const struct cors *c, lintel_req *r, const char *name, const char *value,
                         size_t len)
{
    return value ? c->host->resp_header_set(r, name, value, len)
                 : c->host->resp_header_remove(r, name);
}

/* Allow-Origin: "*", or the origin echoed. */
static int set_allow_origin(const struct cors *c, lintel_req *r, struct lintel_str origin)
{
    return c->vary_origin ? c->host->resp_header_set(r, H_ALLOW_ORIGIN, origin.ptr, origin.len)
                          : c->host->resp_header_set(r, H_ALLOW_ORIGIN, "*", 1);
}

/* The headers that answer an allowed preflight (whoever makes the response). */
static int preflight_headers(const struct cors *c, lintel_req *r, struct lintel_str origin)
{
    const struct lintel_host_api *h = c->host;
    int rc = set_allow_origin(c, r, origin);
    rc |= set_or_remove(c, r, H_ALLOW_CREDENTIALS, c->credentials ? "true" : NULL, 4);
    rc |= set_or_remove(c, r, H_ALLOW_METHODS, c->methods, c->methods_len);
    if (c->echo_headers) {
        struct lintel_str asked = h->req_header(r, H_REQUEST_HEADERS);
        rc |= is_token_list(asked) ? h->resp_header_set(r, H_ALLOW_HEADERS, asked.ptr, asked.len)
                                   : h->resp_header_remove(r, H_ALLOW_HEADERS);
        rc |= add_vary(c, r, H_REQUEST_HEADERS); /* the answer depends on what was asked */
    } else {
        rc |= set_or_remove(c, r, H_ALLOW_HEADERS, c->headers, c->headers_len);
    }
    rc |= set_or_remove(c, r, H_MAX_AGE, c->max_age_len ? c->max_age : NULL, c->max_age_len);
    return rc;
}

/* Removes a header from the response in RESPONSE_HEADERS with a lookup first, which costs about
 * half a removal (no name check) and usually finds nothing: upstreams rarely send CORS headers.
 * The same as the removal alone, provided another removal or set on the same response was made
 * in the same handler: in RESPONSE_HEADERS the response exists, so a removal only drops the name
 * from it (nothing is left pending), and it fails only once the response is closed, which makes
 * that other call fail too and the handler with it. */
static int drop(const struct cors *c, lintel_req *r, const char *name)
{
    return c->host->resp_header(r, name).ptr ? c->host->resp_header_remove(r, name) : 0;
}

/* A response for an origin that is not allowed carries no CORS header, not even one the
 * upstream sent: the gateway's policy is the one browsers see. RESPONSE_HEADERS only. */
static int strip_cors(const struct cors *c, lintel_req *r)
{
    static const char *const names[] = {H_ALLOW_CREDENTIALS, H_EXPOSE_HEADERS, H_ALLOW_METHODS,
                                        H_ALLOW_HEADERS, H_MAX_AGE};
    int rc = c->host->resp_header_remove(r, H_ALLOW_ORIGIN); /* the call drop needs first */
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        rc |= drop(c, r, names[i]);
    return rc;
}

static enum lintel_result on_rewrite(lintel_req *r, void *instance)
{
    const struct cors *c = instance;
    const struct lintel_host_api *h = c->host;
    if (c->preflight_continue || !is_preflight(c, r))
        return LINTEL_CONTINUE;
    if (h->ctx_set(r, c->self, (void *)&answered_preflight, NULL) < 0)
        return LINTEL_ERROR;
    struct lintel_str origin;
    int rc = c->vary_origin ? add_vary(c, r, "Origin") : 0;
    if (check_origin(c, r, &origin) == ORIGIN_ALLOWED) {
        h->metric_add(c->self, "preflight_allowed", 1);
        rc |= preflight_headers(c, r, origin);
        rc |= h->respond(r, 204, NULL, NULL, 0);
    } else {
        h->metric_add(c->self, "preflight_denied", 1);
        rc |= h->respond(r, 403, "application/json", denied_body, sizeof(denied_body) - 1);
    }
    return rc ? LINTEL_ERROR : LINTEL_RESPOND;
}

static enum lintel_result on_response_headers(lintel_req *r, void *instance)
{
    const struct cors *c = instance;
    if (c->host->ctx_get(r, c->self) == &answered_preflight)
        return LINTEL_CONTINUE;
    struct lintel_str origin;
    enum verdict v = check_origin(c, r, &origin);
    int rc = c->vary_origin ? add_vary(c, r, "Origin") : 0;
    if (v != ORIGIN_ALLOWED) {
        if (v == ORIGIN_DENIED)
            c->host->metric_add(c->self, "origin_denied", 1);
        rc |= strip_cors(c, r);
    } else if (c->preflight_continue && is_preflight(c, r)) {
        rc |= preflight_headers(c, r, origin); /* the upstream answered the preflight */
    } else {
        rc |= set_allow_origin(c, r, origin); /* the call drop needs first */
        rc |= c->credentials ? c->host->resp_header_set(r, H_ALLOW_CREDENTIALS, "true", 4)
                             : drop(c, r, H_ALLOW_CREDENTIALS);
        rc |= c->expose ? c->host->resp_header_set(r, H_EXPOSE_HEADERS, c->expose, c->expose_len)
                        : drop(c, r, H_EXPOSE_HEADERS);
    }
    return rc ? LINTEL_ERROR : LINTEL_CONTINUE; /* only out of memory fails: a 500 */
}

/* One field per line, as in every plugin's descriptor. */
/* clang-format off */
LINTEL_PLUGIN_EXPORT const struct lintel_plugin lintel_plugin_v1 = {
    LINTEL_PLUGIN_INIT,
    .name = "cors",
    .version = "1.0.1",
    .priority = CORS_PRIORITY,
    .create = create,
    .destroy = destroy,
    .worker_init = worker_init,
    .worker_fini = worker_fini,
    .rewrite = on_rewrite,
    .response_headers = on_response_headers,
};
/* clang-format on */
