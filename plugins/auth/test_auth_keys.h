/* Test key material for the auth plugin's tests, made at test time with OpenSSL (nothing private
 * is ever committed): RSA and EC P-256 key pairs, their public PEM, and JWTs signed with them.
 * Used by plugins/auth/test_auth*.c and tests/integration/it_plugin_auth.c. Test code: every
 * function aborts when OpenSSL fails, and returned strings are malloc'd (free them). */
#ifndef LINTEL_TEST_AUTH_KEYS_H
#define LINTEL_TEST_AUTH_KEYS_H

#include <stddef.h>

#include <openssl/evp.h>

/* A new RSA 2048 or EC P-256 key pair. Free with EVP_PKEY_free. */
EVP_PKEY *authtest_rsa_key(void);
EVP_PKEY *authtest_ec_key(void);

/* The public half as PEM (SubjectPublicKeyInfo). */
char *authtest_public_pem(EVP_PKEY *key);

/* Writes the public PEM to path. Returns 0, or -1 when the file cannot be written. */
int authtest_write_public_pem(EVP_PKEY *key, const char *path);

/* base64url without padding of p[0..n). */
char *authtest_b64url(const void *p, size_t n);

/* A compact JWS: base64url(header) "." base64url(payload) "." signature, signed with alg
 * ("HS256", "HS384", "HS512": secret; "RS256", "ES256": key; anything else, e.g. "none": an
 * empty signature). header and payload are JSON text used as given. */
char *authtest_jwt(const char *alg, const char *secret, EVP_PKEY *key, const char *header,
                   const char *payload);

/* The same with the usual header {"alg":ALG,"typ":"JWT"} and payload
 * {"iss":ISS[,"exp":NOW+exp_in][,"nbf":NOW+nbf_in]}; exp_in/nbf_in of 0 leave the claim out. */
char *authtest_token(const char *alg, const char *secret, EVP_PKEY *key, const char *iss,
                     long exp_in, long nbf_in);

/* "salt$hex(sha256(salt + password))", for basic credentials. */
char *authtest_password_sha256(const char *salt, const char *password);

#endif
