/* signature: lets through only requests signed with a consumer's shared secret (ACCESS phase).
 *
 *     consumers:
 *       - { name: shop, id: "42", credentials: { hmac: [ { key_id: shop-1, secret: env:SHOP } ] } }
 *     routes:
 *       - ...
 *         plugins: [ { name: signature, config: { schemes: [hmac, params] } } ]
 *
 * Two schemes (docs/plugins/signature.md has the exact formats clients implement):
 *   hmac    Authorization: HMAC-SHA256 key_id=..,signed_headers=..,signature=<hex> over a
 *           canonical string of method, path, sorted query, date, nonce, listed headers and,
 *           with validate_body, the body's SHA-256;
 *   params  ?app_key=..&timestamp=..&nonce=..&sign=<hex> with sign = MD5 or SHA-256 of the
 *           other parameters, sorted, joined with '&', then "&secret=" and the secret.
 * A success sets the consumer (consumer_set) for the plugins after this one; a failure is a 401
 * whose JSON names the reason and never the expected signature. Nonces are remembered across
 * workers (nonce.c) until their timestamp leaves the clock-skew window.
 *
 * This file is request-time code only: config.c builds the instance in create, and nothing here
 * writes to it but the time of the last "store full" warning (an atomic). Memory per request
 * comes from the request's arena. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "signature-internal.h"

#define MAX_SIGNED_HEADERS 32

enum reason { OK, MISSING, EXPIRED, REPLAYED, MISMATCH, UNKNOWN_KEY, STORE_FULL };

static const struct {
    int status;
    const char *error;  /* the JSON "error" and the access record's signature_error */
    const char *metric; /* lintel_plugin_events_total{name=...} */
} reasons[] = {
    [OK] = {0, "", "accepted"},
    [MISSING] = {401, "missing signature", "missing_signature"},
    [EXPIRED] = {401, "expired", "expired"},
    [REPLAYED] = {401, "replayed", "replayed"},
    [MISMATCH] = {401, "mismatch", "mismatch"},
    [UNKNOWN_KEY] = {401, "unknown key", "unknown_key"},
    [STORE_FULL] = {503, "replay store full", "replay_store_full"},
};

/* How the check of one request went. */
struct verdict {
    enum reason reason;
    const char *detail; /* a fixed phrase for the client (missing signature), or NULL */
    const struct sig_key *key;
    struct lintel_str key_id; /* as sent, for the log */
    struct lintel_str nonce;
};

/* What both schemes read from the request. */
struct request {
    int64_t now;
    struct lintel_str method, path;
    struct sig_param *params; /* the query's, sorted */
    size_t nparams;
};

static enum reason missing(struct verdict *v, const char *detail)
{
    v->detail = detail;
    return v->reason = MISSING;
}

static bool same_name(struct lintel_str a, struct lintel_str b)
{
    return a.len == b.len && strncasecmp(a.ptr, b.ptr, a.len) == 0;
}

