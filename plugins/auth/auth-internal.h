/* auth: what the plugin's files share. Nothing here is exported from auth.so (the plugin is built
 * with hidden visibility; only lintel_plugin_v1 is visible).
 *
 *   auth.c           the descriptor, the ACCESS handler: tries the methods, allows or refuses
 *   auth_config.c    create/destroy: the plugin's config and the consumers' credentials
 *   auth_methods.c   request time of the key, basic and jwt methods
 *   auth_external.c  request time of the external (forward-auth) method
 *   auth_jwt.c       JWT parsing and signature checks (pure: no host calls)
 *   auth_json.c      the little JSON a JWT needs (pure)
 *   auth_crypto.c    SHA-256, constant-time compare, base64, digest tables, salted passwords */
#ifndef LINTEL_AUTH_INTERNAL_H
#define LINTEL_AUTH_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include <lintel/plugin.h>

#define AUTH_DIGEST_LEN 32           /* SHA-256 */
#define AUTH_NO_CONSUMER UINT32_MAX  /* a consumer index that is none */
#define AUTH_TOKEN_MAX (16 * 1024)   /* a longer JWT is refused as malformed */
#define AUTH_CACHE_VALUE_MAX 4096    /* the host's cache value limit (core/main.c) */
#define AUTH_UPSTREAM_HEADERS_MAX 32 /* external.upstream_headers */

/* ---- crypto and tables (auth_crypto.c; pure, any thread) ---------------------------------- */

/* The functions taking md hash with it: SHA-256 fetched once (EVP_MD_fetch, at create) so that
 * requests do not look the algorithm up in OpenSSL's locked store each time; NULL falls back to
 * EVP_sha256() (tests, create-time code). */

/* SHA-256 of a[0..alen) followed by b[0..blen) (b may be NULL when blen is 0). 0, or -1 when
 * OpenSSL fails. */
int auth_sha256(const EVP_MD *md, const void *a, size_t alen, const void *b, size_t blen,
                unsigned char out[AUTH_DIGEST_LEN]);

/* SHA-256 of prefix[0..plen) followed by each string of list[0..n) with its NUL (so that the
 * strings stay apart). 0, or -1 when OpenSSL fails. */
int auth_sha256_list(const EVP_MD *md, const void *prefix, size_t plen, const char *const *list,
                     size_t n, unsigned char out[AUTH_DIGEST_LEN]);

/* 1 when a[0..alen) equals b[0..blen), in time that depends only on the lengths. */
int auth_equal(const void *a, size_t alen, const void *b, size_t blen);

/* Decodes base64 (url = 0: "+/" with optional "=" padding, as in Basic credentials) or base64url
 * (url = 1: "-_" without padding, as in JWT) from in[0..len) into out. Non-canonical input (bad
 * characters, misplaced padding, non-zero spare bits) is refused. Returns the decoded length, or
 * -1 when the input is invalid or out (cap bytes) is too small (len * 3 / 4 bytes always
 * suffice). */
long auth_base64_decode(const char *in, size_t len, int url, unsigned char *out, size_t cap);

/* An open-addressing table from the SHA-256 of a byte string to a uint32_t. Lookups compare whole
 * digests with CRYPTO_memcmp, so their time says nothing about a secret key looked up. Filled at
 * create time (main thread), then only read (any thread). */
struct auth_table {
    struct auth_slot *slots;
    size_t mask; /* slot count - 1 (a power of two); slots == NULL: empty table */
    size_t used;
};

/* Adds key -> value. Returns 0; 1 when key is already there (*existing, if not NULL, gets its
 * value and nothing changes); -1 when out of memory. */
int auth_table_put(struct auth_table *t, const EVP_MD *md, const void *key, size_t len,
                   uint32_t value, uint32_t *existing);

/* The value of key in *value: 0, or -1 when absent (or when hashing fails). */
int auth_table_get(const struct auth_table *t, const EVP_MD *md, const void *key, size_t len,
                   uint32_t *value);
/* The same, hashing with ctx (reused from call to call: no allocation per lookup; NULL: a
 * context of its own, as auth_table_get). */
int auth_table_get_ctx(const struct auth_table *t, const EVP_MD *md, EVP_MD_CTX *ctx,
                       const void *key, size_t len, uint32_t *value);

void auth_table_free(struct auth_table *t);

/* A salted password hash: "SALT$HEX", HEX the 64 hex digits of sha256(SALT + password). */
struct auth_password {
    unsigned char *salt; /* malloc'd; free with auth_password_free */
    size_t salt_len;
    unsigned char hash[AUTH_DIGEST_LEN];
};

/* Parses text[0..len) into p. 0, or -1 when it is not "SALT$HEX" with a non-empty salt (or out
 * of memory). */
int auth_password_parse(const char *text, size_t len, struct auth_password *p);

/* 1 when password[0..len) matches p, 0 otherwise (also on an OpenSSL failure). */
int auth_password_check(const struct auth_password *p, const EVP_MD *md, const char *password,
                        size_t len);

void auth_password_free(struct auth_password *p);

