#include "tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

struct cert_ctx {
    SSL_CTX *ctx;
    const struct lintel_tls_cert *conf;
};

struct lintel_tls {
    struct cert_ctx *certs; /* [0] is the default */
    size_t ncerts;
};

static void openssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, len);
    else
        snprintf(buf, len, "unknown error");
    ERR_clear_error();
}

/* Does host (lowercase) match pattern ("a.b" or "*.b")? A wildcard matches one or more labels in
 * front of its suffix, like route hosts do. */
static size_t host_match(const char *pattern, const char *host, size_t len)
{
    if (pattern[0] == '*') {
        size_t plen = strlen(pattern + 1); /* ".b" */
        return len > plen && strncasecmp(host + len - plen, pattern + 1, plen) == 0 ? plen : 0;
    }
    return strlen(pattern) == len && strncasecmp(pattern, host, len) == 0 ? (size_t)-1 : 0;
}

static int on_servername(SSL *ssl, int *alert, void *arg)
{
    struct lintel_tls *t = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name)
        return SSL_TLSEXT_ERR_OK; /* no SNI: the default certificate */
    size_t len = strlen(name), best_score = 0;
    const struct cert_ctx *best = NULL;
    for (size_t i = 0; i < t->ncerts; i++)
        for (size_t h = 0; h < t->certs[i].conf->nhosts; h++) {
            size_t score = host_match(t->certs[i].conf->hosts[h], name, len);
            if (score > best_score) {
                best_score = score;
                best = &t->certs[i];
            }
        }
    if (best && best != &t->certs[0])
        SSL_set_SSL_CTX(ssl, best->ctx);
    return SSL_TLSEXT_ERR_OK;
}

static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    /* Only HTTP/1.1 is spoken: pick it when offered, else go on without ALPN. */
    for (unsigned int i = 0; i < inlen; i += 1u + in[i])
        if (in[i] == 8 && i + 9 <= inlen && memcmp(in + i + 1, "http/1.1", 8) == 0) {
            *out = in + i + 1;
            *outlen = 8;
            return SSL_TLSEXT_ERR_OK;
        }
    return SSL_TLSEXT_ERR_NOACK;
}

static SSL_CTX *ctx_new(const struct lintel_tls_conf *conf, const struct lintel_tls_cert *c,
                        char *why, size_t whylen)
{
    char reason[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        openssl_reason(reason, sizeof(reason));
        snprintf(why, whylen, "cannot create a TLS context: %s", reason);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, conf->min_version);
    SSL_CTX_set_max_proto_version(ctx, conf->max_version);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"lintel", 6);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
    if (SSL_CTX_use_certificate_chain_file(ctx, c->cert) != 1) {
        openssl_reason(reason, sizeof(reason));
        snprintf(why, whylen, "cannot load certificate %s: %s", c->cert, reason);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, c->key, SSL_FILETYPE_PEM) != 1) {
        openssl_reason(reason, sizeof(reason));
        snprintf(why, whylen, "cannot load key %s: %s", c->key, reason);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        snprintf(why, whylen, "certificate %s and key %s do not match", c->cert, c->key);
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

struct lintel_tls *lintel_tls_new(const struct lintel_config *cfg, size_t index, char *err,
                                  size_t errlen)
{
    const struct lintel_tls_conf *conf = cfg->listen_tls[index];
    struct lintel_tls *t = calloc(1, sizeof(*t));
    if (t)
        t->certs = calloc(conf->ncerts, sizeof(*t->certs));
    if (!t || !t->certs) {
        free(t);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < conf->ncerts; i++) {
        char why[512];
        const struct lintel_tls_cert *c = &conf->certs[i];
        t->certs[i].conf = c;
        t->certs[i].ctx = ctx_new(conf, c, why, sizeof(why));
        if (!t->certs[i].ctx) {
            snprintf(err, errlen, "%s:%d:%d: listen[%zu].tls.certificates[%zu]: %s", cfg->path,
                     c->node->line, c->node->col, index, i, why);
            lintel_tls_free(t);
            return NULL;
        }
        t->ncerts = i + 1;
    }
    /* SNI is looked at on the default context, where every handshake starts. */
    SSL_CTX_set_tlsext_servername_callback(t->certs[0].ctx, on_servername);
    SSL_CTX_set_tlsext_servername_arg(t->certs[0].ctx, t);
    return t;
}

void lintel_tls_free(struct lintel_tls *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->ncerts; i++)
        SSL_CTX_free(t->certs[i].ctx);
    free(t->certs);
    free(t);
}

SSL *lintel_tls_ssl_new(struct lintel_tls *t)
{
    return SSL_new(t->certs[0].ctx);
}

SSL_CTX *lintel_tls_upstream_new(const struct lintel_config *cfg,
                                 const struct lintel_upstream_conf *up, char *err, size_t errlen)
{
    char reason[256];
    const struct lintel_ynode *at = up->tls.node ? up->tls.node : up->node;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        openssl_reason(reason, sizeof(reason));
        snprintf(err, errlen, "%s:%d:%d: upstreams.%s.tls: cannot create a TLS context: %s",
                 cfg->path, at->line, at->col, up->name, reason);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    if (!up->tls.verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        return ctx;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (up->tls.ca_file) {
        if (SSL_CTX_load_verify_locations(ctx, up->tls.ca_file, NULL) != 1) {
            openssl_reason(reason, sizeof(reason));
            snprintf(err, errlen, "%s:%d:%d: upstreams.%s.tls.ca_file: cannot load %s: %s",
                     cfg->path, at->line, at->col, up->name, up->tls.ca_file, reason);
            SSL_CTX_free(ctx);
            return NULL;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        openssl_reason(reason, sizeof(reason));
        snprintf(err, errlen, "%s:%d:%d: upstreams.%s: cannot load the system's CA store: %s",
                 cfg->path, at->line, at->col, up->name, reason);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

SSL *lintel_tls_upstream_ssl(SSL_CTX *ctx, const struct lintel_target_conf *t)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl)
        return NULL;
    if (t->sni && SSL_set_tlsext_host_name(ssl, t->sni) != 1)
        goto fail;
    if (SSL_CTX_get_verify_mode(ctx) == SSL_VERIFY_NONE)
        return ssl;
    if (t->sni) {
        if (SSL_set1_host(ssl, t->sni) != 1)
            goto fail;
    } else if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), t->decl->host) != 1) {
        goto fail; /* no sni: an IP target, whose declared host is the bare address */
    }
    return ssl;
fail:
    SSL_free(ssl);
    return NULL;
}

void lintel_tls_handshake_error(SSL *ssl, unsigned long err, char *buf, size_t len)
{
    long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (v != X509_V_OK) {
        snprintf(buf, len, "certificate verify failed (%s)", X509_verify_cert_error_string(v));
        return;
    }
    const char *r = err ? ERR_reason_error_string(err) : NULL;
    snprintf(buf, len, "%s", r ? r : "connection closed during the handshake");
}
