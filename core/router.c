/* Route matching.
 *
 * Routes are grouped by host: group 0 holds the routes without hosts, every other group one host
 * key (an exact host, or a wildcard's suffix such as ".example.org"). A group has a radix tree of
 * its prefix paths and a file-ordered list of its regexes; the exact paths of all groups share one
 * hash table keyed by (group, path), and the host keys another. Everything is built once into an
 * arena and only read afterwards, so matching takes no lock and allocates nothing. */
#include "router.h"

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balance.h" /* lintel_hash64 */

/* One route reachable under a (group, path). methods is copied from the route so that the common
 * checks read one cache line instead of two. */
struct entry {
    const struct lintel_route_conf *route;
    uint64_t methods;
};

/* A node of a group's prefix tree. Every prefix ends exactly on a node (edges are split when
 * built), so a walk down the request path meets every prefix of it that a route names. */
struct pnode {
    const char *label;            /* the bytes this node adds to its parent's prefix */
    const unsigned char *first;   /* first label byte of each child, ascending */
    const struct pnode *children; /* nchildren nodes, in the order of first[] */
    const struct pnode *up;       /* nearest ancestor ending a prefix, or NULL */
    const struct entry *entries;  /* routes whose prefix ends here, file order; NULL: none */
    uint32_t label_len;
    uint32_t depth; /* length of the prefix this node spells */
    uint32_t nentries;
    uint32_t nchildren;
};

struct rx {
    const regex_t *re;
    struct entry e;
};

struct group {
    const struct pnode *prefixes; /* NULL: no prefix paths */
    const struct rx *regexes;     /* file order */
    uint32_t nregexes;
    uint32_t nexact; /* exact paths in the shared table; 0 saves the lookup */
};

/* Open addressing slot. Host table: ns 0 = exact host, 1 = wildcard suffix; n = group index.
 * Exact-path table: ns = group index; e[0..n) = routes in file order. */
struct slot {
    uint64_t hash;
    const char *key; /* NULL: empty */
    const struct entry *e;
    uint32_t len;
    uint32_t ns;
    uint32_t n;
};

struct table {
    struct slot *slots;
    size_t mask;
};

struct lintel_router {
    struct lintel_arena *arena;
    struct table hosts;
    struct table exact;
    struct group *groups;
    uint32_t ngroups;
    uint32_t nwild;            /* wildcard host keys; 0 skips the suffix lookups */
    size_t wild_min, wild_max; /* shortest and longest wildcard suffix, dot included */
};

/* What one route path becomes at build time: a (group, kind, text) triple in file order. */
struct item {
    const char *text;
    size_t len;
    const regex_t *re;
    const struct lintel_route_conf *route;
    uint32_t group;
    uint32_t kind;
    size_t seq; /* creation order, which is file order */
};

/* A distinct prefix of one group and its routes, the input of the tree builder. */
struct pkey {
    const char *text;
    size_t len;
    const struct entry *e;
    uint32_t n;
};

/* Matching state carried across host groups: the path hash is computed at most once, and a route
 * refused only for its method anywhere turns the final 404 into a 405. */
struct search {
    uint64_t path_hash;
    bool hashed;
    bool wrong_method;
};

enum verdict { V_NO, V_WRONG_METHOD, V_YES };

#define NS_MIX 0x9e3779b97f4a7c15ull

static uint64_t key_hash(uint64_t base, uint32_t ns)
{
    return base ^ ((uint64_t)ns * NS_MIX);
}

static int table_init(struct lintel_arena *a, struct table *t, size_t count)
{
    size_t cap = 8;
    while (cap < count * 2)
        cap *= 2;
    t->slots = lintel_arena_calloc(a, cap * sizeof(*t->slots));
    t->mask = cap - 1;
    return t->slots ? 0 : -1;
}

static struct slot *table_find(const struct table *t, uint64_t h, const char *key, size_t len,
                               uint32_t ns)
{
    for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
        struct slot *s = &t->slots[i];
        if (!s->key)
            return NULL;
        if (s->hash == h && s->len == len && s->ns == ns && memcmp(s->key, key, len) == 0)
            return s;
    }
}

