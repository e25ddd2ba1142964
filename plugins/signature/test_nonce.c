/* Tests nonce.c, the replay store: first-seen and seen, expiry and slot reuse, a full probe run,
 * growth by a second segment, one store per image shared by acquirers, and threads racing on the
 * same nonce (exactly one of them must win). */
#include <CUnit/Basic.h>
#include <lintel/testkit.h>
#include <pthread.h>
#include <string.h>

#include "signature-internal.h"

#define NOW 1741082400u

static void test_first_then_seen(void)
{
    struct sig_nonce_store *s = sig_nonce_acquire(1024);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(sig_nonce_check(s, 42, NOW + 300, NOW), SIG_NONCE_FIRST);
    CU_ASSERT_EQUAL(sig_nonce_check(s, 42, NOW + 300, NOW), SIG_NONCE_SEEN);
    CU_ASSERT_EQUAL(sig_nonce_check(s, 42, NOW + 300, NOW + 299), SIG_NONCE_SEEN);
    CU_ASSERT_EQUAL(sig_nonce_check(s, 43, NOW + 300, NOW), SIG_NONCE_FIRST);
    /* at its expiry second the entry is gone: the nonce is new again */
    CU_ASSERT_EQUAL(sig_nonce_check(s, 42, NOW + 600, NOW + 300), SIG_NONCE_FIRST);
    CU_ASSERT_EQUAL(sig_nonce_check(s, 42, NOW + 600, NOW + 301), SIG_NONCE_SEEN);
    sig_nonce_release(s);
}

/* Fingerprints with the same home slot in a 1024-slot segment. */
static uint64_t same_home(unsigned i)
{
    return 5 + (uint64_t)i * 1024;
}

static void test_full_run_and_reuse(void)
{
    struct sig_nonce_store *s = sig_nonce_acquire(1024);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    /* the probe run holds 64 entries; the 65th finds no room */
    for (unsigned i = 0; i < 64; i++)
        CU_ASSERT_EQUAL(sig_nonce_check(s, same_home(i), NOW + 10 + i, NOW), SIG_NONCE_FIRST);
    CU_ASSERT_EQUAL(sig_nonce_check(s, same_home(64), NOW + 100, NOW), SIG_NONCE_FULL);
    /* a full run still knows what it holds, also the last entry of the run */
    CU_ASSERT_EQUAL(sig_nonce_check(s, same_home(63), NOW + 100, NOW), SIG_NONCE_SEEN);
    /* the first entry expires: its slot is reused, and entries behind it are still found */
    CU_ASSERT_EQUAL(sig_nonce_check(s, same_home(64), NOW + 100, NOW + 10), SIG_NONCE_FIRST);
    CU_ASSERT_EQUAL(sig_nonce_check(s, same_home(1), NOW + 100, NOW + 10), SIG_NONCE_SEEN);
    CU_ASSERT_EQUAL(sig_nonce_check(s, same_home(63), NOW + 100, NOW + 10), SIG_NONCE_SEEN);
    CU_ASSERT_EQUAL(sig_nonce_check(s, same_home(65), NOW + 100, NOW + 10), SIG_NONCE_FULL);
    /* an expired entry is not a replay even when its slot was not reused yet */
    CU_ASSERT_EQUAL(sig_nonce_check(s, same_home(2), NOW + 100, NOW + 12), SIG_NONCE_FIRST);
    sig_nonce_release(s);
}

static void test_one_store_that_grows(void)
{
    struct sig_nonce_store *a = sig_nonce_acquire(1024);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    for (unsigned i = 0; i < 64; i++)
        sig_nonce_check(a, same_home(i), NOW + 100, NOW);
    CU_ASSERT_EQUAL(sig_nonce_check(a, same_home(64), NOW + 100, NOW), SIG_NONCE_FULL);
    /* a second instance asking for more: the same store (same salt), one more segment */
    struct sig_nonce_store *b = sig_nonce_acquire(4096);
    CU_ASSERT_PTR_EQUAL_FATAL(a, b);
    CU_ASSERT_EQUAL(sig_nonce_check(b, same_home(64), NOW + 100, NOW), SIG_NONCE_FIRST);
    CU_ASSERT_EQUAL(sig_nonce_check(a, same_home(64), NOW + 100, NOW), SIG_NONCE_SEEN);
    CU_ASSERT_EQUAL(sig_nonce_check(b, same_home(3), NOW + 100, NOW), SIG_NONCE_SEEN);
    /* asking for less changes nothing */
    struct sig_nonce_store *c = sig_nonce_acquire(1024);
    CU_ASSERT_PTR_EQUAL(c, a);
    sig_nonce_release(c);
    sig_nonce_release(b);
    CU_ASSERT_EQUAL(sig_nonce_check(a, same_home(64), NOW + 100, NOW), SIG_NONCE_SEEN);
    sig_nonce_release(a);

    /* the last release freed it: a new store starts empty, with a new salt */
    struct sig_nonce_store *d = sig_nonce_acquire(1024);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(sig_nonce_check(d, same_home(64), NOW + 100, NOW), SIG_NONCE_FIRST);
    sig_nonce_release(d);
}

/* ---- threads racing on one nonce ------------------------------------------------------------ */

#define THREADS 8
#define ROUNDS 2000

static struct sig_nonce_store *race_store;
static pthread_barrier_t race_barrier;
static int race_first[ROUNDS], race_full;
static pthread_mutex_t race_lock = PTHREAD_MUTEX_INITIALIZER;

static void *racer(void *arg)
{
    (void)arg;
    for (int round = 0; round < ROUNDS; round++) {
        pthread_barrier_wait(&race_barrier);
        /* every thread offers this round's fingerprint at the same moment */
        uint64_t fp = 0x9e3779b97f4a7c15ull * (uint64_t)(round + 1);
        enum sig_nonce_result r = sig_nonce_check(race_store, fp, NOW + 300, NOW);
        if (r != SIG_NONCE_SEEN) { /* CUnit is not thread-safe: counted, asserted after */
            pthread_mutex_lock(&race_lock);
            if (r == SIG_NONCE_FIRST)
                race_first[round]++;
            else
                race_full++;
            pthread_mutex_unlock(&race_lock);
        }
    }
    return NULL;
}

static void test_threads_same_nonce(void)
{
    race_store = sig_nonce_acquire(65536);
    CU_ASSERT_PTR_NOT_NULL_FATAL(race_store);
    pthread_barrier_init(&race_barrier, NULL, THREADS);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, racer, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&race_barrier);
    int wrong = 0;
    for (int round = 0; round < ROUNDS; round++)
        wrong += race_first[round] != 1;
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(race_full, 0);
    sig_nonce_release(race_store);
}

static CU_TestInfo nonce_tests[] = {
    {"a nonce is first once, then seen until it expires", test_first_then_seen},
    {"a full probe run refuses; expired slots are reused", test_full_run_and_reuse},
    {"one store per image, grown by a larger request", test_one_store_that_grows},
    {"threads checking one nonce at once: exactly one first", test_threads_same_nonce},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"signature nonce store", NULL, NULL, NULL, NULL, nonce_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return lk_test_run(suites);
}