/* Splits an Authorization value "Basic BASE64(user:password)" (scheme case-insensitive). Returns
 * 1 with user and password pointing into out (cap bytes, at least len); 0 when the value is not
 * of the Basic scheme; -1 when it is but the credentials are malformed. */
int auth_basic_parse(const char *value, size_t len, unsigned char *out, size_t cap,
                     struct lintel_str *user, struct lintel_str *password);

/* ---- JSON (auth_json.c; pure) -------------------------------------------------------------- */

/* Scans the JSON object json[0..len) and sets out[i] to the raw text of the value of the top-level
 * member names[i] (a string keeps its quotes), {NULL,0} when absent. Returns 0, or -1 when the
 * text is not one well-formed object (nesting deeper than 32 counts as malformed), when a
 * member name holds an escape, or when a wanted name appears twice. */
int auth_json_members(const char *json, size_t len, const char *const *names, size_t n,
                      struct lintel_str *out);

/* Unescapes a raw JSON string value (with its quotes) into out (cap bytes). Returns the length,
 * or -1 when raw is not a string or out is too small. len(raw) bytes always suffice. */
long auth_json_string(struct lintel_str raw, char *out, size_t cap);

/* A raw JSON number as whole seconds (fractions dropped toward minus infinity). 0, or -1 when
 * raw is not a number or is out of the int64 range. */
int auth_json_seconds(struct lintel_str raw, int64_t *out);

/* ---- JWT (auth_jwt.c; pure) ---------------------------------------------------------------- */

enum auth_jwt_alg { AUTH_HS256, AUTH_HS384, AUTH_HS512, AUTH_RS256, AUTH_ES256 };

/* The algorithm called name ("HS256", ...): 0, or -1 for any other (including "none"). */
int auth_jwt_alg_parse(const char *name, size_t len, enum auth_jwt_alg *out);

/* One consumer's key for one issuer. Everything OpenSSL needs is prepared at create time: a
 * request only duplicates a template (no algorithm fetch, no key setup). Read-only afterwards,
 * shared by the workers. */
struct auth_jwt_key {
    enum auth_jwt_alg alg;
    EVP_MAC_CTX *hmac;    /* HS*: HMAC keyed with the secret */
    EVP_PKEY *pkey;       /* RS256, ES256: the public key */
    EVP_PKEY_CTX *verify; /* RS256, ES256: initialised for verifying SHA-256 digests */
    const EVP_MD *sha256; /* borrowed (the instance's) */
    uint32_t consumer;
};

/* Parses a PEM public key (SubjectPublicKeyInfo) for alg: RSA of 2048 bits or more for RS256, an
 * EC P-256 key for ES256. Returns the key, or NULL with *why set to a short phrase. */
EVP_PKEY *auth_jwt_load_key(const char *pem, size_t len, enum auth_jwt_alg alg, const char **why);

/* Prepares k (alg, and pkey for RS256/ES256, set by the caller) for verifying: the HMAC keyed
 * with secret[0..len) (copied), or the verify context. sha256 is borrowed and must outlive k.
 * 0, or -1 with *why set. Free with auth_jwt_key_free (also after a failure). */
int auth_jwt_key_prepare(struct auth_jwt_key *k, const EVP_MD *sha256, const void *secret,
                         size_t len, const char **why);
void auth_jwt_key_free(struct auth_jwt_key *k);

/* The key for issuer iss[0..len), or NULL. */
typedef const struct auth_jwt_key *(*auth_jwt_lookup_fn)(void *arg, const char *iss, size_t len);

/* Scratch bytes auth_jwt_verify needs for a token of len bytes. */
size_t auth_jwt_scratch_size(size_t len);

/* Verifies a compact JWS token[0..len) at time now (Unix seconds) with leeway seconds for exp
 * and nbf: the header's alg must be exactly the algorithm of the key that the payload's iss
 * selects (so an HS256 token never meets an RSA key), the signature must verify, then exp and
 * nbf must hold. scratch (auth_jwt_scratch_size(len) bytes) holds decoded parts. Returns NULL
 * with *key set on success, or the reason for refusing ("malformed token", "unknown issuer",
 * "invalid signature", "token expired", ...: static strings). */
const char *auth_jwt_verify(const char *token, size_t len, int64_t now, int64_t leeway,
                            auth_jwt_lookup_fn lookup, void *arg, unsigned char *scratch,
                            size_t cap, const struct auth_jwt_key **key);

/* ---- the instance (auth_config.c builds it at create; workers only read it) ---------------- */

enum auth_method { AUTH_KEY, AUTH_BASIC, AUTH_JWT, AUTH_EXTERNAL, AUTH_NMETHODS };

/* A list of names borrowed from the config tree (lives as long as the instance). */
struct auth_names {
    const char **v;
    size_t n;
};

struct auth_consumer {
    const char *name;        /* borrowed from the host: lives as long as the instance */
    const char *id;          /* may be NULL */
    size_t name_len, id_len; /* measured once, at create */
};

struct auth_basic_cred {
    struct auth_password password;
    uint32_t consumer;
};

