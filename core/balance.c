/* Load balancers: smooth weighted round robin, weighted least connections, consistent hashing.
 *
 * All three keep their state in plain per-target arrays owned by the balancer; one worker uses a
 * balancer, so nothing here is atomic. */
#include "balance.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Virtual nodes per unit of weight: enough that four equal targets get shares within a few
 * percent of each other. */
#define RING_PER_WEIGHT 160
/* Ring size above which every target's share is scaled down, so that a large weight costs a
 * bounded amount of memory (12 bytes a point, per worker). */
#define RING_MAX (RING_PER_WEIGHT * 256)

struct lintel_balancer {
    const struct lintel_upstream_conf *up;
    size_t n;
    int64_t *current; /* smooth WRR state, one per target */
    unsigned *active; /* picks not yet released, one per target */
    uint64_t *ring;   /* HASH: virtual node positions, ascending */
    uint32_t *ring_target;
    size_t nring;
};

/* Odd constants with dense, irregular bit patterns (fractional parts of the square roots of 3, 5
 * and 7, as used for SHA-512's initial values). */
#define H_K1 0xbb67ae8584caa73bull
#define H_K2 0x3c6ef372fe94f82bull
#define H_K3 0xa54ff53a5f1d36f1ull

static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

/* Reads 8 bytes as little-endian so that every host of a fleet puts a key at the same place on
 * the ring (stickiness survives a mixed fleet). */
