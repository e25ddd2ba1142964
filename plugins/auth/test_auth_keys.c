/* Test key material and JWT signing for the auth tests (see test_auth_keys.h). Written for the
 * tests, independently of the plugin's own code, so that a bug in one does not hide in both. */
#include "test_auth_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

static void *must(void *p)
{
    if (!p) {
        fprintf(stderr, "test_auth_keys: out of memory or OpenSSL failure\n");
        abort();
    }
    return p;
}

static void check(int ok)
{
    if (!ok)
        must(NULL);
}

EVP_PKEY *authtest_rsa_key(void)
{
    return must(EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048));
}

EVP_PKEY *authtest_ec_key(void)
{
    return must(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"));
}

char *authtest_public_pem(EVP_PKEY *key)
{
    BIO *b = must(BIO_new(BIO_s_mem()));
    check(PEM_write_bio_PUBKEY(b, key) == 1);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *s = must(malloc((size_t)n + 1));
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    BIO_free(b);
    return s;
}

int authtest_write_public_pem(EVP_PKEY *key, const char *path)
{
    char *pem = authtest_public_pem(key);
    FILE *f = fopen(path, "w");
    int rc = f && fputs(pem, f) >= 0 ? 0 : -1;
    if (f && fclose(f) != 0)
        rc = -1;
    free(pem);
    return rc;
}

char *authtest_b64url(const void *p, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *in = p;
    char *out = must(malloc(n / 3 * 4 + 5)), *o = out;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        *o++ = abc[v >> 18];
        *o++ = abc[v >> 12 & 63];
        *o++ = abc[v >> 6 & 63];
        *o++ = abc[v & 63];
    }
    if (n - i == 1) {
        *o++ = abc[in[i] >> 2];
        *o++ = abc[(in[i] & 3) << 4];
    } else if (n - i == 2) {
        *o++ = abc[in[i] >> 2];
        *o++ = abc[(in[i] & 3) << 4 | in[i + 1] >> 4];
        *o++ = abc[(in[i + 1] & 15) << 2];
    }
    *o = '\0';
    return out;
}

/* The JWS signature bytes of data (ES256: r || s, 32 bytes each). */
static unsigned char *sign(const char *alg, const char *secret, EVP_PKEY *key, const char *data,
                           size_t *len)
{
    const EVP_MD *md = strstr(alg, "384")   ? EVP_sha384()
                       : strstr(alg, "512") ? EVP_sha512()
                                            : EVP_sha256();
    unsigned char *sig = must(malloc(1024));
    if (alg[0] == 'H') {
        unsigned int n = 0;
        check(HMAC(md, secret, (int)strlen(secret), (const unsigned char *)data, strlen(data), sig,
                   &n) != NULL);
        *len = n;
        return sig;
    }
    if (alg[0] != 'R' && alg[0] != 'E') {
        *len = 0;
        return sig;
    }
    EVP_MD_CTX *ctx = must(EVP_MD_CTX_new());
    size_t n = 1024;
    check(EVP_DigestSignInit(ctx, NULL, md, NULL, key) == 1 &&
          EVP_DigestSign(ctx, sig, &n, (const unsigned char *)data, strlen(data)) == 1);
    EVP_MD_CTX_free(ctx);
    if (alg[0] == 'E') { /* DER ECDSA-Sig-Value -> r || s */
        const unsigned char *p = sig;
        ECDSA_SIG *es = must(d2i_ECDSA_SIG(NULL, &p, (long)n));
        unsigned char *raw = must(malloc(64));
        check(BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32) == 32 &&
              BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32) == 32);
        ECDSA_SIG_free(es);
        free(sig);
        *len = 64;
        return raw;
    }
    *len = n;
    return sig;
}

char *authtest_jwt(const char *alg, const char *secret, EVP_PKEY *key, const char *header,
                   const char *payload)
{
    char *h = authtest_b64url(header, strlen(header));
    char *p = authtest_b64url(payload, strlen(payload));
    size_t n = strlen(h) + strlen(p) + 2;
    char *input = must(malloc(n));
    snprintf(input, n, "%s.%s", h, p);
    size_t sig_len;
    unsigned char *sig = sign(alg, secret, key, input, &sig_len);
    char *s = authtest_b64url(sig, sig_len);
    char *token = must(malloc(n + strlen(s) + 1));
    sprintf(token, "%s.%s", input, s);
    free(h);
    free(p);
    free(input);
    free(sig);
    free(s);
    return token;
}

char *authtest_token(const char *alg, const char *secret, EVP_PKEY *key, const char *iss,
                     long exp_in, long nbf_in)
{
    char header[64], payload[256];
    long now = (long)time(NULL);
    snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
    int n = snprintf(payload, sizeof(payload), "{\"iss\":\"%s\"", iss);
    if (exp_in)
        n += snprintf(payload + n, sizeof(payload) - (size_t)n, ",\"exp\":%ld", now + exp_in);
    if (nbf_in)
        n += snprintf(payload + n, sizeof(payload) - (size_t)n, ",\"nbf\":%ld", now + nbf_in);
    snprintf(payload + n, sizeof(payload) - (size_t)n, "}");
    return authtest_jwt(alg, secret, key, header, payload);
}

char *authtest_password_sha256(const char *salt, const char *password)
{
    unsigned char d[32];
    EVP_MD_CTX *ctx = must(EVP_MD_CTX_new());
    check(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
          EVP_DigestUpdate(ctx, salt, strlen(salt)) == 1 &&
          EVP_DigestUpdate(ctx, password, strlen(password)) == 1 &&
          EVP_DigestFinal_ex(ctx, d, NULL) == 1);
    EVP_MD_CTX_free(ctx);
    char *s = must(malloc(strlen(salt) + 66));
    int n = sprintf(s, "%s$", salt);
    for (int i = 0; i < 32; i++)
        n += sprintf(s + n, "%02x", d[i]);
    return s;
}
