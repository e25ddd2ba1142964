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

#endif
