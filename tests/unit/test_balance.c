/* Tests for core/balance.c: smooth weighted round robin, least connections, consistent hashing,
 * skip handling and the 64-bit hash. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

#include "balance.h"

#define MAXT 8

/* An upstream over targets "10.0.0.<id>:80" with the given weights (0 ends the list). */
struct up {
    struct lintel_upstream_conf conf;
    struct lintel_target_conf targets[MAXT];
    char text[MAXT][32];
};

static void up_init(struct up *u, enum lintel_balance balance, const int *ids, const unsigned *w)
{
    memset(u, 0, sizeof(*u));
    size_t n = 0;
    for (; n < MAXT && w[n]; n++) {
        snprintf(u->text[n], sizeof(u->text[n]), "10.0.0.%d:80", ids ? ids[n] : (int)n + 1);
        u->targets[n].addr.text = u->text[n];
        u->targets[n].weight = w[n];
    }
    u->conf.name = "test";
    u->conf.targets = u->targets;
    u->conf.ntargets = n;
    u->conf.balance = balance;
}

static void test_wrr_proportional(void)
{
    static const unsigned w[] = {3, 2, 1, 0};
    struct up u;
    up_init(&u, LINTEL_BALANCE_ROUND_ROBIN, NULL, w);
    struct lintel_balancer *b = lintel_balancer_new(&u.conf);
    CU_ASSERT_FATAL(b != NULL);
    int count[3] = {0};
    for (int i = 0; i < 600; i++) {
        int t = lintel_balancer_pick(b, NULL, 0, NULL);
        CU_ASSERT_FATAL(t >= 0 && t < 3);
        count[t]++;
        lintel_balancer_release(b, t);
    }
    CU_ASSERT_EQUAL(count[0], 300);
    CU_ASSERT_EQUAL(count[1], 200);
    CU_ASSERT_EQUAL(count[2], 100);
    lintel_balancer_free(b);
}

static void test_wrr_smooth(void)
{
    static const unsigned w[] = {5, 1, 1, 0};
    struct up u;
    up_init(&u, LINTEL_BALANCE_ROUND_ROBIN, NULL, w);
    struct lintel_balancer *b = lintel_balancer_new(&u.conf);
    CU_ASSERT_FATAL(b != NULL);
    int seq[700], run = 0, longest = 0;
    for (int i = 0; i < 700; i++) {
        seq[i] = lintel_balancer_pick(b, NULL, 0, NULL);
        lintel_balancer_release(b, seq[i]);
        run = i && seq[i] == seq[i - 1] ? run + 1 : 1;
        if (run > longest)
            longest = run;
    }
    /* Plain weighted round robin would send five in a row to the heavy target; the smooth one
     * interleaves, and every window of one period holds each light target exactly once. */
    CU_ASSERT(longest <= 4);
    for (int start = 0; start + 7 <= 700; start += 7) {
        int c[3] = {0};
        for (int i = start; i < start + 7; i++)
            c[seq[i]]++;
        CU_ASSERT(c[0] == 5 && c[1] == 1 && c[2] == 1);
    }
    lintel_balancer_free(b);
}

static void test_skip(void)
{
    static const unsigned w[] = {1, 1, 1, 0};
    static const enum lintel_balance kinds[] = {LINTEL_BALANCE_ROUND_ROBIN,
                                                LINTEL_BALANCE_LEAST_CONN, LINTEL_BALANCE_HASH};
    for (size_t k = 0; k < 3; k++) {
        struct up u;
        up_init(&u, kinds[k], NULL, w);
        struct lintel_balancer *b = lintel_balancer_new(&u.conf);
        CU_ASSERT_FATAL(b != NULL);
        unsigned char skip[3] = {1, 0, 1};
        char key[16];
        for (int i = 0; i < 50; i++) {
            snprintf(key, sizeof(key), "k%d", i);
            int t = lintel_balancer_pick(b, key, strlen(key), skip);
            CU_ASSERT_EQUAL(t, 1);
            lintel_balancer_release(b, t);
        }
        memset(skip, 1, sizeof(skip));
        CU_ASSERT_EQUAL(lintel_balancer_pick(b, "k", 1, skip), -1);
        CU_ASSERT_EQUAL(lintel_balancer_pick(b, NULL, 0, skip), -1);
        lintel_balancer_free(b);
    }
}