static struct lintel_str trim(struct lintel_str s)
{
    while (s.len && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) {
        s.ptr++;
        s.len--;
    }
    while (s.len && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t'))
        s.len--;
    return s;
}

/* ---- the request as the client sent it ------------------------------------------------------ */

/* Path and query of the request-target as received, so that a REWRITE plugin running before
 * this one does not break signatures. Absolute-form targets ("http://host/p?q") lose their
 * scheme and authority; an empty path is "/". */
static void split_target(struct lintel_str t, struct lintel_str *path, struct lintel_str *query)
{
    if (!t.len)
        t = (struct lintel_str){"/", 1};
    const char *p = t.ptr, *end = t.ptr + t.len;
    if (p[0] != '/' && p[0] != '*') {
        const char *s = memmem(p, t.len, "://", 3);
        p = s ? s + 3 : end;
        while (p < end && *p != '/' && *p != '?')
            p++;
    }
    const char *q = memchr(p, '?', (size_t)(end - p));
    *path = p == (q ? q : end) ? (struct lintel_str){"/", 1}
                               : (struct lintel_str){p, (size_t)((q ? q : end) - p)};
    *query = q ? (struct lintel_str){q + 1, (size_t)(end - q - 1)} : (struct lintel_str){"", 0};
}

/* -1: out of memory. */
static int read_request(const struct sig_conf *cf, lintel_req *r, struct request *q)
{
    const struct lintel_host_api *h = cf->host;
    struct lintel_req_info info = {.struct_size = sizeof(info)};
    if (h->req_info(r, &info) < 0)
        return -1;
    struct lintel_str query;
    split_target(info.target, &q->path, &query);
    q->method = h->req_method(r);
    q->now = (int64_t)time(NULL);
    q->params = h->alloc(r, sig_query_max(query.ptr, query.len) * sizeof(*q->params));
    if (!q->params)
        return -1;
    q->nparams = sig_query_split(query.ptr, query.len, q->params);
    sig_params_sort(q->params, q->nparams);
    return 0;
}

/* The parameter called name (NULL when absent); *count gets how many there are. */
static const struct sig_param *param(const struct request *q, const char *name, size_t *count)
{
    const struct sig_param *found = NULL;
    size_t len = strlen(name);
    *count = 0;
    for (size_t i = 0; i < q->nparams; i++) {
        if (q->params[i].name_len == len && memcmp(q->params[i].name, name, len) == 0) {
            found = found ? found : &q->params[i];
            ++*count;
        }
    }
    return found;
}

/* ---- checks both schemes make --------------------------------------------------------------- */

static enum reason check_time(const struct sig_conf *cf, const struct request *q, int64_t ts,
                              struct verdict *v)
{
    int64_t d = q->now - ts;
    return v->reason = (d > cf->skew_s || d < -cf->skew_s) ? EXPIRED : OK;
}

/* Remembers key_id + nonce until ts leaves the window (a replay is refused until then, and the
 * time check refuses it after). Returns OK, REPLAYED or STORE_FULL, or -1 on a crypto failure. */
static int check_nonce(const struct sig_conf *cf, const struct request *q, int64_t ts,
                       struct verdict *v)
{
    if (!cf->nonces)
        return v->reason = OK;
    const struct lintel_str parts[] = {
        {(const char *)sig_nonce_salt(cf->nonces), 16},
        {v->key->key_id, v->key->key_id_len},
        {"", 1}, /* a NUL between key_id and nonce: ("ab","c") differs from ("a","bc") */
        v->nonce,
    };
    unsigned char md[SIG_MAC_MAX];
    if (sig_digest(SIG_SHA256, parts, 4, md) < 0)
        return -1;
    uint64_t fp;
    memcpy(&fp, md, sizeof(fp));
    switch (sig_nonce_check(cf->nonces, fp, (uint64_t)(ts + cf->skew_s + 1), (uint64_t)q->now)) {
    case SIG_NONCE_FIRST:
        return v->reason = OK;
    case SIG_NONCE_SEEN:
        return v->reason = REPLAYED;
    default:
        return v->reason = STORE_FULL;
    }
}

/* Constant-time comparison of the MAC computed with the one the client sent. */
static enum reason compare(const unsigned char *want, int want_len, const unsigned char *got,
                           size_t got_len, struct verdict *v)
{
    bool ok =
        want_len >= 0 && (size_t)want_len == got_len && CRYPTO_memcmp(want, got, got_len) == 0;
    return v->reason = ok ? OK : MISMATCH;
}

/* ---- the hmac scheme ------------------------------------------------------------------------ */

struct hmac_req {
    struct sig_auth auth;
    struct lintel_str date, nonce;
    int64_t ts;                                    /* the date in unix seconds */
    struct lintel_str headers[MAX_SIGNED_HEADERS]; /* the signed_headers names, in order */
    size_t nheaders;
    char body_hash[64]; /* lowercase hex, with validate_body */
};

/* Appends to a buffer, or only counts when p is NULL (the first of two passes). */
struct out {
    char *p;
    size_t len;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->p && n)
        memcpy(o->p + o->len, s, n);
    o->len += n;
}

/* name:value1,value2\n for each signed header: the name lowercased, every value of that header
 * in arrival order, trimmed, joined with ','; an absent header signs as "name:". */
