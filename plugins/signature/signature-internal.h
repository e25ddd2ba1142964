/* signature plugin: what its files share. Nothing here leaves the .so (hidden visibility); the
 * unit tests link canonical.c and nonce.c directly.
 *
 *   config.c     create/destroy: the YAML config, the key_id -> secret table from consumers
 *   signature.c  the ACCESS handler (worker threads) and the descriptor
 *   canonical.c  pure text work: query pairs, the Authorization header, dates, hex
 *   crypto.c     per-worker OpenSSL contexts: HMAC and digests
 *   nonce.c      the replay store shared by every worker
 *
 * docs/plugins/signature.md is the contract with clients; canonical.c follows it to the byte. */
#ifndef LINTEL_SIGNATURE_INTERNAL_H
#define LINTEL_SIGNATURE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lintel/text.h>
#include <lintel/plugin.h>

/* ---- algorithms ------------------------------------------------------------------------------ */

/* The hmac scheme's algorithms, named in the Authorization header. */
enum sig_alg { SIG_HMAC_SHA1 = 0, SIG_HMAC_SHA256 = 1, SIG_HMAC_SHA512 = 2, SIG_ALG_COUNT = 3 };

/* Plain digests: the params scheme's sign, the body hash, nonce fingerprints. */
enum sig_digest { SIG_MD5 = 0, SIG_SHA256 = 1, SIG_DIGEST_COUNT = 2 };

#define SIG_MAC_MAX 64 /* bytes of the longest MAC or digest (HMAC-SHA512) */

/* "HMAC-SHA256" and so on. */
const char *sig_alg_name(enum sig_alg alg);
/* Bytes of alg's MAC / of d's digest. */
size_t sig_alg_size(enum sig_alg alg);
size_t sig_digest_size(enum sig_digest d);
/* The algorithm named s[0..len) (case-insensitive), or -1. */
int sig_alg_parse(const char *s, size_t len);

/* ---- configuration (config.c; read-only once create returns) ------------------------------- */

#define SIG_SCHEME_HMAC 0x1u
#define SIG_SCHEME_PARAMS 0x2u

/* One credentials.hmac entry of a consumer. */
struct sig_key {
    const char *key_id; /* borrowed from the consumers tree (lives as long as the instance) */
    size_t key_id_len;
    unsigned char *secret; /* owned; wiped and freed by destroy */
    size_t secret_len;
    const char *consumer;    /* borrowed: the consumer's name */
    const char *consumer_id; /* borrowed; may be NULL */
    const lintel_cfg *node;  /* its key_id node: where a duplicate is reported (create only) */
    size_t order;            /* its place in the consumers' file order (create only) */
};

struct sig_nonce_store;

struct sig_conf {
    const struct lintel_host_api *host;
    lintel_instance *self;
    unsigned schemes;    /* SIG_SCHEME_* */
    unsigned algorithms; /* bit (1 << enum sig_alg) per allowed algorithm */
    enum sig_digest params_digest;
    int64_t skew_s;
    bool validate_body;
    uint64_t max_body;
    const char **required_headers; /* owned array of borrowed names */
    size_t nrequired;
    struct sig_key *keys; /* owned, sorted by key_id (bytes) */
    size_t nkeys;
    struct sig_nonce_store *nonces; /* a reference; NULL when replay_protection is off */
    char challenge[64];             /* WWW-Authenticate value; "" without the hmac scheme */
    _Atomic int64_t full_warned;    /* second of the last "replay store full" warning */
};

/* The key whose key_id is id[0..len), or NULL. Thread: any. */
const struct sig_key *sig_key_find(const struct sig_conf *cf, const char *id, size_t len);

/* The plugin's create and destroy (config.c), for the descriptor in signature.c. */
int sig_create(const struct lintel_host_api *host, lintel_instance *self, const lintel_cfg *config,
               lintel_cfg_error *err, void **instance);
void sig_destroy(void *instance);

/* ---- text (canonical.c; pure, any thread) -------------------------------------------------- */