static inline uint64_t load64(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

static inline uint64_t absorb(uint64_t h, uint64_t w)
{
    w *= H_K1;
    w ^= w >> 29;
    h = (h ^ w) * H_K2;
    return rotl64(h, 31) + H_K3;
}

/* Eight bytes a step, then a multiply-xorshift finish so that every input bit reaches every
 * output bit: ring positions and hash-table slots both use the low and the high bits. */
uint64_t lintel_hash64(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = H_K3 ^ ((uint64_t)len * H_K1);
    for (; len >= 8; len -= 8, p += 8)
        h = absorb(h, load64(p));
    if (len) {
        unsigned char tail[8] = {0};
        memcpy(tail, p, len);
        h = absorb(h, load64(tail));
    }
    h ^= h >> 32;
    h *= H_K2;
    h ^= h >> 29;
    h *= H_K1;
    h ^= h >> 32;
    return h;
}

static int64_t weight_of(const struct lintel_balancer *b, size_t i)
{
    unsigned w = b->up->targets[i].weight;
    return w ? w : 1; /* the loader enforces >= 1; hand-built configs may leave 0 */
}

struct point {
    uint64_t pos;
    uint32_t target;
};

static int point_cmp(const void *pa, const void *pb)
{
    const struct point *a = pa, *b = pb;
    if (a->pos != b->pos)
        return a->pos < b->pos ? -1 : 1;
    return a->target < b->target ? -1 : a->target > b->target;
}

/* A target's points derive from its address text, not its index, so that removing one target
 * from the upstream leaves every other target's points, and the keys on them, where they were.
 * The same address listed twice gets a distinct seed per occurrence. */
static uint64_t target_seed(const struct lintel_upstream_conf *up, size_t i)
{
    const char *text = up->targets[i].addr.text;
    if (!text)
        return lintel_hash64(&i, sizeof(i));
    uint64_t seed = lintel_hash64(text, strlen(text));
    for (size_t j = 0; j < i; j++)
        if (up->targets[j].addr.text && strcmp(up->targets[j].addr.text, text) == 0)
            seed = absorb(seed, j + 1);
    return seed;
}

static int ring_build(struct lintel_balancer *b)
{
    uint64_t total = 0;
    for (size_t i = 0; i < b->n; i++)
        total += (uint64_t)weight_of(b, i) * RING_PER_WEIGHT;
    size_t *count = malloc(b->n * sizeof(*count));
    if (!count)
        return -1;
    size_t npoints = 0;
    for (size_t i = 0; i < b->n; i++) {
        uint64_t c = (uint64_t)weight_of(b, i) * RING_PER_WEIGHT;
        if (total > RING_MAX)
            c = c * RING_MAX / total;
        count[i] = c ? c : 1;
        npoints += count[i];
    }
    struct point *pts = malloc(npoints * sizeof(*pts));
    b->ring = malloc(npoints * sizeof(*b->ring));
    b->ring_target = malloc(npoints * sizeof(*b->ring_target));
    if (!pts || !b->ring || !b->ring_target) {
        free(pts);
        free(count);
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++) {
        uint64_t seed = target_seed(b->up, i);
        for (size_t v = 0; v < count[i]; v++, k++) {
            uint64_t in[2] = {seed, v};
            pts[k].pos = lintel_hash64(in, sizeof(in));
            pts[k].target = (uint32_t)i;
        }
    }
    qsort(pts, npoints, sizeof(*pts), point_cmp);
    for (size_t i = 0; i < npoints; i++) {
        b->ring[i] = pts[i].pos;
        b->ring_target[i] = pts[i].target;
    }
    b->nring = npoints;
    free(pts);
    free(count);
    return 0;
}

struct lintel_balancer *lintel_balancer_new(const struct lintel_upstream_conf *up)
{
    struct lintel_balancer *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->up = up;
    b->n = up->ntargets;
    b->current = calloc(b->n ? b->n : 1, sizeof(*b->current));
    b->active = calloc(b->n ? b->n : 1, sizeof(*b->active));
    if (!b->current || !b->active)
        goto fail;
    if (up->balance == LINTEL_BALANCE_HASH && b->n && ring_build(b) < 0)
        goto fail;
    return b;
fail:
    lintel_balancer_free(b);
    return NULL;
}

void lintel_balancer_free(struct lintel_balancer *b)
{
    if (!b)
        return;
    free(b->current);
    free(b->active);
    free(b->ring);
    free(b->ring_target);
    free(b);
}

static bool skipped(const unsigned char *skip, size_t i)
{
    return skip && skip[i];
}

/* One step of the smooth weighted round robin over the eligible targets: each gains its weight,
 * the richest is picked and pays the total. Over sum(weights) steps each target is picked exactly
 * weight times, interleaved rather than in runs. tie_with >= 0 narrows eligibility to targets
 * whose load equals that target's (least_conn's tie break). */
static int wrr_step(struct lintel_balancer *b, const unsigned char *skip, int tie_with)
{
    int64_t total = 0;
    int best = -1;
    for (size_t i = 0; i < b->n; i++) {
        if (skipped(skip, i))
            continue;
        int64_t w = weight_of(b, i);
        if (tie_with >= 0 && (uint64_t)b->active[i] * (uint64_t)weight_of(b, (size_t)tie_with) !=
                                 (uint64_t)b->active[tie_with] * (uint64_t)w)
            continue;
        b->current[i] += w;
        total += w;
        if (best < 0 || b->current[i] > b->current[best])
            best = (int)i;
    }
    if (best >= 0)
        b->current[best] -= total;
    return best;
}

/* The target with the fewest active requests per unit of weight; equal loads share by weighted
 * round robin so that idle targets all get used, not always the first. */
static int least_conn(struct lintel_balancer *b, const unsigned char *skip)
{
    int best = -1;
    for (size_t i = 0; i < b->n; i++) {
        if (skipped(skip, i))
            continue;
        if (best < 0 || (uint64_t)b->active[i] * (uint64_t)weight_of(b, (size_t)best) <
                            (uint64_t)b->active[best] * (uint64_t)weight_of(b, i))
            best = (int)i;
    }
    return best < 0 ? -1 : wrr_step(b, skip, best);
}

static int hash_pick(const struct lintel_balancer *b, const char *key, size_t key_len,
                     const unsigned char *skip)
{
    uint64_t h = lintel_hash64(key, key_len);
    size_t lo = 0, hi = b->nring;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->ring[mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* Past the last point the ring wraps to the first. A skipped target's keys go to the next
     * point clockwise, which spreads them over the others instead of doubling one neighbour. */
    for (size_t k = 0; k < b->nring; k++) {
        uint32_t t = b->ring_target[(lo + k) % b->nring];
        if (!skipped(skip, t))
            return (int)t;
    }
    return -1;
}

int lintel_balancer_pick(struct lintel_balancer *b, const char *key, size_t key_len,
                         const unsigned char *skip)
{
    int t;
    if (skip) {
        size_t i = 0;
        while (i < b->n && skip[i])
            i++;
        if (i == b->n)
            return -1;
    }
    if (b->up->balance == LINTEL_BALANCE_LEAST_CONN)
        t = least_conn(b, skip);
    else if (b->up->balance == LINTEL_BALANCE_HASH && key && b->nring)
        t = hash_pick(b, key, key_len, skip);
    else
        t = wrr_step(b, skip, -1);
    if (t >= 0)
        b->active[t]++;
    return t;
}

void lintel_balancer_release(struct lintel_balancer *b, int target)
{
    if (target >= 0 && (size_t)target < b->n && b->active[target] > 0)
        b->active[target]--;
}