static void test_least_conn(void)
{
    static const unsigned w[] = {1, 1, 1, 0};
    struct up u;
    up_init(&u, LINTEL_BALANCE_LEAST_CONN, NULL, w);
    struct lintel_balancer *b = lintel_balancer_new(&u.conf);
    CU_ASSERT_FATAL(b != NULL);
    /* Requests held open: each new one goes to an idle target. */
    int a = lintel_balancer_pick(b, NULL, 0, NULL);
    int c = lintel_balancer_pick(b, NULL, 0, NULL);
    int d = lintel_balancer_pick(b, NULL, 0, NULL);
    CU_ASSERT(a != c && c != d && a != d);
    /* Releasing one makes it the only idle target. */
    lintel_balancer_release(b, c);
    CU_ASSERT_EQUAL(lintel_balancer_pick(b, NULL, 0, NULL), c);
    lintel_balancer_release(b, a);
    lintel_balancer_release(b, c);
    lintel_balancer_release(b, d);
    /* Idle again: short requests spread evenly instead of all landing on the first target (to
     * within one: the round-robin tie break carries state from the picks above). */
    int count[3] = {0};
    for (int i = 0; i < 300; i++) {
        int t = lintel_balancer_pick(b, NULL, 0, NULL);
        count[t]++;
        lintel_balancer_release(b, t);
    }
    for (int i = 0; i < 3; i++)
        CU_ASSERT(count[i] >= 99 && count[i] <= 101);
    /* Releasing an index that is out of range or not in use changes nothing. */
    lintel_balancer_release(b, -1);
    lintel_balancer_release(b, 7);
    lintel_balancer_release(b, 0);
    CU_ASSERT_NOT_EQUAL(lintel_balancer_pick(b, NULL, 0, NULL), -1);
    lintel_balancer_free(b);
}

static void test_least_conn_weighted(void)
{
    static const unsigned w[] = {3, 1, 0};
    struct up u;
    up_init(&u, LINTEL_BALANCE_LEAST_CONN, NULL, w);
    struct lintel_balancer *b = lintel_balancer_new(&u.conf);
    CU_ASSERT_FATAL(b != NULL);
    int held[3] = {0};
    for (int i = 0; i < 8; i++) {
        int t = lintel_balancer_pick(b, NULL, 0, NULL);
        CU_ASSERT_FATAL(t == 0 || t == 1);
        held[t]++;
    }
    /* Held load ends proportional to weight. */
    CU_ASSERT_EQUAL(held[0], 6);
    CU_ASSERT_EQUAL(held[1], 2);
    lintel_balancer_free(b);
}

