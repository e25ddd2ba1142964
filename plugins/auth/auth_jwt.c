/* auth: JSON Web Tokens (RFC 7519) in the JWS compact form (RFC 7515), HS256/384/512, RS256 and
 * ES256 (RFC 7518) through OpenSSL's EVP. Pure code: the caller supplies the time, the key lookup
 * and the scratch memory, so that the request path allocates nothing itself. */
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "auth-internal.h"

static const char *const alg_names[] = {"HS256", "HS384", "HS512", "RS256", "ES256"};

int auth_jwt_alg_parse(const char *name, size_t len, enum auth_jwt_alg *out)
{
    for (size_t i = 0; i < sizeof(alg_names) / sizeof(*alg_names); i++)
        if (strlen(alg_names[i]) == len && memcmp(alg_names[i], name, len) == 0) {
            *out = (enum auth_jwt_alg)i;
            return 0;
        }
    return -1;
}

/* The digest an HS* algorithm's HMAC uses, by its OpenSSL name. */
static const char *hmac_digest(enum auth_jwt_alg alg)
{
    return alg == AUTH_HS384 ? "SHA384" : alg == AUTH_HS512 ? "SHA512" : "SHA256";
}

EVP_PKEY *auth_jwt_load_key(const char *pem, size_t len, enum auth_jwt_alg alg, const char **why)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *k = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (!k) {
        *why = "not a PEM public key";
        return NULL;
    }
    char group[64] = "";
    if (alg == AUTH_RS256 && !EVP_PKEY_is_a(k, "RSA"))
        *why = "RS256 needs an RSA public key";
    else if (alg == AUTH_RS256 && EVP_PKEY_get_bits(k) < 2048)
        *why = "RSA key must have at least 2048 bits";
    else if (alg == AUTH_ES256 &&
             (!EVP_PKEY_is_a(k, "EC") ||
              EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                             NULL) != 1 ||
              strcmp(group, "prime256v1") != 0))
        *why = "ES256 needs an EC P-256 public key";
    else
        return k;
    EVP_PKEY_free(k);
    return NULL;
}

int auth_jwt_key_prepare(struct auth_jwt_key *k, const EVP_MD *sha256, const void *secret,
                         size_t len, const char **why)
{
    k->sha256 = sha256;
    if (k->alg <= AUTH_HS512) {
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)hmac_digest(k->alg), 0),
            OSSL_PARAM_construct_end()};
        k->hmac = mac ? EVP_MAC_CTX_new(mac) : NULL;
        EVP_MAC_free(mac); /* the context keeps its own reference */
        if (!k->hmac || EVP_MAC_init(k->hmac, secret, len, params) != 1) {
            *why = "cannot set up HMAC";
            return -1;
        }
        return 0;
    }
    k->verify = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
    if (!k->verify || EVP_PKEY_verify_init(k->verify) != 1 ||
        (k->alg == AUTH_RS256 && EVP_PKEY_CTX_set_rsa_padding(k->verify, RSA_PKCS1_PADDING) != 1) ||
        EVP_PKEY_CTX_set_signature_md(k->verify, sha256 ? sha256 : EVP_sha256()) != 1) {
        *why = "cannot set up signature verification";
        return -1;
    }
    return 0;
}

void auth_jwt_key_free(struct auth_jwt_key *k)
{
    EVP_MAC_CTX_free(k->hmac); /* cleanses the key */
    EVP_PKEY_CTX_free(k->verify);
    EVP_PKEY_free(k->pkey);
    k->hmac = NULL;
    k->verify = NULL;
    k->pkey = NULL;
}

size_t auth_jwt_scratch_size(size_t len)
{
    /* The decoded header, payload, issuer and signature are each shorter than the token; a DER
     * ECDSA signature is at most 72 bytes. */
    return 2 * len + 128;
}

/* Writes the DER INTEGER for the big-endian unsigned v[0..32) at out; returns its length. */
static size_t der_integer(const unsigned char *v, unsigned char *out)
{
    size_t skip = 0;
    while (skip < 31 && v[skip] == 0)
        skip++;
    size_t n = 32 - skip, pad = v[skip] & 0x80 ? 1 : 0;
    out[0] = 0x02;
    out[1] = (unsigned char)(n + pad);
    out[2] = 0;
    memcpy(out + 2 + pad, v + skip, n);
    return 2 + pad + n;
}

/* JWS ES256 signatures are r || s (32 bytes each); EVP wants the DER ECDSA-Sig-Value. Returns the
 * DER length written at out (72 bytes suffice), or 0 when sig is not 64 bytes. */
static size_t es256_der(const unsigned char *sig, size_t len, unsigned char *out)
{
    if (len != 64)
        return 0;
    size_t n = der_integer(sig, out + 2);
    n += der_integer(sig + 32, out + 2 + n);
    out[0] = 0x30;
    out[1] = (unsigned char)n;
    return n + 2;
}