/* One query parameter, raw as sent (not percent-decoded); value is "" when there was no '='. */
struct sig_param {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* Upper bound of the parameters in q[0..len): for sizing the array sig_query_split fills. */
size_t sig_query_max(const char *q, size_t len);
/* Splits q at '&' into out (room for sig_query_max), dropping empty pieces; each piece is split
 * at its first '='. Returns the number of parameters. Borrowed from q. */
size_t sig_query_split(const char *q, size_t len, struct sig_param *out);
/* Sorts by name, then by value, both as unsigned bytes. */
void sig_params_sort(struct sig_param *v, size_t n);
/* Writes "name=value" for each parameter, joined with '&', leaving out parameters named skip
 * (NULL: none), into dst (NULL: only measure). Returns the length. */
size_t sig_params_join(const struct sig_param *v, size_t n, const char *skip, char *dst);

/* The parts of "Authorization: HMAC-SHA256 key_id=...,signed_headers=...,signature=...";
 * strings borrowed from the header value, signed_headers {NULL,0} when absent. */
struct sig_auth {
    enum sig_alg alg;
    struct lintel_str key_id;
    struct lintel_str signed_headers;
    struct lintel_str signature;
};

/* Whether an Authorization value uses an HMAC-* scheme (so the hmac scheme should judge it). */
bool sig_auth_is_hmac(const char *v, size_t len);
/* Parses an Authorization value. Returns 0, or -1 with *why set to a fixed phrase. */
int sig_auth_parse(const char *v, size_t len, struct sig_auth *out, const char **why);

/* Takes the next name of a ';'-separated list: sets *name and advances *list. Returns 1, 0 at
 * the end, -1 on an empty name or a character that cannot be in a header name. */
int sig_list_next(struct lintel_str *list, struct lintel_str *name);
/* ASCII case-insensitive equality of a[0..alen) and the NUL-terminated b. */
bool sig_ieq(const char *a, size_t alen, const char *b);

/* An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") to unix seconds. 0, or -1. */
int sig_http_date(const char *s, size_t len, int64_t *out);
/* 1 to 12 decimal digits to a number. 0, or -1. */
int sig_decimal(const char *s, size_t len, int64_t *out);
/* Whether a nonce is acceptable: 1 to 128 visible ASCII characters. */
bool sig_nonce_ok(const char *s, size_t len);

/* Decodes exactly 2*n hex digits (either case) into out. 0, or -1. */
int sig_hex_decode(const char *hex, size_t len, unsigned char *out, size_t n);
/* Writes 2*n lowercase hex digits (no NUL). */
void sig_hex_encode(const unsigned char *in, size_t n, char *out);

/* ---- crypto (crypto.c; worker threads) ----------------------------------------------------- */

/* The calling thread's OpenSSL contexts, created by the first instance's worker_init on that
 * thread and freed by the last worker_fini. 0, or -1 (out of memory, algorithm unavailable). */
int sig_crypto_worker_init(void);
void sig_crypto_worker_fini(void);

/* MAC of msg with key into out (SIG_MAC_MAX bytes). Returns the MAC's length, or -1 (no
 * contexts on this thread, OpenSSL failure). */
int sig_hmac(enum sig_alg alg, const void *key, size_t key_len, const void *msg, size_t len,
             unsigned char *out);
/* Digest of the concatenated parts into out (SIG_MAC_MAX bytes). Length, or -1. */
int sig_digest(enum sig_digest d, const struct lintel_str *parts, size_t nparts,
               unsigned char *out);

/* ---- replay store (nonce.c; any thread) ---------------------------------------------------- */

/* The store of this plugin image, shared by all its instances and workers, with room for at
 * least capacity nonces (a store created smaller grows). One reference per call; NULL when out of
 * memory. Thread: main (create). */
struct sig_nonce_store *sig_nonce_acquire(size_t capacity);
/* Drops a reference; the last frees the store. NULL is ignored. Thread: any. */
void sig_nonce_release(struct sig_nonce_store *s);
/* 16 random bytes chosen with the store: the key of the fingerprints put in it. */
const unsigned char *sig_nonce_salt(const struct sig_nonce_store *s);

enum sig_nonce_result {
    SIG_NONCE_FIRST = 0, /* recorded now, until `expires` */
    SIG_NONCE_SEEN = 1,  /* recorded before and not expired: a replay */
    SIG_NONCE_FULL = 2,  /* no free slot near its place: refused, nothing recorded */
};

/* Records fingerprint fp until expires (unix seconds) unless it is recorded and alive at now.
 * Atomic across threads (see nonce.c for the one narrow exception). */
enum sig_nonce_result sig_nonce_check(struct sig_nonce_store *s, uint64_t fp, uint64_t expires,
                                      uint64_t now);

#endif
