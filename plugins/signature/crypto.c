/* OpenSSL contexts for the signature plugin, one set per worker thread.
 *
 * Fetching an algorithm takes a lock inside OpenSSL, so every algorithm is fetched once per
 * worker (worker_init) and its context reused for each request; the per-request work is
 * init/update/final on a context nobody else touches. The contexts are not tied to an instance,
 * so all instances of this image on one thread share them (reference counted per thread: handlers
 * of two instances never interleave on one thread, and none keeps a context across a PAUSE).
 *
 * OpenSSL 3.0 still allocates inside EVP_DigestInit and EVP_MAC_init (one or a few small blocks
 * per call); the plugin itself allocates nothing per request but from the request's arena. */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "signature-internal.h"

struct sig_crypto {
    EVP_MAC *hmac;
    EVP_MAC_CTX *mac[SIG_ALG_COUNT];
    EVP_MD *md[SIG_DIGEST_COUNT];
    EVP_MD_CTX *md_ctx;
};

static _Thread_local struct sig_crypto *tl_crypto;
static _Thread_local unsigned tl_refs;

static void crypto_free(struct sig_crypto *c)
{
    if (!c)
        return;
    for (int a = 0; a < SIG_ALG_COUNT; a++)
        EVP_MAC_CTX_free(c->mac[a]);
    EVP_MAC_free(c->hmac);
    for (int d = 0; d < SIG_DIGEST_COUNT; d++)
        EVP_MD_free(c->md[d]);
    EVP_MD_CTX_free(c->md_ctx);
    OPENSSL_free(c);
}

static struct sig_crypto *crypto_new(void)
{
    static const char *const mac_digests[SIG_ALG_COUNT] = {"SHA1", "SHA256", "SHA512"};
    static const char *const digests[SIG_DIGEST_COUNT] = {"MD5", "SHA256"};
    struct sig_crypto *c = OPENSSL_zalloc(sizeof(*c));
    if (!c)
        return NULL;
    c->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    c->md_ctx = EVP_MD_CTX_new();
    if (!c->hmac || !c->md_ctx)
        goto fail;
    for (int a = 0; a < SIG_ALG_COUNT; a++) {
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)mac_digests[a], 0),
            OSSL_PARAM_construct_end(),
        };
        c->mac[a] = EVP_MAC_CTX_new(c->hmac);
        if (!c->mac[a] || !EVP_MAC_CTX_set_params(c->mac[a], params))
            goto fail;
    }
    for (int d = 0; d < SIG_DIGEST_COUNT; d++)
        if (!(c->md[d] = EVP_MD_fetch(NULL, digests[d], NULL)))
            goto fail;
    return c;
fail:
    crypto_free(c);
    return NULL;
}

int sig_crypto_worker_init(void)
{
    if (tl_refs == 0 && !(tl_crypto = crypto_new()))
        return -1;
    tl_refs++;
    return 0;
}

void sig_crypto_worker_fini(void)
{
    if (tl_refs == 0 || --tl_refs > 0)
        return;
    crypto_free(tl_crypto);
    tl_crypto = NULL;
}

int sig_hmac(enum sig_alg alg, const void *key, size_t key_len, const void *msg, size_t len,
             unsigned char *out)
{
    struct sig_crypto *c = tl_crypto;
    size_t n = 0;
    if (!c || !EVP_MAC_init(c->mac[alg], key, key_len, NULL) ||
        !EVP_MAC_update(c->mac[alg], msg, len) || !EVP_MAC_final(c->mac[alg], out, &n, SIG_MAC_MAX))
        return -1;
    return (int)n;
}

int sig_digest(enum sig_digest d, const struct lintel_str *parts, size_t nparts, unsigned char *out)
{
    struct sig_crypto *c = tl_crypto;
    unsigned n = 0;
    if (!c || !EVP_DigestInit_ex2(c->md_ctx, c->md[d], NULL))
        return -1;
    for (size_t i = 0; i < nparts; i++)
        if (parts[i].len && !EVP_DigestUpdate(c->md_ctx, parts[i].ptr, parts[i].len))
            return -1;
    if (!EVP_DigestFinal_ex(c->md_ctx, out, &n))
        return -1;
    return (int)n;
}
