/* auth: authenticates requests in ACCESS with API keys, Basic credentials, JWTs or an external
 * (forward-auth) service, against the consumers declared at the top of the configuration.
 *
 *     plugins:
 *       - name: auth
 *         config: { methods: [jwt, key], anonymous: guest, hide_credentials: true }
 *
 * The methods are tried in their order; the first that accepts a credential wins. On success
 * the consumer is set (host->consumer_set) and sent upstream as X-Consumer-Username and
 * X-Consumer-Id; otherwise the request is let through as the anonymous consumer, or refused
 * with 401 (or the external service's own refusal, or 503 when that service is down).
 * docs/plugins/auth.md is the reference. Config parsing is in auth_config.c; this file and the
 * methods' files hold the request-time code (workers). */
#include <stdio.h>
#include <string.h>

#include "auth-internal.h"

static const char *const method_labels[AUTH_NMETHODS] = {"key", "basic", "jwt", "external"};
static const char *const allow_metrics[AUTH_NMETHODS] = {"allow_key", "allow_basic", "allow_jwt",
                                                         "allow_external"};

/* Headers only this plugin may set: a client that sends them is lying. */
static const char *const consumer_headers[] = {"X-Consumer-Username", "X-Consumer-Id",
                                               "X-Anonymous-Consumer"};

char *auth_strdup(struct auth_attempt *at, const char *s, size_t len)
{
    char *p = at->a->host->alloc(at->r, len + 1);
    if (p) {
        if (len)
            memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

/* Sets the consumer (if any) and what goes upstream with it; label names how it was decided. */
static enum lintel_result allow_as(struct auth_attempt *at, const char *label, const char *metric,
                                   int anonymous)
{
    const struct auth *a = at->a;
    const struct lintel_host_api *h = a->host;
    const char *name = at->name, *id = at->id;
    size_t name_len, id_len;
    if (at->consumer != AUTH_NO_CONSUMER) {
        const struct auth_consumer *c = &a->consumers[at->consumer];
        name = c->name, id = c->id, name_len = c->name_len, id_len = c->id_len;
    } else {
        name_len = name ? strlen(name) : 0;
        id_len = id ? strlen(id) : 0;
    }
    if (name) {
        if (h->consumer_set(at->r, name, id) < 0 ||
            h->req_header_set(at->r, "X-Consumer-Username", name, name_len) < 0 ||
            (id && h->req_header_set(at->r, "X-Consumer-Id", id, id_len) < 0) ||
            (anonymous && h->req_header_set(at->r, "X-Anonymous-Consumer", "true", 4) < 0))
            return LINTEL_ERROR;
    }
    h->log_field(at->r, "auth_method", label, strlen(label));
    h->metric_add(a->self, metric, 1);
    return LINTEL_CONTINUE;
}

enum lintel_result auth_attempt_allow(struct auth_attempt *at)
{
    return allow_as(at, method_labels[at->method], allow_metrics[at->method], 0);
}

/* A refusal of lintel's own: JSON {"status":N,"error":REASON}, with a WWW-Authenticate challenge
 * per method on a 401. reason is one of the plugin's static phrases (nothing to escape). */
static enum lintel_result refuse(struct auth_attempt *at, int status, const char *reason)
{
    const struct auth *a = at->a;
    const struct lintel_host_api *h = a->host;
    char body[192];
    int n = snprintf(body, sizeof(body), "{\"status\":%d,\"error\":\"%s\"}", status, reason);
    if (n < 0 || (size_t)n >= sizeof(body))
        return LINTEL_ERROR;
    for (unsigned i = 0; status == 401 && i < a->nmethods; i++) {
        enum auth_method m = a->methods[i];
        const char *c = m == AUTH_JWT && at->bearer_refused ? a->bearer_invalid : a->challenge[m];
        if (c && h->resp_header_add(at->r, "WWW-Authenticate", c, strlen(c)) < 0)
            return LINTEL_ERROR;
    }
    h->log_field(at->r, "auth_error", reason, strlen(reason));
    h->metric_add(a->self, "deny", 1);
    if (h->respond(at->r, status, "application/json", body, (size_t)n) < 0)
        return LINTEL_ERROR;
    return LINTEL_RESPOND;
}

/* No method accepted a credential: decide in this order (docs/plugins/auth.md, "Outcome"). */
static enum lintel_result conclude(struct auth_attempt *at)
{
    const struct auth *a = at->a;
    at->consumer = a->anonymous;
    at->name = at->id = NULL;
    if (at->ext == AUTH_EXT_DOWN)
        return a->ext.allow_degradation
                   ? allow_as(at, "degraded", "allow_degraded", a->anonymous != AUTH_NO_CONSUMER)
                   : refuse(at, 503, "authentication service unavailable");
    if (a->anonymous != AUTH_NO_CONSUMER)
        return allow_as(at, "anonymous", "allow_anonymous", 1);
    if (at->ext == AUTH_EXT_DENIED && at->denial)
        return auth_external_deny(at);
    return refuse(at, 401, at->reason ? at->reason : "missing credentials");
}

static enum auth_outcome run_method(struct auth_attempt *at, enum auth_method m)
{
    switch (m) {
    case AUTH_KEY:
        return auth_key_run(at);
    case AUTH_BASIC:
        return auth_basic_run(at);
    case AUTH_JWT:
        return auth_jwt_run(at);
    default:
        return auth_external_run(at);
    }
}

enum lintel_result auth_attempt_run(struct auth_attempt *at)
{
    while (at->next < at->a->nmethods) {
        enum auth_method m = at->a->methods[at->next++];
        switch (run_method(at, m)) {
        case AUTH_ALLOWED:
            at->method = m;
            return auth_attempt_allow(at);
        case AUTH_PAUSED:
            return LINTEL_PAUSE;
        case AUTH_FAILED:
            return LINTEL_ERROR;
        default:
            break;
        }
    }
    return conclude(at);
}

static enum lintel_result on_access(lintel_req *r, void *instance)
{
    struct auth *a = instance;
    const struct lintel_host_api *h = a->host;
    /* Looked up first: a lookup costs about half a removal (which checks the name), and these
     * are almost never there. The removal of a name that is not there does nothing. */
    for (size_t i = 0; i < sizeof(consumer_headers) / sizeof(*consumer_headers); i++)
        if (h->req_header(r, consumer_headers[i]).ptr &&
            h->req_header_remove(r, consumer_headers[i]) < 0)
            return LINTEL_ERROR;
    /* Likewise what the external service vouches for, whatever this request's outcome. */
    for (size_t i = 0; i < a->ext.upstream.n; i++)
        if (h->req_header_remove(r, a->ext.upstream.v[i]) < 0)
            return LINTEL_ERROR;
    struct auth_attempt at = {.a = a, .r = r, .consumer = AUTH_NO_CONSUMER};
    return auth_attempt_run(&at);
}

/* clang-format off */
LINTEL_PLUGIN_EXPORT const struct lintel_plugin lintel_plugin_v1 = {
    LINTEL_PLUGIN_INIT,
    .name = "auth",
    .version = "1.0.1",
    .priority = 1000,
    .create = auth_config_create,
    .destroy = auth_config_destroy,
    .access = on_access,
};
/* clang-format on */