/* Returns the slot for key, claiming an empty one (n == 0, e == NULL) when absent. The table was
 * sized for every key up front, so it never fills. */
static struct slot *table_insert(struct table *t, uint64_t h, const char *key, size_t len,
                                 uint32_t ns)
{
    size_t i = h & t->mask;
    for (;; i = (i + 1) & t->mask) {
        struct slot *s = &t->slots[i];
        if (!s->key)
            break;
        if (s->hash == h && s->len == len && s->ns == ns && memcmp(s->key, key, len) == 0)
            return s;
    }
    struct slot *s = &t->slots[i];
    s->hash = h;
    s->key = key;
    s->len = (uint32_t)len;
    s->ns = ns;
    return s;
}

static int item_cmp(const void *pa, const void *pb)
{
    const struct item *a = pa, *b = pb;
    if (a->group != b->group)
        return a->group < b->group ? -1 : 1;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    if (a->kind != LINTEL_PATH_REGEX) {
        size_t n = a->len < b->len ? a->len : b->len;
        int c = memcmp(a->text, b->text, n);
        if (c)
            return c;
        if (a->len != b->len)
            return a->len < b->len ? -1 : 1;
    }
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Appends the routes of items[lo..hi) (one path, file order) to out, dropping a route listed twice
 * under the same path (two of its hosts falling into one group). Returns the count. */
static uint32_t entries_fill(struct entry *out, const struct item *items, size_t lo, size_t hi)
{
    uint32_t n = 0;
    for (size_t i = lo; i < hi; i++) {
        if (n && out[n - 1].route == items[i].route)
            continue;
        out[n].route = items[i].route;
        out[n].methods = items[i].route->methods;
        n++;
    }
    return n;
}

/* Builds the node spelling the common prefix of keys[lo..hi), which all share their first d
 * bytes. keys are distinct and sorted bytewise, so the common prefix of the range is that of its
 * first and last key, and a key equal to it comes first. */
static int pnode_build(struct lintel_arena *a, struct pnode *node, const struct pkey *keys,
                       size_t lo, size_t hi, size_t d, const struct pnode *up)
{
    const struct pkey *f = &keys[lo], *l = &keys[hi - 1];
    size_t end = d;
    while (end < f->len && end < l->len && f->text[end] == l->text[end])
        end++;
    node->label = f->text + d;
    node->label_len = (uint32_t)(end - d);
    node->depth = (uint32_t)end;
    node->up = up;
    size_t i = lo;
    if (f->len == end) {
        node->entries = f->e;
        node->nentries = f->n;
        up = node;
        i++;
    }
    uint32_t nc = 0;
    for (size_t j = i; j < hi; nc++) {
        unsigned char b = (unsigned char)keys[j].text[end];
        while (j < hi && (unsigned char)keys[j].text[end] == b)
            j++;
    }
    if (!nc)
        return 0;
    struct pnode *children = lintel_arena_calloc(a, nc * sizeof(*children));
    unsigned char *first = lintel_arena_alloc(a, nc);
    if (!children || !first)
        return -1;
    node->children = children;
    node->first = first;
    node->nchildren = nc;
    for (uint32_t c = 0; c < nc; c++) {
        unsigned char b = (unsigned char)keys[i].text[end];
        size_t j = i;
        while (j < hi && (unsigned char)keys[j].text[end] == b)
            j++;
        first[c] = b;
        if (pnode_build(a, &children[c], keys, i, j, end, up) < 0)
            return -1;
        i = j;
    }
    return 0;
}

static void free_regex(void *re)
{
    regfree(re);
}

/* Fills group g from its sorted items[lo..hi): exact paths into the shared table, prefixes into a
 * tree, regexes into a list. entries is the router-wide entry array, *used its fill level. */
static int group_build(struct lintel_router *r, uint32_t g, const struct item *items, size_t lo,
                       size_t hi, struct entry *entries, size_t *used, struct pkey *keys)
{
    struct group *grp = &r->groups[g];
    size_t nkeys = 0, nrx = 0;
    for (size_t i = lo; i < hi;) {
        size_t j = i + 1;
        if (items[i].kind != LINTEL_PATH_REGEX)
            while (j < hi && items[j].kind == items[i].kind && items[j].len == items[i].len &&
                   memcmp(items[j].text, items[i].text, items[i].len) == 0)
                j++;
        struct entry *e = entries + *used;
        if (items[i].kind == LINTEL_PATH_EXACT) {
            uint64_t h = key_hash(lintel_hash64(items[i].text, items[i].len), g);
            struct slot *s = table_insert(&r->exact, h, items[i].text, items[i].len, g);
            s->e = e;
            s->n = entries_fill(e, items, i, j);
            *used += s->n;
            grp->nexact++;
        } else if (items[i].kind == LINTEL_PATH_PREFIX) {
            keys[nkeys].text = items[i].text;
            keys[nkeys].len = items[i].len;
            keys[nkeys].e = e;
            keys[nkeys].n = entries_fill(e, items, i, j);
            *used += keys[nkeys].n;
            nkeys++;
        } else {
            nrx++;
        }
        i = j;
    }
    if (nkeys) {
        struct pnode *root = lintel_arena_calloc(r->arena, sizeof(*root));
        if (!root || pnode_build(r->arena, root, keys, 0, nkeys, 0, NULL) < 0)
            return -1;
        grp->prefixes = root;
    }
    if (nrx) {
        struct rx *rx = lintel_arena_alloc(r->arena, nrx * sizeof(*rx));
        if (!rx)
            return -1;
        size_t k = 0;
        for (size_t i = lo; i < hi; i++) {
            if (items[i].kind != LINTEL_PATH_REGEX)
                continue;
            /* A private compile: glibc's regexec locks the regex_t it runs, so a router
             * shares no regex_t with another router (each worker has its own). */
            regex_t *re = lintel_arena_alloc(r->arena, sizeof(*re));
            if (!re || regcomp(re, items[i].text, REG_EXTENDED | REG_NOSUB) != 0)
                return -1;
            if (lintel_arena_cleanup_add(r->arena, free_regex, re) < 0) {
                regfree(re);
                return -1;
            }
            rx[k].re = re;
            rx[k].e.route = items[i].route;
            rx[k].e.methods = items[i].route->methods;
            k++;
        }
        grp->regexes = rx;
        grp->nregexes = (uint32_t)nrx;
    }
    return 0;
}

/* Returns the group of a route's host, creating it. A leading "*." makes a wildcard keyed by the
 * suffix from the dot, so that lookups can try each suffix of the request host directly. */
static uint32_t host_group(struct lintel_router *r, const char *host)
{
    bool wild = host[0] == '*' && host[1] == '.';
    const char *key = wild ? host + 1 : host;
    size_t len = strlen(key);
    struct slot *s =
        table_insert(&r->hosts, key_hash(lintel_hash64(key, len), wild), key, len, wild);
    if (s->n == 0) {
        s->n = r->ngroups++;
        if (wild) {
            if (r->nwild == 0 || len < r->wild_min)
                r->wild_min = len;
            if (len > r->wild_max)
                r->wild_max = len;
            r->nwild++;
        }
    }
    return s->n;
}

static struct item *items_add(struct item *it, const struct lintel_route_conf *route, uint32_t g,
                              size_t *seq)
{
    if (route->npaths == 0) {
        *it = (struct item){"/", 1, NULL, route, g, LINTEL_PATH_PREFIX, (*seq)++};
        return it + 1;
    }
    for (size_t p = 0; p < route->npaths; p++, it++) {
        const struct lintel_path_conf *pc = &route->paths[p];
        *it = (struct item){pc->text, strlen(pc->text), pc->re, route, g, pc->kind, (*seq)++};
    }
    return it;
}

struct lintel_router *lintel_router_new(const struct lintel_route_conf *routes, size_t n, char *err,
                                        size_t errlen)
{
    struct lintel_router *r = NULL;
    struct item *items = NULL;
    struct pkey *keys = NULL;
    size_t nitems = 0, nhostkeys = 0;
    for (size_t i = 0; i < n; i++) {
        nitems +=
            (routes[i].nhosts ? routes[i].nhosts : 1) * (routes[i].npaths ? routes[i].npaths : 1);
        nhostkeys += routes[i].nhosts;
        for (size_t p = 0; p < routes[i].npaths; p++) {
            if (routes[i].paths[p].kind == LINTEL_PATH_REGEX && !routes[i].paths[p].re) {
                snprintf(err, errlen, "route %s: regex path is not compiled",
                         routes[i].name ? routes[i].name : "?");
                return NULL;
            }
        }
    }

    struct lintel_arena *a = lintel_arena_new(4096 + nitems * 96);
    if (!a)
        goto oom;
    r = lintel_arena_calloc(a, sizeof(*r));
    if (!r) {
        lintel_arena_free(a);
        goto oom;
    }
    r->arena = a;
    r->ngroups = 1;
    items = malloc((nitems ? nitems : 1) * sizeof(*items));
    keys = malloc((nitems ? nitems : 1) * sizeof(*keys));
    struct entry *entries = lintel_arena_alloc(a, (nitems ? nitems : 1) * sizeof(*entries));
    if (!items || !keys || !entries || table_init(a, &r->hosts, nhostkeys) < 0)
        goto oom;

    struct item *it = items;
    size_t seq = 0;
    for (size_t i = 0; i < n; i++) {
        if (routes[i].nhosts == 0)
            it = items_add(it, &routes[i], 0, &seq);
        for (size_t h = 0; h < routes[i].nhosts; h++)
            it = items_add(it, &routes[i], host_group(r, routes[i].hosts[h]), &seq);
    }
    qsort(items, nitems, sizeof(*items), item_cmp);

    size_t nexact = 0;
    for (size_t i = 0; i < nitems; i++)
        nexact += items[i].kind == LINTEL_PATH_EXACT;
    r->groups = lintel_arena_calloc(a, r->ngroups * sizeof(*r->groups));
    if (!r->groups || table_init(a, &r->exact, nexact) < 0)
        goto oom;
    size_t used = 0;
    for (size_t lo = 0; lo < nitems;) {
        size_t hi = lo + 1;
        while (hi < nitems && items[hi].group == items[lo].group)
            hi++;
        if (group_build(r, items[lo].group, items, lo, hi, entries, &used, keys) < 0)
            goto oom;
        lo = hi;
    }
    free(items);
    free(keys);
    return r;

oom:
    snprintf(err, errlen, "out of memory");
    free(items);
    free(keys);
    lintel_router_free(r);
    return NULL;
}

void lintel_router_free(struct lintel_router *r)
{
    if (r)
        lintel_arena_free(r->arena);
}

static bool headers_match(const struct lintel_route_conf *route, const struct lintel_match_req *q)
{
    for (size_t i = 0; i < route->nheaders; i++) {
        const struct lintel_header_match *hm = &route->headers[i];
        size_t len = 0;
        const char *v = q->header ? q->header(q->header_ctx, hm->name, &len) : NULL;
        if (!v || len != strlen(hm->value) || memcmp(v, hm->value, len) != 0)
            return false;
    }
    return true;
}

/* Everything but the path, which the caller has matched (or will, for regexes). */
static enum verdict entry_check(const struct entry *e, const struct lintel_match_req *q)
{
    if (e->route->nheaders && !headers_match(e->route, q))
        return V_NO;
    if (e->methods && (q->method < 0 || q->method > 63 || !(e->methods >> q->method & 1)))
        return V_WRONG_METHOD;
    return V_YES;
}

static const struct entry *entries_pick(const struct entry *e, uint32_t n,
                                        const struct lintel_match_req *q, struct search *s)
{
    for (uint32_t i = 0; i < n; i++) {
        enum verdict v = entry_check(&e[i], q);
        if (v == V_YES)
            return &e[i];
        if (v == V_WRONG_METHOD)
            s->wrong_method = true;
    }
    return NULL;
}

static const struct pnode *pnode_child(const struct pnode *n, unsigned char b)
{
    uint32_t lo = 0, hi = n->nchildren;
    if (hi <= 8) {
        for (; lo < hi; lo++)
            if (n->first[lo] == b)
                return &n->children[lo];
        return NULL;
    }
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (n->first[mid] < b)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n->nchildren && n->first[lo] == b ? &n->children[lo] : NULL;
}

/* The node of the longest prefix of path that some route names, or NULL. Shorter ones follow
 * through ->up. */
static const struct pnode *pnode_longest(const struct pnode *n, const char *path, size_t len)
{
    if (len < n->label_len || memcmp(path, n->label, n->label_len) != 0)
        return NULL;
    const struct pnode *best = NULL;
    for (;;) {
        if (n->entries)
            best = n;
        size_t d = n->depth;
        if (d == len)
            break;
        const struct pnode *c = pnode_child(n, (unsigned char)path[d]);
        if (!c || len - d < c->label_len ||
            memcmp(path + d + 1, c->label + 1, c->label_len - 1) != 0)
            break;
        n = c;
    }
    return best;
}

static const struct entry *group_match(const struct lintel_router *r, uint32_t g,
                                       const struct lintel_match_req *q, struct search *s,
                                       size_t *prefix_len)
{
    const struct group *grp = &r->groups[g];
    const struct entry *e;
    if (grp->nexact) {
        if (!s->hashed) {
            s->path_hash = lintel_hash64(q->path, q->path_len);
            s->hashed = true;
        }
        const struct slot *sl =
            table_find(&r->exact, key_hash(s->path_hash, g), q->path, q->path_len, g);
        if (sl && (e = entries_pick(sl->e, sl->n, q, s))) {
            *prefix_len = 0;
            return e;
        }
    }
    if (grp->prefixes) {
        for (const struct pnode *n = pnode_longest(grp->prefixes, q->path, q->path_len); n;
             n = n->up) {
            if ((e = entries_pick(n->entries, n->nentries, q, s))) {
                *prefix_len = n->depth;
                return e;
            }
        }
    }
    for (uint32_t i = 0; i < grp->nregexes; i++) {
        const struct rx *x = &grp->regexes[i];
        enum verdict v = entry_check(&x->e, q);
        /* The regex runs last and only when its answer changes the outcome. */
        if (v == V_NO || (v == V_WRONG_METHOD && s->wrong_method))
            continue;
        if (regexec(x->re, q->path, 0, NULL, 0) != 0)
            continue;
        if (v == V_WRONG_METHOD) {
            s->wrong_method = true;
            continue;
        }
        *prefix_len = 0;
        return &x->e;
    }
    return NULL;
}

enum lintel_match_result lintel_router_match(const struct lintel_router *r,
                                             const struct lintel_match_req *q,
                                             const struct lintel_route_conf **route,
                                             size_t *prefix_len)
{
    struct search s = {0, false, false};
    const struct entry *e = NULL;
    size_t plen = 0;
    const char *host = q->host;
    size_t hlen = q->host_len;
    if (host && r->ngroups > 1) {
        const struct slot *sl = table_find(&r->hosts, lintel_hash64(host, hlen), host, hlen, 0);
        if (sl)
            e = group_match(r, sl->n, q, &s, &plen);
        /* Suffixes from the first dot on are tried longest first; a wildcard never matches the
         * bare domain because the key keeps its dot. */
        for (size_t i = 0; !e && r->nwild && i < hlen; i++) {
            if (host[i] != '.' || hlen - i > r->wild_max)
                continue;
            if (hlen - i < r->wild_min)
                break;
            uint64_t h = key_hash(lintel_hash64(host + i, hlen - i), 1);
            sl = table_find(&r->hosts, h, host + i, hlen - i, 1);
            if (sl)
                e = group_match(r, sl->n, q, &s, &plen);
        }
    }
    if (!e)
        e = group_match(r, 0, q, &s, &plen);
    if (!e)
        return s.wrong_method ? LINTEL_MATCH_METHOD_NOT_ALLOWED : LINTEL_MATCH_NOT_FOUND;
    *route = e->route;
    *prefix_len = plen;
    return LINTEL_MATCH_FOUND;
}
