/* Route-match micro-benchmark for tools/bench: nanoseconds per lintel_router_match with 10, 1k
 * and 10k routes mixing exact paths, path prefixes, exact hosts and wildcard hosts.
 *
 * Built by tools/bench with gcc -O2 against core/router.c, core/balance.c and core/arena.c.
 * Usage: route_bench [quick]   Prints one line per table size. */
#include <http_parser.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "router.h"

enum kind { K_EXACT, K_PREFIX, K_HOST, K_WILD, K_MISS, K_COUNT };
static const char *const kind_names[K_COUNT] = {"exact", "prefix", "host", "wildcard", "miss"};

#define NQUERIES 4096

struct query {
    char host[64];
    char path[64];
    struct lintel_match_req req;
};

static volatile uintptr_t sink;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static const char *on_header(void *ctx, const char *name, size_t *len)
{
    return NULL;
}

/* Route i: i%4 == 0 exact path, 1 prefix path (GET/POST only), 2 exact host, 3 wildcard host. */
static struct lintel_route_conf *routes_build(struct lintel_arena *a, size_t n)
{
    struct lintel_route_conf *routes = lintel_arena_calloc(a, n * sizeof(*routes));
    for (size_t i = 0; i < n; i++) {
        struct lintel_route_conf *r = &routes[i];
        char buf[96];
        r->index = i;
        snprintf(buf, sizeof(buf), "r%zu", i);
        r->name = lintel_arena_strndup(a, buf, strlen(buf));
        r->paths = lintel_arena_calloc(a, sizeof(*r->paths));
        r->npaths = 1;
        switch (i % 4) {
        case 0:
            snprintf(buf, sizeof(buf), "/svc%zu/items/exact", i);
            r->paths[0].kind = LINTEL_PATH_EXACT;
            break;
        case 1:
            snprintf(buf, sizeof(buf), "/svc%zu/api/", i);
            r->paths[0].kind = LINTEL_PATH_PREFIX;
            r->methods = (1ull << HTTP_GET) | (1ull << HTTP_POST);
            break;
        default:
            r->hosts = lintel_arena_alloc(a, sizeof(*r->hosts));
            r->nhosts = 1;
            snprintf(buf, sizeof(buf), i % 4 == 2 ? "h%zu.example.com" : "*.w%zu.example.org", i);
            r->hosts[0] = lintel_arena_strndup(a, buf, strlen(buf));
            snprintf(buf, sizeof(buf), "/");
            r->paths[0].kind = LINTEL_PATH_PREFIX;
            break;
        }
        r->paths[0].text = lintel_arena_strndup(a, buf, strlen(buf));
    }
    return routes;
}

/* A query of the given kind aimed at a random route of that kind (n >= 4). */
static void query_fill(struct query *q, enum kind k, size_t n)
{
    size_t i = (size_t)rand() % (n / 4) * 4;
    strcpy(q->host, "api.example.net");
    switch (k) {
    case K_EXACT:
        snprintf(q->path, sizeof(q->path), "/svc%zu/items/exact", i);
        break;
    case K_PREFIX:
        snprintf(q->path, sizeof(q->path), "/svc%zu/api/users/42", i + 1);
        break;
    case K_HOST:
        snprintf(q->host, sizeof(q->host), "h%zu.example.com", i + 2);
        snprintf(q->path, sizeof(q->path), "/orders/17/lines");
        break;
    case K_WILD:
        snprintf(q->host, sizeof(q->host), "eu.w%zu.example.org", i + 3);
        snprintf(q->path, sizeof(q->path), "/orders/17/lines");
        break;
    default:
        snprintf(q->host, sizeof(q->host), "unknown.example.net");
        snprintf(q->path, sizeof(q->path), "/nothing/here/at/all");
        break;
    }
    q->req = (struct lintel_match_req){q->host,  strlen(q->host), q->path, strlen(q->path),
                                       HTTP_GET, on_header,       NULL};
}

/* Median over reps of the mean ns per match over queries[0..NQUERIES). */
static double measure(const struct lintel_router *r, const struct query *qs, long iters, int reps)
{
    double best[16];
    for (int rep = 0; rep < reps; rep++) {
        double t0 = now_ns();
        for (long it = 0; it < iters; it++) {
            const struct query *q = &qs[it & (NQUERIES - 1)];
            const struct lintel_route_conf *route = NULL;
            size_t plen = 0;
            enum lintel_match_result m = lintel_router_match(r, &q->req, &route, &plen);
            sink += (uintptr_t)route + plen + (uintptr_t)m;
        }
        best[rep] = (now_ns() - t0) / (double)iters;
    }
    for (int i = 1; i < reps; i++) /* insertion sort: reps is tiny */
        for (int j = i; j > 0 && best[j] < best[j - 1]; j--) {
            double t = best[j];
            best[j] = best[j - 1];
            best[j - 1] = t;
        }
    return best[reps / 2];
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "quick") == 0;
    long iters = quick ? 200000 : 2000000;
    int reps = quick ? 3 : 5;
    static const size_t sizes[] = {10, 1000, 10000};
    static struct query qs[K_COUNT + 1][NQUERIES];
    srand(42);
    printf("%-7s %9s %8s %8s %8s %8s %8s %8s\n", "routes", "build_us", "mixed", kind_names[0],
           kind_names[1], kind_names[2], kind_names[3], kind_names[4]);
    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        size_t n = sizes[si];
        struct lintel_arena *a = lintel_arena_new(1 << 16);
        char err[128];
        if (!a) {
            fprintf(stderr, "route_bench: out of memory\n");
            return 1;
        }
        struct lintel_route_conf *routes = routes_build(a, n);
        double t0 = now_ns();
        struct lintel_router *r = lintel_router_new(routes, n, err, sizeof(err));
        double build_us = (now_ns() - t0) / 1e3;
        if (!r) {
            fprintf(stderr, "route_bench: %s\n", err);
            return 1;
        }
        for (int k = 0; k <= K_COUNT; k++) /* K_COUNT: mixed, hits of every kind, 1 in 5 misses */
            for (int i = 0; i < NQUERIES; i++)
                query_fill(&qs[k][i], k < K_COUNT ? (enum kind)k : (enum kind)(i % K_COUNT), n);
        /* Sanity: every kind but "miss" must find a route of that kind. */
        for (int k = 0; k < K_COUNT; k++) {
            const struct lintel_route_conf *route = NULL;
            size_t plen;
            enum lintel_match_result m = lintel_router_match(r, &qs[k][0].req, &route, &plen);
            if ((k == K_MISS) != (m != LINTEL_MATCH_FOUND) ||
                (k != K_MISS && (int)(route->index % 4) != k)) {
                fprintf(stderr, "route_bench: %s query %s%s matched wrongly\n", kind_names[k],
                        qs[k][0].host, qs[k][0].path);
                return 1;
            }
        }
        double mixed = measure(r, qs[K_COUNT], iters, reps);
        double per[K_COUNT];
        for (int k = 0; k < K_COUNT; k++)
            per[k] = measure(r, qs[k], iters, reps);
        printf("%-7zu %9.0f %8.1f %8.1f %8.1f %8.1f %8.1f %8.1f\n", n, build_us, mixed, per[0],
               per[1], per[2], per[3], per[4]);
        lintel_router_free(r);
        lintel_arena_free(a);
    }
    printf("(ns per lintel_router_match; median of %d runs of %ld matches over %d random "
           "queries)\n",
           reps, iters, NQUERIES);
    return 0;
}