/* 1 when sig is the signature of data under key. The prepared templates are duplicated, never
 * used directly: workers share them. */
static int signature_ok(const struct auth_jwt_key *key, const char *data, size_t len,
                        const unsigned char *sig, size_t sig_len, unsigned char *der)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    size_t md_len = 0;
    if (key->alg <= AUTH_HS512) {
        EVP_MAC_CTX *mac = EVP_MAC_CTX_dup(key->hmac);
        int ok = mac && EVP_MAC_update(mac, (const unsigned char *)data, len) == 1 &&
                 EVP_MAC_final(mac, md, &md_len, sizeof(md)) == 1;
        EVP_MAC_CTX_free(mac);
        return ok && auth_equal(md, md_len, sig, sig_len);
    }
    if (key->alg == AUTH_ES256) {
        sig_len = es256_der(sig, sig_len, der);
        if (!sig_len)
            return 0;
        sig = der;
    }
    unsigned int n = 0;
    if (EVP_Digest(data, len, md, &n, key->sha256 ? key->sha256 : EVP_sha256(), NULL) != 1)
        return 0;
    EVP_PKEY_CTX *v = EVP_PKEY_CTX_dup(key->verify);
    int ok = v && EVP_PKEY_verify(v, sig, sig_len, md, n) == 1;
    EVP_PKEY_CTX_free(v);
    return ok;
}

const char *auth_jwt_verify(const char *token, size_t len, int64_t now, int64_t leeway,
                            auth_jwt_lookup_fn lookup, void *arg, unsigned char *scratch,
                            size_t cap, const struct auth_jwt_key **key)
{
    static const char *const header_names[] = {"alg", "crit"};
    static const char *const claim_names[] = {"iss", "exp", "nbf"};
    if (len > AUTH_TOKEN_MAX || cap < auth_jwt_scratch_size(len))
        return "malformed token";
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', (size_t)(token + len - dot1 - 1)) : NULL;
    if (!dot2 || memchr(dot2 + 1, '.', (size_t)(token + len - dot2 - 1)))
        return "malformed token";

    /* Header: alg, and no critical extension (we understand none). */
    unsigned char *buf = scratch;
    long n = auth_base64_decode(token, (size_t)(dot1 - token), 1, buf, len);
    struct lintel_str head[2], claims[3];
    if (n <= 0 || auth_json_members((const char *)buf, (size_t)n, header_names, 2, head) < 0)
        return "malformed token";
    if (head[1].ptr)
        return "unsupported critical header";
    char alg_text[16];
    long alg_len = auth_json_string(head[0], alg_text, sizeof(alg_text));
    enum auth_jwt_alg alg;
    if (alg_len < 0 || auth_jwt_alg_parse(alg_text, (size_t)alg_len, &alg) < 0)
        return "unsupported algorithm";

    /* Payload: iss picks the key. The claims point into the decoded payload, kept in scratch. */
    unsigned char *payload = scratch;
    n = auth_base64_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), 1, payload, len);
    if (n <= 0 || auth_json_members((const char *)payload, (size_t)n, claim_names, 3, claims) < 0)
        return "malformed token";
    char *iss = (char *)scratch + len;
    long iss_len = claims[0].ptr ? auth_json_string(claims[0], iss, (size_t)n) : -1;
    if (!claims[0].ptr)
        return "missing issuer";
    if (iss_len < 0)
        return "malformed token";
    const struct auth_jwt_key *k = lookup(arg, iss, (size_t)iss_len);
    if (!k)
        return "unknown issuer";
    if (k->alg != alg)
        return "algorithm mismatch"; /* never let the token choose how its key is used */

    /* Signature, over "header.payload" as it came. */
    unsigned char *sig = (unsigned char *)iss + iss_len;
    long sig_len = auth_base64_decode(dot2 + 1, (size_t)(token + len - dot2 - 1), 1, sig,
                                      (size_t)(token + len - dot2));
    unsigned char *der = sig + (sig_len > 0 ? sig_len : 0);
    if (sig_len <= 0 || !signature_ok(k, token, (size_t)(dot2 - token), sig, (size_t)sig_len, der))
        return "invalid signature";

    /* Only a genuine token's claims are worth a specific answer. */
    int64_t exp, nbf;
    if ((claims[1].ptr && auth_json_seconds(claims[1], &exp) < 0) ||
        (claims[2].ptr && auth_json_seconds(claims[2], &nbf) < 0))
        return "malformed token";
    if (claims[1].ptr && now - leeway >= exp)
        return "token expired";
    if (claims[2].ptr && now + leeway < nbf)
        return "token not yet valid";
    *key = k;
    return NULL;
}
