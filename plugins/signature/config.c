/* The signature plugin's configuration: its YAML keys and the key_id -> secret table built from
 * the top-level consumers, once, in create (main thread). Request-time code (signature.c) only
 * reads what is built here. docs/plugins/signature.md lists every key. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include <lintel/config.h>

#include "signature-internal.h"

#define DEFAULT_SKEW_S 300
#define MAX_SKEW_S 86400
#define DEFAULT_MAX_BODY (1024 * 1024)
#define MAX_BODY_LIMIT (1024 * 1024 * 1024)
#define DEFAULT_NONCE_CAPACITY 262144
#define MIN_NONCE_CAPACITY 1024
#define MAX_NONCE_CAPACITY (64 * 1024 * 1024)
#define KEY_ID_MAX 128
#define SECRET_MAX 4096

struct parse {
    const struct lintel_host_api *host;
    lintel_cfg_error *err;
};

/* ---- small readers: each reports its own error and returns -1 ------------------------------- */

static int read_bool(struct parse *p, const lintel_cfg *config, const char *key, bool *out)
{
    const lintel_cfg *n = p->host->cfg_get(config, key);
    int v;
    if (!n)
        return 0;
    if (p->host->cfg_bool(n, &v) < 0) {
        p->host->cfg_error(p->err, n, "must be true or false");
        return -1;
    }
    *out = v != 0;
    return 0;
}

/* A list node at key (absent: *out NULL), or -1 when it is something else or empty. */
static int read_list(struct parse *p, const lintel_cfg *config, const char *key,
                     const lintel_cfg **out)
{
    const lintel_cfg *n = p->host->cfg_get(config, key);
    *out = NULL;
    if (!n)
        return 0;
    if (p->host->cfg_type(n) != LINTEL_CFG_LIST || p->host->cfg_len(n) == 0) {
        p->host->cfg_error(p->err, n, "must be a non-empty list");
        return -1;
    }
    *out = n;
    return 0;
}

/* Bits of the names in list (each one of names[], no repeats); -1 after an error. */
static int read_choices(struct parse *p, const lintel_cfg *list, const char *const *names,
                        size_t nnames, const char *expect, unsigned *out)
{
    unsigned bits = 0;
    for (size_t i = 0; i < p->host->cfg_len(list); i++) {
        const lintel_cfg *item = p->host->cfg_at(list, i);
        const char *s = p->host->cfg_str(item);
        size_t k = 0;
        while (s && k < nnames && strcmp(s, names[k]) != 0)
            k++;
        if (!s || k == nnames) {
            p->host->cfg_error(p->err, item, "must be %s", expect);
            return -1;
        }
        if (bits & (1u << k)) {
            p->host->cfg_error(p->err, item, "is listed twice");
            return -1;
        }
        bits |= 1u << k;
    }
    *out = bits;
    return 0;
}

static int read_schemes(struct parse *p, const lintel_cfg *config, struct sig_conf *cf)
{
    static const char *const names[] = {"hmac", "params"}; /* bit order: SIG_SCHEME_* */
    const lintel_cfg *list;
    if (read_list(p, config, "schemes", &list) < 0)
        return -1;
    cf->schemes = SIG_SCHEME_HMAC;
    return list ? read_choices(p, list, names, 2, "hmac or params", &cf->schemes) : 0;
}

static int read_algorithms(struct parse *p, const lintel_cfg *config, struct sig_conf *cf)
{
    static const char *const names[] = {"hmac-sha1", "hmac-sha256", "hmac-sha512"};
    const lintel_cfg *list;
    if (read_list(p, config, "algorithms", &list) < 0)
        return -1;
    cf->algorithms = 1u << SIG_HMAC_SHA256 | 1u << SIG_HMAC_SHA512;
    return list ? read_choices(p, list, names, SIG_ALG_COUNT,
                               "hmac-sha1, hmac-sha256 or hmac-sha512", &cf->algorithms)
                : 0;
}

