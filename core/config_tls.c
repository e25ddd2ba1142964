/* The `tls` section of a listen entry:
 *   tls: { certificates: [ { cert: a.pem, key: a.key, hosts: [a.example.com, "*.b.org"] } ],
 *          protocols: [TLSv1.2, TLSv1.3] }
 * Files are only named here; they are read (and a bad cert/key pair refused) when the snapshot's
 * TLS contexts are built, at start and on every reload. */
#include <string.h>

#include <openssl/ssl.h>

#include "config-internal.h"

static int protocol_version(const char *s)
{
    if (strcmp(s, "TLSv1.2") == 0)
        return TLS1_2_VERSION;
    if (strcmp(s, "TLSv1.3") == 0)
        return TLS1_3_VERSION;
    return 0;
}

static int read_cert(struct lintel_config_ctx *c, const struct lintel_ynode *n,
                     struct lintel_tls_cert *out)
{
    static const char *const keys[] = {"cert", "key", "hosts", NULL};
    if (n->type != LINTEL_YNODE_MAP)
        return lintel_config_fail(c, n, "must be a map with cert and key");
    if (lintel_config_map(c, n, keys) < 0 || lintel_config_string(c, n, "cert", true, &out->cert) < 0 ||
        lintel_config_string(c, n, "key", true, &out->key) < 0)
        return -1;
    out->node = n;
    const struct lintel_ynode *hosts;
    size_t mark;
    if (lintel_config_child(c, n, "hosts", LINTEL_YNODE_SEQ, false, &hosts, &mark) < 0)
        return -1;
    if (!hosts)
        return 0;
    out->hosts = lintel_arena_calloc(c->arena, (hosts->len ? hosts->len : 1) * sizeof(char *));
    if (!out->hosts)
        return lintel_config_fail(c, hosts, "out of memory");
    for (size_t i = 0; i < hosts->len; i++) {
        const struct lintel_ynode *h = hosts->items[i];
        size_t m2 = lintel_ypath_push_index(&c->path, i);
        if (h->type != LINTEL_YNODE_SCALAR || h->len == 0)
            return lintel_config_fail(c, h, "must be a host name");
        const char *star = strchr(h->scalar, '*');
        if (star && (star != h->scalar || h->scalar[1] != '.' || strchr(star + 1, '*')))
            return lintel_config_fail(c, h, "a wildcard must be a leading \"*.\"");
        char *low = lintel_arena_strndup(c->arena, h->scalar, h->len);
        if (!low)
            return lintel_config_fail(c, h, "out of memory");
        for (char *p = low; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p + 32);
        out->hosts[out->nhosts++] = low;
        lintel_ypath_restore(&c->path, m2);
    }
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

int lintel_config_tls(struct lintel_config_ctx *c, const struct lintel_ynode *n,
                      struct lintel_tls_conf **out)
{
    static const char *const keys[] = {"certificates", "protocols", NULL};
    if (lintel_config_map(c, n, keys) < 0)
        return -1;
    struct lintel_tls_conf *t = lintel_arena_calloc(c->arena, sizeof(*t));
    if (!t)
        return lintel_config_fail(c, n, "out of memory");
    t->node = n;
    t->min_version = TLS1_2_VERSION;
    t->max_version = TLS1_3_VERSION;
    const struct lintel_ynode *certs, *protos;
    size_t mark;
    if (lintel_config_child(c, n, "certificates", LINTEL_YNODE_SEQ, true, &certs, &mark) < 0)
        return -1;
    if (certs->len == 0)
        return lintel_config_fail(c, certs, "must list at least one certificate");
    t->certs = lintel_arena_calloc(c->arena, certs->len * sizeof(*t->certs));
    if (!t->certs)
        return lintel_config_fail(c, certs, "out of memory");
    for (size_t i = 0; i < certs->len; i++) {
        size_t m2 = lintel_ypath_push_index(&c->path, i);
        if (read_cert(c, certs->items[i], &t->certs[i]) < 0)
            return -1;
        lintel_ypath_restore(&c->path, m2);
    }
    t->ncerts = certs->len;
    lintel_ypath_restore(&c->path, mark);
    if (lintel_config_child(c, n, "protocols", LINTEL_YNODE_SEQ, false, &protos, &mark) < 0)
        return -1;
    if (protos) {
        int lo = 0, hi = 0;
        for (size_t i = 0; i < protos->len; i++) {
            const struct lintel_ynode *p = protos->items[i];
            int v = p->type == LINTEL_YNODE_SCALAR ? protocol_version(p->scalar) : 0;
            if (!v) {
                lintel_ypath_push_index(&c->path, i);
                return lintel_config_fail(c, p, "must be TLSv1.2 or TLSv1.3");
            }
            lo = lo && lo < v ? lo : v;
            hi = hi > v ? hi : v;
        }
        if (!lo)
            return lintel_config_fail(c, protos, "must list TLSv1.2 and/or TLSv1.3");
        t->min_version = lo;
        t->max_version = hi;
        lintel_ypath_restore(&c->path, mark);
    }
    *out = t;
    return 0;
}
