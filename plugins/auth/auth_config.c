/* auth: create and destroy (main thread). Reads the plugin's config and, for the methods it
 * lists, the consumers' credentials, into lookup tables that workers only read. Secrets are
 * resolved through host->secret (literal, env:NAME, file:PATH); API keys are kept only as their
 * SHA-256. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include <lintel/config.h>
#include <lintel/text.h>

#include "auth-internal.h"

#define PEM_FILE_MAX 65536

struct build {
    const struct lintel_host_api *h;
    lintel_instance *self;
    lintel_cfg_error *err;
    struct auth *a;
};

static const char *const method_names[AUTH_NMETHODS] = {"key", "basic", "jwt", "external"};

static int fail(struct build *b, const lintel_cfg *node, const char *msg)
{
    b->h->cfg_error(b->err, node, "%s", msg);
    return -1;
}

/* ---- small readers ------------------------------------------------------------------------ */

static int read_string(struct build *b, const lintel_cfg *map, const char *key, const char **out)
{
    const lintel_cfg *n = b->h->cfg_get(map, key);
    if (!n)
        return 0;
    const char *s = b->h->cfg_str(n);
    if (!s)
        return fail(b, n, "must be a string");
    if (!*s)
        return fail(b, n, "must not be empty");
    *out = s;
    return 0;
}

static int read_bool(struct build *b, const lintel_cfg *map, const char *key, int *out)
{
    const lintel_cfg *n = b->h->cfg_get(map, key);
    return n && b->h->cfg_bool(n, out) < 0 ? fail(b, n, "must be true or false") : 0;
}

static int read_duration(struct build *b, const lintel_cfg *map, const char *key, uint64_t *out)
{
    const lintel_cfg *n = b->h->cfg_get(map, key);
    return n && b->h->cfg_duration_ms(n, out) < 0 ? fail(b, n, "must be a duration") : 0;
}

/* A query argument or cookie name: printable, none of the separators around it. */
static int is_arg_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f || strchr("&=;#?,", *s))
            return 0;
    return 1;
}

enum name_kind { HEADER_NAMES, ARG_NAMES };

/* map.key: a list of names, or dflt (a NULL-terminated list) when absent. */
static int read_names(struct build *b, const lintel_cfg *map, const char *key, enum name_kind kind,
                      const char *const *dflt, struct auth_names *out)
{
    const lintel_cfg *list = map ? b->h->cfg_get(map, key) : NULL;
    size_t n = 0;
    if (list && b->h->cfg_type(list) != LINTEL_CFG_LIST)
        return fail(b, list, "must be a list");
    if (list)
        n = b->h->cfg_len(list);
    else
        while (dflt[n])
            n++;
    out->v = calloc(n ? n : 1, sizeof(*out->v));
    if (!out->v)
        return fail(b, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const lintel_cfg *item = list ? b->h->cfg_at(list, i) : NULL;
        const char *s = list ? b->h->cfg_str(item) : dflt[i];
        if (!s)
            return fail(b, item, "must be a string");
        if (kind == HEADER_NAMES ? !lintel_is_token(s, strlen(s)) : !is_arg_name(s))
            return fail(b, item,
                        kind == HEADER_NAMES ? "must be a header name"
                                             : "must be a query or cookie name");
        out->v[out->n++] = s;
    }
    return 0;
}

static void names_free(struct auth_names *n)
{
    free(n->v);
    *n = (struct auth_names){0};
}

static void secret_free(unsigned char *s, size_t len)
{
    if (s)
        OPENSSL_cleanse(s, len);
    free(s);
}

/* The secret at node, resolved, in a new NUL-terminated buffer (free with secret_free), or NULL
 * after cfg_error. */
static unsigned char *read_secret(struct build *b, const lintel_cfg *node, size_t *len)
{
    char probe;
    if (b->h->cfg_type(node) != LINTEL_CFG_SCALAR) {
        fail(b, node, "must be a string");
        return NULL;
    }
    long n = b->h->secret(b->self, node, &probe, 0);
    if (n < 0) {
        fail(b, node, "cannot resolve secret (unset env: variable or unreadable file:)");
        return NULL;
    }
    if (n == 0) {
        fail(b, node, "must not be empty");
        return NULL;
    }
    unsigned char *s = malloc((size_t)n + 1);
    if (!s) {
        fail(b, node, "out of memory");
        return NULL;
    }
    if (b->h->secret(b->self, node, (char *)s, (size_t)n) != n) {
        secret_free(s, (size_t)n);
        fail(b, node, "secret changed while read");
        return NULL;
    }
    s[n] = '\0';
    *len = (size_t)n;
    return s;
}