static int read_params_digest(struct parse *p, const lintel_cfg *config, struct sig_conf *cf)
{
    const lintel_cfg *n = p->host->cfg_get(config, "params_digest");
    const char *s = p->host->cfg_str(n);
    cf->params_digest = SIG_SHA256;
    if (!n)
        return 0;
    if (s && strcmp(s, "md5") == 0)
        cf->params_digest = SIG_MD5;
    else if (!s || strcmp(s, "sha256") != 0) {
        p->host->cfg_error(p->err, n, "must be md5 or sha256");
        return -1;
    }
    return 0;
}

static int read_limits(struct parse *p, const lintel_cfg *config, struct sig_conf *cf)
{
    const struct lintel_host_api *h = p->host;
    const lintel_cfg *n = h->cfg_get(config, "clock_skew");
    uint64_t ms;
    cf->skew_s = DEFAULT_SKEW_S;
    if (n) {
        if (h->cfg_duration_ms(n, &ms) < 0 || ms < 1000 || ms > MAX_SKEW_S * 1000ull) {
            h->cfg_error(p->err, n, "must be a duration from 1s to 24h");
            return -1;
        }
        cf->skew_s = (int64_t)(ms / 1000);
    }
    cf->max_body = DEFAULT_MAX_BODY;
    n = h->cfg_get(config, "max_body");
    if (n &&
        (h->cfg_size(n, &cf->max_body) < 0 || cf->max_body == 0 || cf->max_body > MAX_BODY_LIMIT)) {
        h->cfg_error(p->err, n, "must be a size from 1 to 1g");
        return -1;
    }
    return 0;
}

static int read_required_headers(struct parse *p, const lintel_cfg *config, struct sig_conf *cf)
{
    const struct lintel_host_api *h = p->host;
    const lintel_cfg *list;
    if (read_list(p, config, "required_headers", &list) < 0)
        return -1;
    if (!list)
        return 0;
    size_t n = h->cfg_len(list);
    cf->required_headers = calloc(n, sizeof(*cf->required_headers));
    if (!cf->required_headers) {
        h->cfg_error(p->err, list, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const lintel_cfg *item = h->cfg_at(list, i);
        const char *s = h->cfg_str(item);
        if (!s || !lintel_is_token(s, strlen(s))) {
            h->cfg_error(p->err, item, "must be a header name");
            return -1;
        }
        if (sig_ieq(s, strlen(s), "authorization")) {
            h->cfg_error(p->err, item, "cannot be signed (it carries the signature)");
            return -1;
        }
        cf->required_headers[cf->nrequired++] = s;
    }
    return 0;
}

static int read_replay(struct parse *p, const lintel_cfg *config, struct sig_conf *cf)
{
    const struct lintel_host_api *h = p->host;
    bool replay = true;
    if (read_bool(p, config, "replay_protection", &replay) < 0)
        return -1;
    const lintel_cfg *n = h->cfg_get(config, "nonce_capacity");
    int64_t capacity = DEFAULT_NONCE_CAPACITY;
    if (n && (h->cfg_int(n, &capacity) < 0 || capacity < MIN_NONCE_CAPACITY ||
              capacity > MAX_NONCE_CAPACITY)) {
        h->cfg_error(p->err, n, "must be an integer from %d to %d", MIN_NONCE_CAPACITY,
                     MAX_NONCE_CAPACITY);
        return -1;
    }
    if (!replay)
        return 0;
    cf->nonces = sig_nonce_acquire((size_t)capacity);
    if (!cf->nonces) {
        h->cfg_error(p->err, n, "out of memory for the replay store");
        return -1;
    }
    return 0;
}

/* ---- consumers' credentials ----------------------------------------------------------------- */

static bool key_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > KEY_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '~' || c == '-'))
            return false;
    }
    return true;
}