static void put_headers(const struct sig_conf *cf, lintel_req *r, const struct hmac_req *m,
                        struct out *o)
{
    for (size_t k = 0; k < m->nheaders; k++) {
        for (size_t i = 0; i < m->headers[k].len; i++) {
            char c = m->headers[k].ptr[i];
            put(o, &(char){c >= 'A' && c <= 'Z' ? (char)(c + 32) : c}, 1);
        }
        put(o, ":", 1);
        struct lintel_str name, value;
        bool first = true;
        for (size_t i = 0; cf->host->req_header_at(r, i, &name, &value) == 0; i++) {
            if (!same_name(name, m->headers[k]))
                continue;
            if (!first)
                put(o, ",", 1);
            value = trim(value);
            put(o, value.ptr, value.len);
            first = false;
        }
        put(o, "\n", 1);
    }
}

/* The hmac canonical string; docs/plugins/signature.md ("The canonical string") is the
 * contract. */
static void canonical(const struct sig_conf *cf, lintel_req *r, const struct request *q,
                      const struct hmac_req *m, struct out *o)
{
    put(o, q->method.ptr, q->method.len);
    put(o, "\n", 1);
    put(o, q->path.ptr, q->path.len);
    put(o, "\n", 1);
    o->len += sig_params_join(q->params, q->nparams, NULL, o->p ? o->p + o->len : NULL);
    put(o, "\n", 1);
    put(o, m->date.ptr, m->date.len);
    put(o, "\n", 1);
    put(o, m->nonce.ptr, m->nonce.len);
    put(o, "\n", 1);
    put_headers(cf, r, m, o);
    if (cf->validate_body)
        put(o, m->body_hash, sizeof(m->body_hash));
    put(o, "\n", 1);
}

/* signed_headers: header names, none twice, not Authorization, every required one present. */
static enum reason read_signed_headers(const struct sig_conf *cf, struct hmac_req *m,
                                       struct verdict *v)
{
    struct lintel_str list = m->auth.signed_headers, name;
    int rc;
    while ((rc = sig_list_next(&list, &name)) == 1) {
        if (m->nheaders == MAX_SIGNED_HEADERS)
            return missing(v, "too many signed headers");
        if (sig_ieq(name.ptr, name.len, "authorization"))
            return missing(v, "Authorization cannot be signed");
        for (size_t k = 0; k < m->nheaders; k++)
            if (same_name(m->headers[k], name))
                return missing(v, "a header is listed twice in signed_headers");
        m->headers[m->nheaders++] = name;
    }
    if (rc < 0)
        return missing(v, "malformed signed_headers");
    for (size_t i = 0; i < cf->nrequired; i++) {
        struct lintel_str want = {cf->required_headers[i], strlen(cf->required_headers[i])};
        size_t k = 0;
        while (k < m->nheaders && !same_name(m->headers[k], want))
            k++;
        if (k == m->nheaders)
            return missing(v, "a required header is not in signed_headers");
    }
    return OK;
}

/* The checks that need neither the body nor a MAC, cheapest first; got gets the MAC sent. */
static enum reason hmac_precheck(const struct sig_conf *cf, lintel_req *r, const struct request *q,
                                 struct lintel_str authz, struct hmac_req *m, unsigned char *got,
                                 struct verdict *v)
{
    const struct lintel_host_api *h = cf->host;
    const char *why;
    if (sig_auth_parse(authz.ptr, authz.len, &m->auth, &why) < 0)
        return missing(v, why);
    v->key_id = m->auth.key_id;
    if (!(cf->algorithms & (1u << m->auth.alg)))
        return missing(v, "algorithm not allowed");
    if (sig_hex_decode(m->auth.signature.ptr, m->auth.signature.len, got,
                       sig_alg_size(m->auth.alg)) < 0)
        return missing(v, "signature must be hex of the MAC's length");
    if (!(v->key = sig_key_find(cf, m->auth.key_id.ptr, m->auth.key_id.len)))
        return v->reason = UNKNOWN_KEY;
    m->date = h->req_header(r, "X-Date");
    if (!m->date.ptr)
        m->date = h->req_header(r, "Date");
    if (!m->date.ptr)
        return missing(v, "X-Date or Date header required");
    m->date = trim(m->date);
    if (sig_http_date(m->date.ptr, m->date.len, &m->ts) < 0)
        return missing(v, "date must be an IMF-fixdate (Sun, 06 Nov 1994 08:49:37 GMT)");
    if (check_time(cf, q, m->ts, v) != OK)
        return v->reason;
    m->nonce = v->nonce = trim(h->req_header(r, "X-Nonce"));
    if (!m->nonce.len && cf->nonces)
        return missing(v, "X-Nonce header required");
    if (m->nonce.len && !sig_nonce_ok(m->nonce.ptr, m->nonce.len))
        return missing(v, "X-Nonce must be 1 to 128 visible characters");
    return read_signed_headers(cf, m, v);
}