static void test_hash_same_key(void)
{
    static const unsigned w[] = {1, 1, 1, 1, 0};
    struct up u;
    up_init(&u, LINTEL_BALANCE_HASH, NULL, w);
    struct lintel_balancer *b = lintel_balancer_new(&u.conf);
    CU_ASSERT_FATAL(b != NULL);
    char key[32];
    int bad = 0;
    for (int k = 0; k < 200; k++) {
        snprintf(key, sizeof(key), "user-%d", k);
        int first = lintel_balancer_pick(b, key, strlen(key), NULL);
        lintel_balancer_release(b, first);
        for (int i = 0; i < 20; i++) {
            int t = lintel_balancer_pick(b, key, strlen(key), NULL);
            bad += t != first;
            lintel_balancer_release(b, t);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    lintel_balancer_free(b);
}

/* Shares of 40000 keys across targets stay within 25% of the weight-proportional share. */
static void hash_check_spread(const unsigned *w, size_t n)
{
    struct up u;
    up_init(&u, LINTEL_BALANCE_HASH, NULL, w);
    struct lintel_balancer *b = lintel_balancer_new(&u.conf);
    CU_ASSERT_FATAL(b != NULL);
    int count[MAXT] = {0};
    unsigned total = 0;
    char key[32];
    for (size_t i = 0; i < n; i++)
        total += w[i];
    for (int k = 0; k < 40000; k++) {
        snprintf(key, sizeof(key), "session:%d", k);
        int t = lintel_balancer_pick(b, key, strlen(key), NULL);
        CU_ASSERT_FATAL(t >= 0 && (size_t)t < n);
        count[t]++;
        lintel_balancer_release(b, t);
    }
    for (size_t i = 0; i < n; i++) {
        double want = 40000.0 * w[i] / total;
        CU_ASSERT(count[i] > want * 0.75 && count[i] < want * 1.25);
    }
    lintel_balancer_free(b);
}

static void test_hash_spread(void)
{
    static const unsigned even[] = {1, 1, 1, 1, 0};
    static const unsigned weighted[] = {3, 1, 2, 0};
    hash_check_spread(even, 4);
    hash_check_spread(weighted, 3);
}

static void test_hash_target_removed(void)
{
    static const unsigned w4[] = {1, 1, 1, 1, 0}, w3[] = {1, 1, 1, 0};
    static const int ids4[] = {1, 2, 3, 4}, ids3[] = {1, 2, 4};
    struct up u4, u3;
    up_init(&u4, LINTEL_BALANCE_HASH, ids4, w4);
    up_init(&u3, LINTEL_BALANCE_HASH, ids3, w3);
    struct lintel_balancer *b4 = lintel_balancer_new(&u4.conf);
    struct lintel_balancer *b3 = lintel_balancer_new(&u3.conf);
    CU_ASSERT_FATAL(b4 && b3);
    int kept = 0, moved = 0;
    char key[32];
    for (int k = 0; k < 20000; k++) {
        snprintf(key, sizeof(key), "client-%d", k);
        int t4 = lintel_balancer_pick(b4, key, strlen(key), NULL);
        int t3 = lintel_balancer_pick(b3, key, strlen(key), NULL);
        lintel_balancer_release(b4, t4);
        lintel_balancer_release(b3, t3);
        if (t4 == 2) /* 10.0.0.3, the removed one */
            continue;
        if (strcmp(u4.targets[t4].addr.text, u3.targets[t3].addr.text) == 0)
            kept++;
        else
            moved++;
    }
    CU_ASSERT(kept > 10000);
    CU_ASSERT_EQUAL(moved, 0);
    lintel_balancer_free(b4);
    lintel_balancer_free(b3);
}

static void test_hash_without_key(void)
{
    static const unsigned w[] = {1, 1, 1, 0};
    struct up u;
    up_init(&u, LINTEL_BALANCE_HASH, NULL, w);
    struct lintel_balancer *b = lintel_balancer_new(&u.conf);
    CU_ASSERT_FATAL(b != NULL);
    int count[3] = {0};
    for (int i = 0; i < 300; i++) {
        int t = lintel_balancer_pick(b, NULL, 0, NULL);
        count[t]++;
        lintel_balancer_release(b, t);
    }
    CU_ASSERT(count[0] == 100 && count[1] == 100 && count[2] == 100);
    lintel_balancer_free(b);
}

static void test_hash_skip_walks_ring(void)
{
    static const unsigned w[] = {1, 1, 1, 1, 0};
    struct up u;
    up_init(&u, LINTEL_BALANCE_HASH, NULL, w);
    struct lintel_balancer *b = lintel_balancer_new(&u.conf);
    CU_ASSERT_FATAL(b != NULL);
    char key[32];
    int bad = 0, spread[4] = {0};
    for (int k = 0; k < 4000; k++) {
        snprintf(key, sizeof(key), "k%d", k);
        unsigned char skip[4] = {0};
        int t = lintel_balancer_pick(b, key, strlen(key), NULL);
        lintel_balancer_release(b, t);
        skip[t] = 1;
        int u1 = lintel_balancer_pick(b, key, strlen(key), skip);
        lintel_balancer_release(b, u1);
        int u2 = lintel_balancer_pick(b, key, strlen(key), skip);
        lintel_balancer_release(b, u2);
        /* A retry avoids the skipped target and is itself stable. */
        bad += u1 == t || u1 < 0 || u1 != u2;
        if (t == 0 && u1 >= 0)
            spread[u1]++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* The skipped target's keys spread over all the others. */
    CU_ASSERT(spread[1] > 0 && spread[2] > 0 && spread[3] > 0);
    lintel_balancer_free(b);
}

static void test_hash64(void)
{
    CU_ASSERT_EQUAL(lintel_hash64("abc", 3), lintel_hash64("abc", 3));
    CU_ASSERT_NOT_EQUAL(lintel_hash64("abc", 3), lintel_hash64("abd", 3));
    CU_ASSERT_NOT_EQUAL(lintel_hash64("a", 1), lintel_hash64("a\0", 2));
    CU_ASSERT_NOT_EQUAL(lintel_hash64("", 0), lintel_hash64("\0", 1));
    CU_ASSERT_NOT_EQUAL(lintel_hash64("0123456789abcdefX", 17),
                        lintel_hash64("0123456789abcdefY", 17));
    /* Flipping one input bit flips about half of the output bits. */
    unsigned char buf[24];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (unsigned char)(i * 37 + 11);
    unsigned long flips = 0, trials = 0;
    uint64_t h = lintel_hash64(buf, sizeof(buf));
    for (size_t bit = 0; bit < sizeof(buf) * 8; bit++, trials++) {
        buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        flips += (unsigned long)__builtin_popcountll(h ^ lintel_hash64(buf, sizeof(buf)));
        buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    }
    double mean = (double)flips / (double)trials;
    CU_ASSERT(mean > 30.0 && mean < 34.0);
}

static CU_TestInfo balance_tests[] = {
    {"wrr: exactly proportional", test_wrr_proportional},
    {"wrr: smooth for 5:1:1", test_wrr_smooth},
    {"skip, all skipped gives -1", test_skip},
    {"least_conn: idle first, release", test_least_conn},
    {"least_conn: weighted", test_least_conn_weighted},
    {"hash: same key, same target", test_hash_same_key},
    {"hash: even and weighted spread", test_hash_spread},
    {"hash: removing a target moves only its keys", test_hash_target_removed},
    {"hash: no key falls back to round robin", test_hash_without_key},
    {"hash: skip walks the ring", test_hash_skip_walks_ring},
    {"lintel_hash64", test_hash64},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"balance", NULL, NULL, NULL, NULL, balance_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    if (CU_register_suites(suites) != CUE_SUCCESS) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