struct auth_external {
    const char *url, *method; /* borrowed from the config */
    uint64_t timeout_ms;
    struct auth_names forward;   /* request headers sent to the service */
    struct auth_names upstream;  /* service response headers copied to the request on allow */
    struct auth_names denial;    /* service response headers passed to the client on denial */
    const char *consumer_header; /* service response header naming the consumer, or NULL */
    uint64_t cache_ttl_ms;       /* 0: no cache */
    int allow_degradation;
    /* SHA-256 of what shapes a cached decision (url, method, consumer and upstream headers):
     * part of every cache key, so that two instances sharing a cache namespace (same plugin
     * and instance name on two routes) never share decisions. */
    unsigned char identity[AUTH_DIGEST_LEN];
};

struct auth {
    const struct lintel_host_api *host;
    lintel_instance *self;
    enum auth_method methods[AUTH_NMETHODS];
    unsigned nmethods;
    int hide_credentials;
    uint32_t anonymous;  /* consumer index, or AUTH_NO_CONSUMER */
    EVP_MD *sha256;      /* fetched once: see auth_sha256 */
    EVP_MD_CTX **md_ctx; /* one per worker (auth_md_ctx), nmd_ctx of them */
    unsigned nmd_ctx;
    char *challenge[AUTH_NMETHODS]; /* WWW-Authenticate value per method (NULL: none) */
    char *bearer_invalid;           /* the Bearer challenge with error="invalid_token" */

    struct auth_consumer *consumers;
    size_t nconsumers;
    struct auth_table by_name; /* consumer name -> index */

    struct auth_names key_headers, key_query;
    struct auth_table keys; /* API key -> consumer */

    struct auth_basic_cred *basic;
    size_t nbasic;
    struct auth_table users; /* user -> index in basic */

    struct auth_names jwt_headers, jwt_query, jwt_cookies;
    int64_t jwt_leeway; /* seconds */
    struct auth_jwt_key *jwt;
    size_t njwt;
    struct auth_table issuers; /* issuer -> index in jwt */

    struct auth_external ext;
};

/* Builds the instance (create) and frees it (destroy). */
int auth_config_create(const struct lintel_host_api *host, lintel_instance *self,
                       const lintel_cfg *config, lintel_cfg_error *err, void **instance);
void auth_config_destroy(void *instance);

/* ---- one request's attempt (auth.c drives it; each method's code fills it) ----------------- */

enum auth_outcome {
    AUTH_ABSENT,  /* the method found no credential of its kind */
    AUTH_REFUSED, /* it found one and refused it (reason set) */
    AUTH_ALLOWED, /* it found one and accepted it (consumer set) */
    AUTH_PAUSED,  /* external: a call is out, its callback goes on with the attempt */
    AUTH_FAILED,  /* out of memory or a host refusal: the request gets lintel's 500 */
};

enum auth_ext_state { AUTH_EXT_UNTRIED, AUTH_EXT_DENIED, AUTH_EXT_DOWN };

/* The digest context of the worker running r, or NULL (then each hash makes its own). */
EVP_MD_CTX *auth_md_ctx(const struct auth *a, lintel_req *r);

struct auth_attempt {
    struct auth *a;
    lintel_req *r;
    unsigned next;      /* index in a->methods of the next method to try */
    const char *reason; /* why the first refused credential was refused; NULL: none refused */
    int bearer_refused; /* a JWT was presented and refused (error="invalid_token") */
    enum auth_ext_state ext;
    const struct lintel_http_response *denial; /* the service's refusal, only in its callback */
    /* on AUTH_ALLOWED: */
    enum auth_method method;
    uint32_t consumer;     /* index, or AUTH_NO_CONSUMER (see name) */
    const char *name, *id; /* a consumer the service named but the config does not declare */
};

/* Tries the methods from at->next on. Returns the handler's result: CONTINUE (allowed), RESPOND
 * (refused: a 401, 503 or the service's own refusal was set), PAUSE (external call out), ERROR. */
enum lintel_result auth_attempt_run(struct auth_attempt *at);

/* Finishes an attempt a method allowed (consumer and its headers, log field, metric). */
enum lintel_result auth_attempt_allow(struct auth_attempt *at);

/* A copy of s[0..len) in request memory, NUL-terminated; NULL when out of memory. */
char *auth_strdup(struct auth_attempt *at, const char *s, size_t len);

/* The methods (auth_methods.c, auth_external.c). */
enum auth_outcome auth_key_run(struct auth_attempt *at);
enum auth_outcome auth_basic_run(struct auth_attempt *at);
enum auth_outcome auth_jwt_run(struct auth_attempt *at);
enum auth_outcome auth_external_run(struct auth_attempt *at);

/* Passes the external service's refusal (at->denial) to the client: its status, body,
 * Content-Type and the configured denial headers. Returns LINTEL_RESPOND or LINTEL_ERROR. */
enum lintel_result auth_external_deny(struct auth_attempt *at);

/* hide_credentials: removes query argument name, or cookie name, from the request. 0 / -1. */
int auth_remove_arg(struct auth_attempt *at, const char *name);
int auth_remove_cookie(struct auth_attempt *at, const char *name);

#endif