/* Reads one { key_id, secret } entry into k (its secret allocated). -1 after an error. */
static int read_key(struct parse *p, lintel_instance *self, const lintel_cfg *entry,
                    const struct lintel_consumer *c, struct sig_key *k)
{
    const struct lintel_host_api *h = p->host;
    static const char *const keys[] = {"key_id", "secret", NULL};
    if (lintel_cfg_require_map(h, entry, keys, p->err) < 0)
        return -1;
    const lintel_cfg *id = h->cfg_get(entry, "key_id"), *secret = h->cfg_get(entry, "secret");
    if (!id || !secret) {
        h->cfg_error(p->err, entry, "%s: required", id ? "secret" : "key_id");
        return -1;
    }
    const char *id_s = h->cfg_str(id);
    if (!id_s || !key_id_ok(id_s)) {
        h->cfg_error(p->err, id, "must be 1 to %d characters of A-Z a-z 0-9 . _ ~ -", KEY_ID_MAX);
        return -1;
    }
    if (h->cfg_type(secret) != LINTEL_CFG_SCALAR) {
        h->cfg_error(p->err, secret, "must be a string");
        return -1;
    }
    long len = h->secret(self, secret, NULL, 0);
    if (len < 0) {
        h->cfg_error(p->err, secret, "cannot be read (unset variable or unreadable file)");
        return -1;
    }
    if (len == 0 || len > SECRET_MAX) {
        h->cfg_error(p->err, secret, "must be 1 to %d bytes", SECRET_MAX);
        return -1;
    }
    k->secret = malloc((size_t)len);
    if (!k->secret) {
        h->cfg_error(p->err, secret, "out of memory");
        return -1;
    }
    /* Read again into the right size: the same source, so the same length (a file edited in
     * between is caught here). */
    if (h->secret(self, secret, (char *)k->secret, (size_t)len) != len) {
        h->cfg_error(p->err, secret, "changed while being read");
        return -1;
    }
    k->secret_len = (size_t)len;
    k->key_id = id_s;
    k->key_id_len = strlen(id_s);
    k->consumer = c->name;
    k->consumer_id = c->id;
    k->node = id;
    return 0;
}

static int key_cmp(const void *pa, const void *pb)
{
    const struct sig_key *a = pa, *b = pb;
    size_t n = a->key_id_len < b->key_id_len ? a->key_id_len : b->key_id_len;
    int c = memcmp(a->key_id, b->key_id, n);
    return c ? c : (a->key_id_len > b->key_id_len) - (a->key_id_len < b->key_id_len);
}

/* key_cmp, then file order: of two equal key_ids the later one is reported. */
static int key_order_cmp(const void *pa, const void *pb)
{
    const struct sig_key *a = pa, *b = pb;
    int c = key_cmp(a, b);
    return c ? c : (a->order > b->order) - (a->order < b->order);
}

/* The hmac list of a consumer's credentials (NULL: none), or -1 when it is not a list. */
static int hmac_list(struct parse *p, const struct lintel_consumer *c, const lintel_cfg **out)
{
    *out = c->credentials ? p->host->cfg_get(c->credentials, "hmac") : NULL;
    if (*out && p->host->cfg_type(*out) != LINTEL_CFG_LIST) {
        p->host->cfg_error(p->err, *out, "must be a list");
        return -1;
    }
    return 0;
}