/* RFC 9112 section 6.3: a request with neither Content-Length (other than 0) nor
 * Transfer-Encoding has no body, so there is nothing to wait for. (lintel 0.1's req_body_buffer
 * would wait for such a body forever.) */
static bool has_body(const struct lintel_host_api *h, lintel_req *r)
{
    struct lintel_str cl = h->req_header(r, "Content-Length");
    if (h->req_header(r, "Transfer-Encoding").ptr)
        return true;
    for (size_t i = 0; i < cl.len; i++)
        if (cl.ptr[i] != '0')
            return true;
    return false;
}

/* LINTEL_CONTINUE with v filled, LINTEL_PAUSE while the body comes, or LINTEL_ERROR. */
static enum lintel_result check_hmac(const struct sig_conf *cf, lintel_req *r,
                                     const struct request *q, struct lintel_str authz,
                                     struct verdict *v)
{
    const struct lintel_host_api *h = cf->host;
    struct hmac_req m = {0};
    unsigned char got[SIG_MAC_MAX], want[SIG_MAC_MAX];
    if (hmac_precheck(cf, r, q, authz, &m, got, v) != OK)
        return LINTEL_CONTINUE;
    if (cf->validate_body) {
        struct lintel_str body = {"", 0};
        if (has_body(h, r)) {
            /* 0: the host runs this handler again once the body is in; -1: over the cap (the
             * host answers 413 when this returns) or out of memory. */
            int rc = h->req_body_buffer(r, cf->max_body);
            if (rc <= 0)
                return rc == 0 ? LINTEL_PAUSE : LINTEL_ERROR;
            body = h->req_body(r);
        }
        unsigned char md[SIG_MAC_MAX];
        if (sig_digest(SIG_SHA256, &body, 1, md) < 0)
            return LINTEL_ERROR;
        sig_hex_encode(md, 32, m.body_hash);
    }
    struct out o = {NULL, 0};
    canonical(cf, r, q, &m, &o); /* measure, then write */
    if (!(o.p = h->alloc(r, o.len)))
        return LINTEL_ERROR;
    o.len = 0;
    canonical(cf, r, q, &m, &o);
    int n = sig_hmac(m.auth.alg, v->key->secret, v->key->secret_len, o.p, o.len, want);
    if (n < 0)
        return LINTEL_ERROR;
    if (compare(want, n, got, sig_alg_size(m.auth.alg), v) != OK) {
        /* Helps a client author compare with the string they signed; it holds no secret. */
        h->log(cf->self, LINTEL_LOG_LEVEL_DEBUG, "canonical string of a mismatch: \"%.*s\"",
               (int)o.len, o.p);
        return LINTEL_CONTINUE;
    }
    return check_nonce(cf, q, m.ts, v) < 0 ? LINTEL_ERROR : LINTEL_CONTINUE;
}

/* ---- the params scheme ---------------------------------------------------------------------- */

