/* abtest: sends each user to one of several variants of a route, chosen by the first matching
 * rule on a user id taken from the request, without changing clients.
 *
 *     plugins: [{ name: abtest, config: { uid: { from: arg, name: uid }, rules: [...] } }]
 *
 * REWRITE reads the uid, finds the first rule that matches it (whitelist, last digit, or a stable
 * hash bucket) and aims the request at the rule's target: another path (and query), another
 * upstream, or an external redirect answered here. With `on_error`, RESPONSE_HEADERS replays an
 * idempotent request whose branch failed (a listed status, or the branch's upstream could not
 * answer) on the original path and upstream, saved in the request context in REWRITE; a request
 * body is kept for that (req_body_buffer) only when it is small enough to be replayed.
 *
 * The configuration is read once in abtest_config.c; the handlers here only read the instance. */
#include <stdlib.h>
#include <string.h>

#include <lintel/hash.h>
#include <lintel/text.h>

#include "abtest-internal.h"

#define ABTEST_PRIORITY 500 /* after cors (9000): a preflight is never redirected */

/* What REWRITE did to one request, for RESPONSE_HEADERS; in the request arena. */
struct abtest_ctx {
    const struct abtest_rule *rule; /* the matching rule (never NULL) */
    /* The request as the route would have sent it, for a replay (only what the rule changes;
     * NUL-terminated copies in the request arena). */
    char *path, *query, *upstream;
    size_t path_len, query_len;
    int replayable;   /* idempotent, and the body (if any) is kept */
    int waiting_body; /* REWRITE returned PAUSE for req_body_buffer */
    int balanced;     /* BALANCE ran: every ACCESS plugin let the request through */
    int replayed;     /* resend() was called: the current response is the original route's */
};

unsigned abtest_bucket(struct abtest_str salt, const char *uid, size_t len)
{
    uint64_t h = lintel_fnv1a64(LINTEL_FNV1A64_OFFSET, salt.s, salt.len);
    return (unsigned)(lintel_fnv1a64(h, uid, len) % ABTEST_BUCKETS);
}

/* ---- instances (create, destroy: main thread) --------------------------------------------- */

static int create(const struct lintel_host_api *host, lintel_instance *self,
                  const lintel_cfg *config, lintel_cfg_error *err, void **instance)
{
    struct abtest *t = calloc(1, sizeof(*t));
    if (!t) {
        host->cfg_error(err, config, "out of memory");
        return -1;
    }
    t->host = host;
    t->self = self;
    if (abtest_config_parse(t, config, err) < 0) {
        free(t);
        return -1;
    }
    *instance = t;
    return 0;
}

static void destroy(void *instance)
{
    struct abtest *t = instance;
    abtest_config_free(t);
    free(t);
}

/* ---- choosing the rule -------------------------------------------------------------------- */

static struct lintel_str read_uid(const struct abtest *t, lintel_req *r)
{
    switch (t->uid_from) {
    case ABTEST_UID_ARG:
        return t->host->req_arg(r, t->uid_name);
    case ABTEST_UID_HEADER:
        return t->host->req_header(r, t->uid_name);
    default:
        return t->host->req_cookie(r, t->uid_name);
    }
}

static int rule_matches(const struct abtest *t, const struct abtest_rule *rule,
                        struct lintel_str uid)
{
    switch (rule->strategy) {
    case ABTEST_WHITELIST: {
        struct abtest_str key = {uid.ptr, uid.len};
        return bsearch(&key, rule->uids, rule->nuids, sizeof(*rule->uids), abtest_str_cmp) != NULL;
    }
    case ABTEST_TAIL_DIGIT: {
        char last = uid.ptr[uid.len - 1];
        return last >= '0' && last <= '9' && (rule->digits & (1u << (last - '0')));
    }
    default: {
        unsigned b = abtest_bucket(t->salt, uid.ptr, uid.len);
        return (rule->buckets[b / 64] >> (b % 64)) & 1;
    }
    }
}

static const struct abtest_rule *first_match(const struct abtest *t, struct lintel_str uid)
{
    for (size_t i = 0; i < t->nrules; i++)
        if (rule_matches(t, &t->rules[i], uid))
            return &t->rules[i];
    return NULL;
}

/* ---- REWRITE ------------------------------------------------------------------------------ */