/* Calls each(b, consumer, item) for node, a map or a list of maps. */
static int each_item(struct build *b, uint32_t consumer, const lintel_cfg *node,
                     int (*each)(struct build *, uint32_t, const lintel_cfg *))
{
    if (!node)
        return 0;
    if (b->h->cfg_type(node) == LINTEL_CFG_MAP)
        return each(b, consumer, node);
    if (b->h->cfg_type(node) != LINTEL_CFG_LIST)
        return fail(b, node, "must be a map or a list of maps");
    for (size_t i = 0; i < b->h->cfg_len(node); i++)
        if (each(b, consumer, b->h->cfg_at(node, i)) < 0)
            return -1;
    return 0;
}

/* table.put for a credential of consumer; a credential already taken is an error at node. */
static int put_unique(struct build *b, struct auth_table *t, const void *k, size_t len,
                      uint32_t value, const lintel_cfg *node, const char *what,
                      uint32_t (*owner)(const struct auth *, uint32_t))
{
    uint32_t prev;
    int rc = auth_table_put(t, b->a->sha256, k, len, value, &prev);
    if (rc < 0)
        return fail(b, node, "out of memory");
    if (rc > 0) {
        b->h->cfg_error(b->err, node, "%s already used by consumer %s", what,
                        b->a->consumers[owner(b->a, prev)].name);
        return -1;
    }
    return 0;
}

static uint32_t owner_direct(const struct auth *a, uint32_t v)
{
    (void)a;
    return v;
}

static uint32_t owner_basic(const struct auth *a, uint32_t v)
{
    return a->basic[v].consumer;
}

static uint32_t owner_jwt(const struct auth *a, uint32_t v)
{
    return a->jwt[v].consumer;
}

/* ---- credentials -------------------------------------------------------------------------- */