/* Everything but the digest; got gets the sign sent, *ts the timestamp. */
static enum reason params_precheck(const struct sig_conf *cf, const struct request *q,
                                   unsigned char *got, int64_t *ts, struct verdict *v)
{
    static const char *const names[] = {"app_key", "timestamp", "nonce", "sign"};
    const struct sig_param *p[4];
    for (int i = 0; i < 4; i++) {
        size_t count;
        p[i] = param(q, names[i], &count);
        if (count > 1)
            return missing(v, "app_key, timestamp, nonce and sign may appear only once");
    }
    if (!p[0] || !p[1] || !p[3] || (cf->nonces && !p[2]))
        return missing(v, cf->nonces ? "app_key, timestamp, nonce and sign are required"
                                     : "app_key, timestamp and sign are required");
    v->key_id = (struct lintel_str){p[0]->value, p[0]->value_len};
    if (p[2])
        v->nonce = (struct lintel_str){p[2]->value, p[2]->value_len};
    if (sig_hex_decode(p[3]->value, p[3]->value_len, got, sig_digest_size(cf->params_digest)) < 0)
        return missing(v, "sign must be hex of the digest's length");
    if (!(v->key = sig_key_find(cf, v->key_id.ptr, v->key_id.len)))
        return v->reason = UNKNOWN_KEY;
    if (sig_decimal(p[1]->value, p[1]->value_len, ts) < 0)
        return missing(v, "timestamp must be unix seconds");
    if (check_time(cf, q, *ts, v) != OK)
        return v->reason;
    if (p[2] && !sig_nonce_ok(v->nonce.ptr, v->nonce.len))
        return missing(v, "nonce must be 1 to 128 visible characters");
    return OK;
}

static enum lintel_result check_params(const struct sig_conf *cf, lintel_req *r,
                                       const struct request *q, struct verdict *v)
{
    unsigned char got[SIG_MAC_MAX], want[SIG_MAC_MAX];
    int64_t ts;
    if (params_precheck(cf, q, got, &ts, v) != OK)
        return LINTEL_CONTINUE;
    /* sorted "name=value" pairs but sign, joined with '&', then "&secret=" and the secret */
    size_t len = sig_params_join(q->params, q->nparams, "sign", NULL);
    char *joined = cf->host->alloc(r, len);
    if (!joined)
        return LINTEL_ERROR;
    sig_params_join(q->params, q->nparams, "sign", joined);
    const struct lintel_str parts[] = {
        {joined, len},
        {"&secret=", 8},
        {(const char *)v->key->secret, v->key->secret_len},
    };
    int n = sig_digest(cf->params_digest, parts, 3, want);
    if (n < 0)
        return LINTEL_ERROR;
    if (compare(want, n, got, sig_digest_size(cf->params_digest), v) != OK)
        return LINTEL_CONTINUE;
    return check_nonce(cf, q, ts, v) < 0 ? LINTEL_ERROR : LINTEL_CONTINUE;
}

/* ---- outcome -------------------------------------------------------------------------------- */

/* For log lines: at most 64 bytes of a client-sent string, "-" when there is none. */
#define SHOW(s) (s).len ? (int)((s).len > 64 ? 64 : (s).len) : 1, (s).len ? (s).ptr : "-"

static enum lintel_result accept(const struct sig_conf *cf, lintel_req *r, const struct request *q,
                                 const struct verdict *v)
{
    const struct lintel_host_api *h = cf->host;
    const struct sig_key *k = v->key;
    /* The upstream learns who called as with the auth plugin; a client's own X-Consumer-*
     * headers never get through. */
    if (h->consumer_set(r, k->consumer, k->consumer_id) < 0 ||
        h->req_header_set(r, "X-Consumer-Username", k->consumer, strlen(k->consumer)) < 0 ||
        (k->consumer_id
             ? h->req_header_set(r, "X-Consumer-Id", k->consumer_id, strlen(k->consumer_id))
             : h->req_header_remove(r, "X-Consumer-Id")) < 0 ||
        h->log_field(r, "signature_key_id", k->key_id, k->key_id_len) < 0)
        return LINTEL_ERROR;
    h->metric_add(cf->self, reasons[OK].metric, 1);
    h->log(cf->self, LINTEL_LOG_LEVEL_DEBUG,
           "accepted %.*s %.*s: key_id %s, consumer %s, nonce %.*s", SHOW(q->method), SHOW(q->path),
           k->key_id, k->consumer, SHOW(v->nonce));
    return LINTEL_CONTINUE;
}

/* {"status":401,"error":"mismatch","request_id":"..."}, with "detail" for a missing signature.
 * Only fixed phrases and the request id's safe characters go in, so nothing needs escaping. */