static int read_keys(struct parse *p, lintel_instance *self, struct sig_conf *cf)
{
    const struct lintel_host_api *h = p->host;
    size_t nconsumers = h->consumer_count(self), total = 0;
    for (int pass = 0; pass < 2; pass++) { /* count, then fill */
        for (size_t i = 0; i < nconsumers; i++) {
            struct lintel_consumer c = {.struct_size = sizeof(c)};
            const lintel_cfg *list;
            if (h->consumer_at(self, i, &c) < 0 || hmac_list(p, &c, &list) < 0)
                return -1;
            for (size_t j = 0; list && j < h->cfg_len(list); j++) {
                if (pass == 0) {
                    total++;
                    continue;
                }
                struct sig_key *k = &cf->keys[cf->nkeys];
                k->order = cf->nkeys++; /* counted now: destroy frees a half-read key too */
                if (read_key(p, self, h->cfg_at(list, j), &c, k) < 0)
                    return -1;
            }
        }
        if (pass == 0 && total && !(cf->keys = calloc(total, sizeof(*cf->keys)))) {
            h->cfg_error(p->err, NULL, "out of memory");
            return -1;
        }
    }
    if (cf->nkeys > 1)
        qsort(cf->keys, cf->nkeys, sizeof(*cf->keys), key_order_cmp);
    for (size_t i = 1; i < cf->nkeys; i++) {
        if (key_cmp(&cf->keys[i - 1], &cf->keys[i]) == 0) {
            const struct sig_key *a = &cf->keys[i - 1], *b = &cf->keys[i];
            h->cfg_error(p->err, b->node, "is also a key_id of consumer %s", a->consumer);
            return -1;
        }
    }
    if (cf->nkeys == 0)
        h->log(self, LINTEL_LOG_LEVEL_WARN,
               "no consumer has credentials.hmac: every signed request will be refused");
    return 0;
}

const struct sig_key *sig_key_find(const struct sig_conf *cf, const char *id, size_t len)
{
    struct sig_key want = {.key_id = id, .key_id_len = len};
    return cf->nkeys ? bsearch(&want, cf->keys, cf->nkeys, sizeof(*cf->keys), key_cmp) : NULL;
}

/* ---- create / destroy ------------------------------------------------------------------------ */

void sig_destroy(void *instance)
{
    struct sig_conf *cf = instance;
    if (!cf)
        return;
    for (size_t i = 0; i < cf->nkeys; i++) {
        if (cf->keys[i].secret)
            OPENSSL_cleanse(cf->keys[i].secret, cf->keys[i].secret_len);
        free(cf->keys[i].secret);
    }
    free(cf->keys);
    free(cf->required_headers);
    sig_nonce_release(cf->nonces);
    free(cf);
}

static int check_keys(struct parse *p, const lintel_cfg *config)
{
    static const char *const keys[] = {
        "schemes",  "algorithms",       "params_digest",     "clock_skew",     "validate_body",
        "max_body", "required_headers", "replay_protection", "nonce_capacity", NULL};
    if (!config)
        return 0;
    return lintel_cfg_require_map(p->host, config, keys, p->err);
}

/* "HMAC-SHA256, HMAC-SHA512": the schemes a 401 offers in WWW-Authenticate. */
static void build_challenge(struct sig_conf *cf)
{
    size_t len = 0;
    for (int a = 0; (cf->schemes & SIG_SCHEME_HMAC) && a < SIG_ALG_COUNT; a++) {
        if (!(cf->algorithms & (1u << a)))
            continue;
        const char *name = sig_alg_name((enum sig_alg)a);
        size_t n = strlen(name);
        if (len) {
            memcpy(cf->challenge + len, ", ", 2);
            len += 2;
        }
        memcpy(cf->challenge + len, name, n);
        len += n;
    }
    cf->challenge[len] = '\0';
}

int sig_create(const struct lintel_host_api *host, lintel_instance *self, const lintel_cfg *config,
               lintel_cfg_error *err, void **instance)
{
    struct parse p = {host, err};
    if (check_keys(&p, config) < 0)
        return -1;
    struct sig_conf *cf = calloc(1, sizeof(*cf));
    if (!cf) {
        host->cfg_error(err, config, "out of memory");
        return -1;
    }
    cf->host = host;
    cf->self = self;
    if (read_schemes(&p, config, cf) < 0 || read_algorithms(&p, config, cf) < 0 ||
        read_params_digest(&p, config, cf) < 0 || read_limits(&p, config, cf) < 0 ||
        read_bool(&p, config, "validate_body", &cf->validate_body) < 0 ||
        read_required_headers(&p, config, cf) < 0 || read_keys(&p, self, cf) < 0 ||
        read_replay(&p, config, cf) < 0) {
        sig_destroy(cf);
        return -1;
    }
    build_challenge(cf);
    *instance = cf;
    return 0;
}