static int read_keys(struct build *b, uint32_t consumer, const lintel_cfg *list)
{
    if (!list)
        return 0;
    if (b->h->cfg_type(list) != LINTEL_CFG_LIST)
        return fail(b, list, "must be a list");
    for (size_t i = 0; i < b->h->cfg_len(list); i++) {
        const lintel_cfg *item = b->h->cfg_at(list, i);
        size_t len;
        unsigned char *k = read_secret(b, item, &len);
        if (!k)
            return -1;
        int rc = put_unique(b, &b->a->keys, k, len, consumer, item, "key", owner_direct);
        secret_free(k, len);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int read_basic(struct build *b, uint32_t consumer, const lintel_cfg *m)
{
    static const char *const keys[] = {"user", "password_sha256", NULL};
    struct auth *a = b->a;
    const char *user = NULL;
    if (lintel_cfg_require_map(b->h, m, keys, b->err) < 0 || read_string(b, m, "user", &user) < 0)
        return -1;
    if (!user)
        return fail(b, m, "user: required");
    if (strchr(user, ':'))
        return fail(b, b->h->cfg_get(m, "user"), "must not contain ':'");
    const lintel_cfg *pw = b->h->cfg_get(m, "password_sha256");
    if (!pw)
        return fail(b, m, "password_sha256: required");
    struct auth_basic_cred *v = realloc(a->basic, (a->nbasic + 1) * sizeof(*v));
    if (!v)
        return fail(b, m, "out of memory");
    a->basic = v;
    size_t len;
    unsigned char *text = read_secret(b, pw, &len);
    if (!text)
        return -1;
    struct auth_basic_cred *c = &a->basic[a->nbasic];
    *c = (struct auth_basic_cred){.consumer = consumer};
    int rc = auth_password_parse((const char *)text, len, &c->password);
    secret_free(text, len);
    if (rc < 0)
        return fail(b, pw, "must be \"salt$hex\" (hex of sha256(salt + password))");
    a->nbasic++;
    return put_unique(b, &a->users, user, strlen(user), (uint32_t)(a->nbasic - 1),
                      b->h->cfg_get(m, "user"), "user", owner_basic);
}

/* The PEM text of a JWT public key, from public_key_file (a path) or public_key (a secret), in
 * a new buffer (free with secret_free); NULL after cfg_error. */
static unsigned char *read_pem(struct build *b, const lintel_cfg *m, size_t *len)
{
    const lintel_cfg *file = b->h->cfg_get(m, "public_key_file");
    const lintel_cfg *inline_key = b->h->cfg_get(m, "public_key");
    const char *path = b->h->cfg_str(file), *why = NULL;
    if (file && inline_key) {
        fail(b, inline_key, "give public_key_file or public_key, not both");
        return NULL;
    }
    if (inline_key)
        return read_secret(b, inline_key, len);
    if (!file || !path || !*path) {
        fail(b, file ? file : m, file ? "must be a file path" : "public_key_file: required");
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        b->h->cfg_error(b->err, file, "cannot read: %s", strerror(errno));
        return NULL;
    }
    unsigned char *pem = malloc(PEM_FILE_MAX);
    *len = pem ? fread(pem, 1, PEM_FILE_MAX, f) : 0;
    if (!pem)
        why = "out of memory";
    else if (!feof(f))
        why = "too large for a public key";
    fclose(f);
    if (why) {
        fail(b, file, why);
        free(pem);
        return NULL;
    }
    return pem;
}

static int read_jwt(struct build *b, uint32_t consumer, const lintel_cfg *m)
{
    static const char *const keys[] = {"issuer",          "algorithm",  "secret",
                                       "public_key_file", "public_key", NULL};
    struct auth *a = b->a;
    const char *issuer = NULL, *alg_name = "HS256";
    if (lintel_cfg_require_map(b->h, m, keys, b->err) < 0 ||
        read_string(b, m, "issuer", &issuer) < 0 || read_string(b, m, "algorithm", &alg_name) < 0)
        return -1;
    if (!issuer)
        return fail(b, m, "issuer: required");
    enum auth_jwt_alg alg;
    if (auth_jwt_alg_parse(alg_name, strlen(alg_name), &alg) < 0)
        return fail(b, b->h->cfg_get(m, "algorithm"),
                    "must be HS256, HS384, HS512, RS256 or ES256");
    struct auth_jwt_key *v = realloc(a->jwt, (a->njwt + 1) * sizeof(*v));
    if (!v)
        return fail(b, m, "out of memory");
    a->jwt = v;
    struct auth_jwt_key *k = &a->jwt[a->njwt];
    *k = (struct auth_jwt_key){.alg = alg, .consumer = consumer};
    a->njwt++; /* from here on, destroy frees what k holds */
    const lintel_cfg *secret = b->h->cfg_get(m, "secret");
    const lintel_cfg *at = secret;
    unsigned char *text = NULL;
    size_t len = 0;
    const char *why = NULL;
    if (alg <= AUTH_HS512) {
        if (!secret)
            return fail(b, m, "secret: required");
        if (b->h->cfg_get(m, "public_key_file") || b->h->cfg_get(m, "public_key"))
            return fail(b, m, "a public key is for RS256 and ES256; HS* takes a secret");
        if (!(text = read_secret(b, secret, &len)))
            return -1;
    } else {
        if (secret)
            return fail(b, secret, "RS256 and ES256 take a public key, not a secret");
        at = b->h->cfg_get(m, "public_key_file");
        if (!at)
            at = b->h->cfg_get(m, "public_key");
        unsigned char *pem = read_pem(b, m, &len);
        if (!pem)
            return -1;
        k->pkey = auth_jwt_load_key((const char *)pem, len, alg, &why);
        secret_free(pem, len);
        len = 0;
        if (!k->pkey)
            return fail(b, at, why);
    }
    int rc = auth_jwt_key_prepare(k, a->sha256, text, len, &why);
    secret_free(text, len);
    if (rc < 0)
        return fail(b, at, why);
    return put_unique(b, &a->issuers, issuer, strlen(issuer), (uint32_t)(a->njwt - 1),
                      b->h->cfg_get(m, "issuer"), "issuer", owner_jwt);
}

static int uses(const struct auth *a, enum auth_method m)
{
    for (unsigned i = 0; i < a->nmethods; i++)
        if (a->methods[i] == m)
            return 1;
    return 0;
}

/* The consumers (host->consumer_at), and the credentials the listed methods need. Credential
 * kinds this plugin does not read (hmac, ...) belong to other plugins and are left alone. */
static int read_consumers(struct build *b)
{
    struct auth *a = b->a;
    size_t n = b->h->consumer_count ? b->h->consumer_count(b->self) : 0;
    a->consumers = calloc(n ? n : 1, sizeof(*a->consumers));
    if (!a->consumers)
        return fail(b, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        struct lintel_consumer c = {.struct_size = sizeof(c)};
        if (b->h->consumer_at(b->self, i, &c) < 0)
            return fail(b, NULL, "cannot read the consumers");
        a->consumers[i] =
            (struct auth_consumer){c.name, c.id, strlen(c.name), c.id ? strlen(c.id) : 0};
        a->nconsumers = i + 1;
        if (auth_table_put(&a->by_name, a->sha256, c.name, a->consumers[i].name_len, (uint32_t)i,
                           NULL) < 0)
            return fail(b, NULL, "out of memory");
        const lintel_cfg *cred = c.credentials;
        if (!cred)
            continue;
        if ((uses(a, AUTH_KEY) && read_keys(b, (uint32_t)i, b->h->cfg_get(cred, "keys")) < 0) ||
            (uses(a, AUTH_BASIC) &&
             each_item(b, (uint32_t)i, b->h->cfg_get(cred, "basic"), read_basic) < 0) ||
            (uses(a, AUTH_JWT) &&
             each_item(b, (uint32_t)i, b->h->cfg_get(cred, "jwt"), read_jwt) < 0))
            return -1;
    }
    return 0;
}

/* ---- the plugin's config ------------------------------------------------------------------ */

static int read_methods(struct build *b, const lintel_cfg *list)
{
    struct auth *a = b->a;
    if (!list)
        return fail(b, NULL, "methods: required");
    if (b->h->cfg_type(list) != LINTEL_CFG_LIST)
        return fail(b, list, "must be a list");
    if (b->h->cfg_len(list) == 0)
        return fail(b, list, "must not be empty");
    for (size_t i = 0; i < b->h->cfg_len(list); i++) {
        const lintel_cfg *item = b->h->cfg_at(list, i);
        const char *s = b->h->cfg_str(item);
        int m = 0;
        while (m < AUTH_NMETHODS && !(s && strcmp(s, method_names[m]) == 0))
            m++;
        if (m == AUTH_NMETHODS)
            return fail(b, item, "must be key, basic, jwt or external");
        if (uses(a, (enum auth_method)m))
            return fail(b, item, "listed twice");
        a->methods[a->nmethods++] = (enum auth_method)m;
    }
    return 0;
}

/* The options map of method m: NULL when absent; an error when given for an unlisted method. */
static int method_options(struct build *b, const lintel_cfg *config, enum auth_method m,
                          const char *const *keys, const lintel_cfg **out)
{
    *out = b->h->cfg_get(config, method_names[m]);
    if (!*out)
        return 0;
    if (!uses(b->a, m))
        return fail(b, *out, "options for a method not in methods");
    return lintel_cfg_require_map(b->h, *out, keys, b->err);
}

static int external_identity(struct build *b, struct auth_external *e)
{
    const char *parts[3 + AUTH_UPSTREAM_HEADERS_MAX];
    size_t n = 0;
    parts[n++] = e->url;
    parts[n++] = e->method;
    parts[n++] = e->consumer_header ? e->consumer_header : "";
    for (size_t i = 0; i < e->upstream.n; i++)
        parts[n++] = e->upstream.v[i];
    return auth_sha256_list(b->a->sha256, NULL, 0, parts, n, e->identity) < 0
               ? fail(b, NULL, "sha256 failed")
               : 0;
}

static int read_external(struct build *b, const lintel_cfg *m)
{
    static const char *const dflt_forward[] = {"Authorization", NULL};
    static const char *const dflt_denial[] = {"WWW-Authenticate", "Location", NULL};
    static const char *const none[] = {NULL};
    struct auth_external *e = &b->a->ext;
    e->method = "GET";
    e->timeout_ms = 2000;
    if (!m)
        return fail(b, NULL, "external: required (url)");
    if (read_string(b, m, "url", &e->url) < 0 || read_string(b, m, "method", &e->method) < 0 ||
        read_string(b, m, "consumer_header", &e->consumer_header) < 0 ||
        read_duration(b, m, "timeout", &e->timeout_ms) < 0 ||
        read_duration(b, m, "cache_ttl", &e->cache_ttl_ms) < 0 ||
        read_bool(b, m, "allow_degradation", &e->allow_degradation) < 0 ||
        read_names(b, m, "forward_headers", HEADER_NAMES, dflt_forward, &e->forward) < 0 ||
        read_names(b, m, "upstream_headers", HEADER_NAMES, none, &e->upstream) < 0 ||
        read_names(b, m, "denial_headers", HEADER_NAMES, dflt_denial, &e->denial) < 0)
        return -1;
    if (!e->url)
        return fail(b, m, "url: required");
    if ((strncmp(e->url, "http://", 7) != 0 && strncmp(e->url, "https://", 8) != 0) ||
        strpbrk(e->url, " \t\r\n"))
        return fail(b, b->h->cfg_get(m, "url"), "must be an http:// or https:// URL");
    if (!lintel_is_token(e->method, strlen(e->method)))
        return fail(b, b->h->cfg_get(m, "method"), "must be an HTTP method");
    if (e->consumer_header && !lintel_is_token(e->consumer_header, strlen(e->consumer_header)))
        return fail(b, b->h->cfg_get(m, "consumer_header"), "must be a header name");
    if (e->timeout_ms == 0)
        return fail(b, b->h->cfg_get(m, "timeout"), "must be positive");
    if (e->upstream.n > AUTH_UPSTREAM_HEADERS_MAX)
        return fail(b, b->h->cfg_get(m, "upstream_headers"), "at most 32 names");
    return external_identity(b, e);
}

/* WWW-Authenticate values for the 401, one per method that has a scheme. */
static int make_challenges(struct build *b, const char *realm)
{
    struct auth *a = b->a;
    static const char *const fmt[AUTH_NMETHODS] = {
        "Key realm=\"%s\"", "Basic realm=\"%s\", charset=\"UTF-8\"", "Bearer realm=\"%s\"", NULL};
    for (int m = 0; m < AUTH_NMETHODS; m++) {
        if (!fmt[m] || !uses(a, (enum auth_method)m))
            continue;
        size_t n = strlen(fmt[m]) + strlen(realm);
        if (!(a->challenge[m] = malloc(n)))
            return fail(b, NULL, "out of memory");
        snprintf(a->challenge[m], n, fmt[m], realm);
    }
    if (uses(a, AUTH_JWT)) {
        size_t n = strlen(a->challenge[AUTH_JWT]) + sizeof(", error=\"invalid_token\"");
        if (!(a->bearer_invalid = malloc(n)))
            return fail(b, NULL, "out of memory");
        snprintf(a->bearer_invalid, n, "%s, error=\"invalid_token\"", a->challenge[AUTH_JWT]);
    }
    return 0;
}

static int read_config(struct build *b, const lintel_cfg *config)
{
    static const char *const top[] = {
        "methods", "key", "jwt", "external", "realm", "anonymous", "hide_credentials", NULL};
    static const char *const key_keys[] = {"headers", "query", NULL};
    static const char *const jwt_keys[] = {"headers", "query", "cookies", "leeway", NULL};
    static const char *const ext_keys[] = {"url",
                                           "method",
                                           "timeout",
                                           "forward_headers",
                                           "upstream_headers",
                                           "denial_headers",
                                           "consumer_header",
                                           "cache_ttl",
                                           "allow_degradation",
                                           NULL};
    static const char *const dflt_apikey[] = {"apikey", NULL};
    static const char *const dflt_auth[] = {"Authorization", NULL};
    static const char *const none[] = {NULL};
    struct auth *a = b->a;
    if (!config)
        return fail(b, NULL, "required (methods)");
    const lintel_cfg *key, *jwt, *ext;
    const char *realm = "lintel", *anonymous = NULL;
    uint64_t leeway_ms = 0;
    if (lintel_cfg_require_map(b->h, config, top, b->err) < 0 ||
        read_methods(b, b->h->cfg_get(config, "methods")) < 0 ||
        method_options(b, config, AUTH_KEY, key_keys, &key) < 0 ||
        method_options(b, config, AUTH_JWT, jwt_keys, &jwt) < 0 ||
        method_options(b, config, AUTH_EXTERNAL, ext_keys, &ext) < 0 ||
        read_string(b, config, "realm", &realm) < 0 ||
        read_string(b, config, "anonymous", &anonymous) < 0 ||
        read_bool(b, config, "hide_credentials", &a->hide_credentials) < 0)
        return -1;
    for (const char *p = realm; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\')
            return fail(b, b->h->cfg_get(config, "realm"),
                        "must not contain quotes, backslashes or control characters");
    if (uses(a, AUTH_KEY) &&
        (read_names(b, key, "headers", HEADER_NAMES, dflt_apikey, &a->key_headers) < 0 ||
         read_names(b, key, "query", ARG_NAMES, dflt_apikey, &a->key_query) < 0))
        return -1;
    if (uses(a, AUTH_JWT) &&
        (read_names(b, jwt, "headers", HEADER_NAMES, dflt_auth, &a->jwt_headers) < 0 ||
         read_names(b, jwt, "query", ARG_NAMES, none, &a->jwt_query) < 0 ||
         read_names(b, jwt, "cookies", ARG_NAMES, none, &a->jwt_cookies) < 0 ||
         read_duration(b, jwt, "leeway", &leeway_ms) < 0))
        return -1;
    if (leeway_ms > 86400000)
        return fail(b, b->h->cfg_get(jwt, "leeway"), "must be at most 1d");
    a->jwt_leeway = (int64_t)(leeway_ms / 1000);
    if (uses(a, AUTH_EXTERNAL) && read_external(b, ext) < 0)
        return -1;
    if (make_challenges(b, realm) < 0 || read_consumers(b) < 0)
        return -1;
    a->anonymous = AUTH_NO_CONSUMER;
    if (anonymous &&
        auth_table_get(&a->by_name, a->sha256, anonymous, strlen(anonymous), &a->anonymous) < 0)
        return fail(b, b->h->cfg_get(config, "anonymous"), "not a declared consumer");
    return 0;
}

void auth_config_destroy(void *instance)
{
    struct auth *a = instance;
    if (!a)
        return;
    for (int m = 0; m < AUTH_NMETHODS; m++)
        free(a->challenge[m]);
    free(a->bearer_invalid);
    free(a->consumers);
    auth_table_free(&a->by_name);
    names_free(&a->key_headers);
    names_free(&a->key_query);
    auth_table_free(&a->keys);
    for (size_t i = 0; i < a->nbasic; i++)
        auth_password_free(&a->basic[i].password);
    free(a->basic);
    auth_table_free(&a->users);
    names_free(&a->jwt_headers);
    names_free(&a->jwt_query);
    names_free(&a->jwt_cookies);
    for (size_t i = 0; i < a->njwt; i++)
        auth_jwt_key_free(&a->jwt[i]);
    free(a->jwt);
    auth_table_free(&a->issuers);
    for (unsigned i = 0; i < a->nmd_ctx; i++)
        EVP_MD_CTX_free(a->md_ctx[i]);
    free(a->md_ctx);
    EVP_MD_free(a->sha256);
    names_free(&a->ext.forward);
    names_free(&a->ext.upstream);
    names_free(&a->ext.denial);
    free(a);
}

EVP_MD_CTX *auth_md_ctx(const struct auth *a, lintel_req *r)
{
    unsigned w = a->host->req_worker(r);
    return w < a->nmd_ctx ? a->md_ctx[w] : NULL;
}

int auth_config_create(const struct lintel_host_api *host, lintel_instance *self,
                       const lintel_cfg *config, lintel_cfg_error *err, void **instance)
{
    struct auth *a = calloc(1, sizeof(*a));
    if (!a) {
        host->cfg_error(err, NULL, "out of memory");
        return -1;
    }
    a->host = host;
    a->self = self;
    struct build b = {.h = host, .self = self, .err = err, .a = a};
    if (!(a->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL))) {
        host->cfg_error(err, NULL, "OpenSSL has no SHA-256");
        auth_config_destroy(a);
        return -1;
    }
    /* One digest context per worker, so that hashing a presented key allocates nothing. */
    unsigned nw = host->worker_count();
    a->md_ctx = nw ? calloc(nw, sizeof(*a->md_ctx)) : NULL;
    for (unsigned i = 0; a->md_ctx && i < nw; i++) {
        if (!(a->md_ctx[i] = EVP_MD_CTX_new()))
            break;
        a->nmd_ctx = i + 1;
    }
    if (read_config(&b, config) < 0) {
        auth_config_destroy(a);
        return -1;
    }
    *instance = a;
    return 0;
}