static int json_body(lintel_req *r, const struct sig_conf *cf, const struct verdict *v, char *buf,
                     size_t cap)
{
    struct lintel_str id = cf->host->req_id(r);
    char safe[65];
    size_t n = 0;
    for (size_t i = 0; i < id.len && n < sizeof(safe) - 1; i++) {
        char c = id.ptr[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == ':')
            safe[n++] = c;
    }
    safe[n] = '\0';
    return snprintf(buf, cap, "{\"status\":%d,\"error\":\"%s\"%s%s%s,\"request_id\":\"%s\"}",
                    reasons[v->reason].status, reasons[v->reason].error,
                    v->detail ? ",\"detail\":\"" : "", v->detail ? v->detail : "",
                    v->detail ? "\"" : "", safe);
}

static enum lintel_result refuse(struct sig_conf *cf, lintel_req *r, const struct request *q,
                                 const struct verdict *v)
{
    const struct lintel_host_api *h = cf->host;
    const char *error = reasons[v->reason].error;
    h->metric_add(cf->self, reasons[v->reason].metric, 1);
    h->log_field(r, "signature_error", error, strlen(error));
    if (v->reason == STORE_FULL) {
        /* Once a second at most: a full store refuses every signed request until entries
         * expire, and one line says so. */
        int64_t last = atomic_load_explicit(&cf->full_warned, memory_order_relaxed);
        if (last != q->now && atomic_compare_exchange_strong(&cf->full_warned, &last, q->now))
            h->log(cf->self, LINTEL_LOG_LEVEL_WARN,
                   "replay store full: raise nonce_capacity (signed requests get 503)");
    } else {
        h->log(cf->self, LINTEL_LOG_LEVEL_INFO,
               "refused %.*s %.*s: %s%s%s (key_id %.*s, nonce %.*s)", SHOW(q->method),
               SHOW(q->path), error, v->detail ? ": " : "", v->detail ? v->detail : "",
               SHOW(v->key_id), SHOW(v->nonce));
    }
    if (reasons[v->reason].status == 401 && cf->challenge[0] &&
        h->resp_header_set(r, "WWW-Authenticate", cf->challenge, strlen(cf->challenge)) < 0)
        return LINTEL_ERROR;
    char body[512];
    int n = json_body(r, cf, v, body, sizeof(body));
    if (n < 0 || (size_t)n >= sizeof(body) ||
        h->respond(r, reasons[v->reason].status, "application/json", body, (size_t)n) < 0)
        return LINTEL_ERROR;
    return LINTEL_RESPOND;
}

/* ---- the handler ---------------------------------------------------------------------------- */

static enum lintel_result on_access(lintel_req *r, void *instance)
{
    struct sig_conf *cf = instance;
    struct request q;
    struct verdict v = {.reason = OK};
    if (read_request(cf, r, &q) < 0)
        return LINTEL_ERROR;
    struct lintel_str authz = trim(cf->host->req_header(r, "Authorization"));
    size_t nsign;
    enum lintel_result res = LINTEL_CONTINUE;
    if ((cf->schemes & SIG_SCHEME_HMAC) && sig_auth_is_hmac(authz.ptr, authz.len))
        res = check_hmac(cf, r, &q, authz, &v);
    else if ((cf->schemes & SIG_SCHEME_PARAMS) && param(&q, "sign", &nsign))
        res = check_params(cf, r, &q, &v);
    else if (cf->schemes == SIG_SCHEME_PARAMS)
        missing(&v, "sign parameter required");
    else
        missing(&v, cf->schemes & SIG_SCHEME_PARAMS
                        ? "Authorization: HMAC-... header or sign parameter required"
                        : "Authorization: HMAC-... header required");
    if (res != LINTEL_CONTINUE)
        return res;
    return v.reason == OK ? accept(cf, r, &q, &v) : refuse(cf, r, &q, &v);
}

static int worker_init(void *instance, unsigned worker)
{
    return sig_crypto_worker_init();
}

static void worker_fini(void *instance, unsigned worker)
{
    sig_crypto_worker_fini();
}

LINTEL_PLUGIN_EXPORT const struct lintel_plugin lintel_plugin_v1 = {
    LINTEL_PLUGIN_INIT,
    .name = "signature",
    .version = "1.0.0",
    /* Before plugins that read the consumer (rate limits per consumer, logging). */
    .priority = 1000,
    .create = sig_create,
    .destroy = sig_destroy,
    .worker_init = worker_init,
    .worker_fini = worker_fini,
    .access = on_access,
};
