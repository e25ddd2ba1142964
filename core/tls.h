/* TLS termination for one listener: one OpenSSL context per configured certificate, the
 * certificate chosen by SNI (exact host, then the longest matching "*." wildcard, else the first
 * certificate), ALPN "http/1.1", server-side session cache and tickets for resumption.
 *
 * Built with each configuration snapshot, so certificates are re-read on every reload; a
 * connection keeps the context it started with (OpenSSL reference counts it). */
#ifndef LINTEL_TLS_H
#define LINTEL_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "config.h"

struct lintel_tls;

/* Loads the certificates of cfg->listen_tls[index]. Returns NULL with err set to
 * "FILE:LINE:COL: listen[i].tls.certificates[j]: cannot load ...". Thread: main. */
struct lintel_tls *lintel_tls_new(const struct lintel_config *cfg, size_t index, char *err,
                                  size_t errlen);

/* Frees the listener's contexts (connections still using them keep their references). */
void lintel_tls_free(struct lintel_tls *t);

/* A new server-side SSL for an accepted connection, or NULL. Thread: any worker. */
SSL *lintel_tls_ssl_new(struct lintel_tls *t);

/* Upstream TLS (scheme: https): the client context of up, verifying peers against tls.ca_file
 * or the system's store unless tls.verify is false. Returns NULL with err set to
 * "FILE:LINE:COL: upstreams.NAME.tls.ca_file: cannot load ...". Free it with SSL_CTX_free.
 * Thread: main. */
SSL_CTX *lintel_tls_upstream_new(const struct lintel_config *cfg,
                                 const struct lintel_upstream_conf *up, char *err, size_t errlen);

/* A client SSL for a connection to target t of an https upstream: SNI t->sni, and (when the
 * context verifies) the certificate must name t->sni, or t's IP address when it has none.
 * NULL when out of memory. Thread: any. */
SSL *lintel_tls_upstream_ssl(SSL_CTX *ctx, const struct lintel_target_conf *t);

/* Why a client handshake on ssl failed, for logs and error bodies: "certificate verify failed
 * (self-signed certificate)", or the OpenSSL reason of err (an ERR_get_error code, 0 when none
 * is known). */
void lintel_tls_handshake_error(SSL *ssl, unsigned long err, char *buf, size_t len);

#endif
