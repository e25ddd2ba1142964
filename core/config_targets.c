/* Building targets from what the file says and what the resolver answered (see
 * config_targets.h). */
#include "config_targets.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* https only: what a pooled connection was set up with beyond its address. */
static const char *pool_key(struct lintel_arena *arena, const struct lintel_upstream_conf *up,
                            const char *sni)
{
    const struct lintel_upstream_tls_conf *t = &up->tls;
    const char *verify = !t->verify ? "-" : t->ca_file ? t->ca_file : "*";
    size_t len = strlen(sni ? sni : "") + strlen(verify) + 8;
    char *k = lintel_arena_alloc(arena, len);
    if (k)
        snprintf(k, len, "tls|%s|%s", sni ? sni : "", verify);
    return k;
}

static int add_target(struct lintel_arena *arena, const struct lintel_upstream_conf *up,
                      const struct lintel_target_decl *d, const struct sockaddr_storage *ss,
                      struct lintel_target_conf *t)
{
    memset(t, 0, sizeof(*t));
    t->decl = d;
    t->weight = d->weight;
    t->host = d->text;
    if (!d->is_name) {
        t->addr = d->addr;
    } else {
        char ip[INET6_ADDRSTRLEN], text[INET6_ADDRSTRLEN + 10];
        memcpy(&t->addr.ss, ss, sizeof(*ss));
        if (ss->ss_family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->addr.ss;
            s6->sin6_port = htons(d->port);
            t->addr.len = sizeof(*s6);
            inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
            snprintf(text, sizeof(text), "[%s]:%u", ip, (unsigned)d->port);
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&t->addr.ss;
            s4->sin_port = htons(d->port);
            t->addr.len = sizeof(*s4);
            inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
            snprintf(text, sizeof(text), "%s:%u", ip, (unsigned)d->port);
        }
        t->addr.text = lintel_arena_strndup(arena, text, strlen(text));
        if (!t->addr.text)
            return -1;
    }
    if (up->https) {
        /* SNI must not be an IP address (RFC 6066): an IP target verifies its address. */
        t->sni = up->tls.sni ? up->tls.sni : d->is_name ? d->host : NULL;
        if (!(t->pool_key = pool_key(arena, up, t->sni)))
            return -1;
    }
    return 0;
}

int lintel_targets_build(struct lintel_arena *arena, struct lintel_upstream_conf *up,
                         lintel_names_lookup_fn lookup, void *ctx)
{
    struct lintel_name_addrs *found = lintel_arena_calloc(arena, up->ndecl * sizeof(*found));
    if (!found)
        return -1;
    size_t n = 0, unresolved_len = 0;
    for (size_t i = 0; i < up->ndecl; i++) {
        const struct lintel_target_decl *d = &up->decl[i];
        if (!d->is_name) {
            n++;
            continue;
        }
        if (!lookup || !lookup(ctx, d->host, &found[i]))
            found[i].error = "not resolved yet";
        n += found[i].naddrs;
        if (found[i].naddrs == 0)
            unresolved_len += strlen(d->host) + strlen(found[i].error) + 4;
    }
    up->targets = lintel_arena_calloc(arena, (n ? n : 1) * sizeof(*up->targets));
    char *why = unresolved_len ? lintel_arena_alloc(arena, unresolved_len + 1) : NULL;
    if (!up->targets || (unresolved_len && !why))
        return -1;
    size_t k = 0, wl = 0;
    for (size_t i = 0; i < up->ndecl; i++) {
        const struct lintel_target_decl *d = &up->decl[i];
        if (!d->is_name) {
            if (add_target(arena, up, d, NULL, &up->targets[k++]) < 0)
                return -1;
            continue;
        }
        for (size_t a = 0; a < found[i].naddrs; a++)
            if (add_target(arena, up, d, &found[i].addrs[a], &up->targets[k++]) < 0)
                return -1;
        if (found[i].naddrs == 0)
            wl += (size_t)snprintf(why + wl, unresolved_len + 1 - wl, "%s%s: %s", wl ? "; " : "",
                                   d->host, found[i].error);
    }
    up->ntargets = n;
    up->unresolved = why;
    return 0;
}

struct lintel_config *lintel_config_resolve(const struct lintel_config *base,
                                            lintel_names_lookup_fn lookup, void *ctx)
{
    if (!base->has_names)
        return (struct lintel_config *)base;
    struct lintel_arena *arena = lintel_arena_new(4096);
    struct lintel_config *cfg = arena ? lintel_arena_alloc(arena, sizeof(*cfg)) : NULL;
    if (!cfg)
        goto fail;
    *cfg = *base;
    cfg->arena = arena;
    cfg->base = base;
    size_t nu = base->nupstreams, nr = base->nroutes;
    cfg->upstreams = lintel_arena_calloc(arena, (nu ? nu : 1) * sizeof(*cfg->upstreams));
    cfg->routes = lintel_arena_calloc(arena, (nr ? nr : 1) * sizeof(*cfg->routes));
    if (!cfg->upstreams || !cfg->routes)
        goto fail;
    for (size_t i = 0; i < nu; i++) {
        cfg->upstreams[i] = base->upstreams[i];
        if (lintel_targets_build(arena, &cfg->upstreams[i], lookup, ctx) < 0)
            goto fail;
    }
    for (size_t i = 0; i < nr; i++) {
        cfg->routes[i] = base->routes[i];
        cfg->routes[i].upstream = &cfg->upstreams[base->routes[i].upstream->index];
    }
    return cfg;
fail:
    lintel_arena_free(arena);
    return NULL;
}

bool lintel_upstream_same_targets(const struct lintel_upstream_conf *x,
                                  const struct lintel_upstream_conf *y)
{
    if (x->ntargets != y->ntargets || (x->unresolved == NULL) != (y->unresolved == NULL) ||
        (x->unresolved && strcmp(x->unresolved, y->unresolved) != 0))
        return false;
    for (size_t t = 0; t < x->ntargets; t++)
        if (x->targets[t].decl != y->targets[t].decl ||
            x->targets[t].addr.len != y->targets[t].addr.len ||
            memcmp(&x->targets[t].addr.ss, &y->targets[t].addr.ss, x->targets[t].addr.len) != 0)
            return false;
    return true;
}

bool lintel_config_same_targets(const struct lintel_config *a, const struct lintel_config *b)
{
    if (a->nupstreams != b->nupstreams)
        return false;
    for (size_t i = 0; i < a->nupstreams; i++)
        if (!lintel_upstream_same_targets(&a->upstreams[i], &b->upstreams[i]))
            return false;
    return true;
}