static int str_is(struct lintel_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

/* Methods a client may send twice with the same effect (RFC 9110 9.2.2): only those are
 * replayed, since the branch may have acted on the request before failing. */
static int is_idempotent(struct lintel_str m)
{
    return str_is(m, "GET") || str_is(m, "HEAD") || str_is(m, "PUT") || str_is(m, "DELETE") ||
           str_is(m, "OPTIONS");
}

/* A NUL-terminated copy of s in the request arena; NULL when out of memory. */
static char *arena_copy(const struct abtest *t, lintel_req *r, const char *s, size_t len)
{
    char *copy = t->host->alloc(r, len + 1);
    if (copy) {
        if (len)
            memcpy(copy, s, len);
        copy[len] = '\0';
    }
    return copy;
}

/* Keeps what the rule is about to change, so that a replay can put it back. */
static int save_original(const struct abtest *t, lintel_req *r, struct abtest_ctx *ctx)
{
    const struct lintel_host_api *h = t->host;
    const struct abtest_rule *rule = ctx->rule;
    if (rule->path.s) {
        struct lintel_str p = h->req_path(r), q = h->req_query(r);
        ctx->path_len = p.len;
        ctx->query_len = q.ptr ? q.len : 0;
        if (!(ctx->path = arena_copy(t, r, p.ptr, p.len)) ||
            !(ctx->query = arena_copy(t, r, q.ptr, ctx->query_len)))
            return -1;
    }
    if (rule->upstream) {
        struct lintel_str u = h->upstream_name(r);
        if (u.ptr && !(ctx->upstream = arena_copy(t, r, u.ptr, u.len)))
            return -1;
    }
    return 0;
}

/* Aims the request at the rule's path (and query) and upstream. The rule's query comes first,
 * the client's after it, so that a backend reading the first value of an argument sees the
 * rule's. */
static int aim(const struct abtest *t, lintel_req *r, const struct abtest_rule *rule)
{
    const struct lintel_host_api *h = t->host;
    if (rule->path.s && h->req_set_path(r, rule->path.s, rule->path.len) < 0)
        return -1;
    if (rule->query.s) {
        struct lintel_str client = h->req_query(r);
        size_t n = rule->query.len + (client.len ? 1 + client.len : 0);
        char *q = h->alloc(r, n);
        if (!q)
            return -1;
        memcpy(q, rule->query.s, rule->query.len);
        if (client.len) {
            q[rule->query.len] = '&';
            memcpy(q + rule->query.len + 1, client.ptr, client.len);
        }
        if (h->req_set_query(r, q, n) < 0)
            return -1;
    }
    /* The name was checked against the configuration at create (upstream_exists). */
    if (rule->upstream && h->set_upstream(r, rule->upstream) < 0)
        return -1;
    return 0;
}

static enum lintel_result redirect(const struct abtest *t, lintel_req *r,
                                   const struct abtest_rule *rule)
{
    const struct lintel_host_api *h = t->host;
    if (h->resp_header_set(r, "Location", rule->redirect.s, rule->redirect.len) < 0 ||
        h->respond(r, rule->redirect_status, NULL, NULL, 0) < 0)
        return LINTEL_ERROR;
    return LINTEL_RESPOND;
}

/* Whether the request body can be kept for a replay without refusing any request: a body of a
 * known length within max_replay_body. A chunked body's length is only known once read, and
 * past the cap req_body_buffer would answer 413, so such a request is simply not replayed. */
static int body_fits(const struct abtest *t, lintel_req *r, uint64_t *len)
{
    const struct lintel_host_api *h = t->host;
    struct lintel_str cl = h->req_header(r, "Content-Length");
    *len = 0;
    if (h->req_header(r, "Transfer-Encoding").ptr)
        return 0;
    return !cl.ptr || lintel_parse_length(cl.ptr, cl.len, t->max_replay_body, len);
}

/* Keeps the body for a replay; PAUSE while it is read (REWRITE then runs again). */
static enum lintel_result keep_body(const struct abtest *t, lintel_req *r, struct abtest_ctx *ctx)
{
    int rc = t->host->req_body_buffer(r, (size_t)t->max_replay_body);
    ctx->waiting_body = rc == 0;
    ctx->replayable = rc == 1;
    return rc == 0 ? LINTEL_PAUSE : LINTEL_CONTINUE; /* -1: the request goes on, unreplayable */
}

static enum lintel_result on_rewrite(lintel_req *r, void *instance)
{
    const struct abtest *t = instance;
    const struct lintel_host_api *h = t->host;
    struct abtest_ctx *ctx = h->ctx_get(r, t->self);
    if (ctx) /* called again once the body is in */
        return ctx->waiting_body ? keep_body(t, r, ctx) : LINTEL_CONTINUE;

    struct lintel_str uid = read_uid(t, r);
    const struct abtest_rule *rule = uid.len ? first_match(t, uid) : NULL;
    if (!rule) {
        h->metric_add(t->self, uid.len ? "no_match" : "no_uid", 1);
        /* Upstreams trust the header only when the gateway set it. */
        if (t->expose_group && h->req_header_remove(r, ABTEST_GROUP_HEADER) < 0)
            return LINTEL_ERROR;
        return LINTEL_CONTINUE;
    }
    h->metric_add(t->self, rule->metric, 1);
    if (!(ctx = h->alloc(r, sizeof(*ctx))))
        return LINTEL_ERROR;
    memset(ctx, 0, sizeof(*ctx));
    ctx->rule = rule;
    if (h->ctx_set(r, t->self, ctx, NULL) < 0)
        return LINTEL_ERROR;
    if (rule->redirect.s)
        return redirect(t, r, rule);

    if ((t->replay && save_original(t, r, ctx) < 0) || aim(t, r, rule) < 0)
        return LINTEL_ERROR;
    if (t->expose_group &&
        h->req_header_set(r, ABTEST_GROUP_HEADER, rule->group.s, rule->group.len) < 0)
        return LINTEL_ERROR;
    if (!t->replay || !is_idempotent(h->req_method(r)))
        return LINTEL_CONTINUE;
    uint64_t len;
    if (!body_fits(t, r, &len))
        return LINTEL_CONTINUE;
    if (len == 0) {
        ctx->replayable = 1;
        return LINTEL_CONTINUE;
    }
    return keep_body(t, r, ctx);
}

/* ---- BALANCE ------------------------------------------------------------------------------ */

/* Marks the request as past ACCESS. resend() goes straight upstream, so replaying a response an
 * ACCESS plugin made (a 403 listed in on_error) would let the request past that plugin. */
static enum lintel_result on_balance(lintel_req *r, void *instance)
{
    const struct abtest *t = instance;
    struct abtest_ctx *ctx = t->host->ctx_get(r, t->self);
    if (ctx)
        ctx->balanced = 1;
    return LINTEL_CONTINUE;
}

/* ---- RESPONSE_HEADERS --------------------------------------------------------------------- */

/* Whether the branch failed: its upstream could not answer, or answered a status in on_error
 * (a response made by a plugin before BALANCE is not the branch's). */
static int branch_failed(const struct abtest *t, lintel_req *r, const struct abtest_ctx *ctx)
{
    int s = t->host->resp_status(r);
    if (t->host->upstream_failure(r) != LINTEL_UPSTREAM_OK)
        return 1;
    return ctx->balanced && s >= 400 && s < 640 && ((t->on_error[s / 64] >> (s % 64)) & 1);
}

/* Puts back what the rule changed (after resend(), which lets the request be re-aimed). */
static int restore(const struct abtest *t, lintel_req *r, const struct abtest_ctx *ctx)
{
    const struct lintel_host_api *h = t->host;
    if (ctx->path && (h->req_set_path(r, ctx->path, ctx->path_len) < 0 ||
                      h->req_set_query(r, ctx->query, ctx->query_len) < 0))
        return -1;
    if (ctx->upstream && h->set_upstream(r, ctx->upstream) < 0)
        return -1;
    /* The original route serves it: it is not the branch's request any more. */
    return t->expose_group ? h->req_header_remove(r, ABTEST_GROUP_HEADER) : 0;
}

static enum lintel_result on_response_headers(lintel_req *r, void *instance)
{
    const struct abtest *t = instance;
    const struct lintel_host_api *h = t->host;
    struct abtest_ctx *ctx = h->ctx_get(r, t->self);
    if (!ctx)
        return LINTEL_CONTINUE;
    if (t->replay && !ctx->rule->redirect.s && !ctx->replayed && branch_failed(t, r, ctx)) {
        if (ctx->replayable && h->resend(r) == 0) {
            ctx->replayed = 1;
            h->metric_add(t->self, "replayed", 1);
            if (restore(t, r, ctx) < 0) {
                h->log(t->self, LINTEL_LOG_LEVEL_ERROR,
                       "cannot aim the replay at the original path and upstream");
                return LINTEL_ERROR;
            }
            return LINTEL_CONTINUE; /* the original route's response comes through here again */
        }
        h->metric_add(t->self, "replay_skipped", 1);
    }
    if (t->expose_group &&
        h->resp_header_set(r, ABTEST_GROUP_HEADER, ctx->rule->group.s, ctx->rule->group.len) < 0)
        return LINTEL_ERROR;
    return LINTEL_CONTINUE;
}

/* One field per line, as in every plugin's descriptor. */
/* clang-format off */
LINTEL_PLUGIN_EXPORT const struct lintel_plugin lintel_plugin_v1 = {
    LINTEL_PLUGIN_INIT,
    .name = "abtest",
    .version = "1.0.0",
    .priority = ABTEST_PRIORITY,
    .create = create,
    .destroy = destroy,
    .rewrite = on_rewrite,
    .balance = on_balance,
    .response_headers = on_response_headers,
};
/* clang-format on */
