/* Tests for core/shared.c: counters (windows, namespaces, exact totals under contention,
 * concurrent first insert of a key), the cache (ttl, overwrite, sizes, no torn reads under
 * concurrent set/get) and what happens when a table is full. */
#include <CUnit/Basic.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "shared.h"

#define THREADS 4
#define INCREMENTS 100000

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Waits until at least need ms are left in the current window of window_ms (windows are aligned
 * on the monotonic clock). */
static void wait_window_room(uint64_t window_ms, uint64_t need)
{
    uint64_t left = window_ms - mono_ms() % window_ms;
    if (left < need)
        sleep_ms(left + 1);
}

static void test_counter_add(void)
{
    struct lintel_shared *s = lintel_shared_new(64, 0, 0);
    CU_ASSERT_FATAL(s != NULL);
    int64_t v = -1;
    uint64_t reset = 99;
    CU_ASSERT_EQUAL(lintel_shared_counter_add(s, "p/a", "k", 1, 0, &v, &reset), 0);
    CU_ASSERT_EQUAL(v, 1);
    CU_ASSERT_EQUAL(reset, 0);
    CU_ASSERT_EQUAL(lintel_shared_counter_add(s, "p/a", "k", 5, 0, &v, NULL), 0);
    CU_ASSERT_EQUAL(v, 6);
    CU_ASSERT_EQUAL(lintel_shared_counter_add(s, "p/a", "k", -8, 0, NULL, NULL), 0);
    CU_ASSERT_EQUAL(lintel_shared_counter_add(s, "p/a", "k", 0, 0, &v, NULL), 0);
    CU_ASSERT_EQUAL(v, -2);
    lintel_shared_free(s);
}

static void test_counter_window(void)
{
    struct lintel_shared *s = lintel_shared_new(64, 0, 0);
    CU_ASSERT_FATAL(s != NULL);
    int64_t v = 0;
    uint64_t reset = 0;
    wait_window_room(50, 30);
    for (int i = 1; i <= 3; i++) {
        CU_ASSERT_EQUAL(lintel_shared_counter_add(s, "p/a", "w", 1, 50, &v, &reset), 0);
        CU_ASSERT_EQUAL(v, i);
        CU_ASSERT(reset >= 1 && reset <= 50);
    }
    sleep_ms(60); /* past the window's end whatever its phase */
    CU_ASSERT_EQUAL(lintel_shared_counter_add(s, "p/a", "w", 1, 50, &v, &reset), 0);
    CU_ASSERT_EQUAL(v, 1);
    CU_ASSERT(reset >= 1 && reset <= 50);

    /* A window long enough not to end during the test accumulates. */
    for (int i = 1; i <= 10; i++)
        CU_ASSERT_EQUAL(lintel_shared_counter_add(s, "p/a", "long", 2, UINT64_C(1) << 62, &v, NULL),
                        0);
    CU_ASSERT_EQUAL(v, 20);
    /* Negative counts and saturation of windowed counters. */
    CU_ASSERT_EQUAL(lintel_shared_counter_add(s, "p/a", "neg", -5, 1000000, &v, NULL), 0);
    CU_ASSERT_EQUAL(v, -5);
    CU_ASSERT_EQUAL(
        lintel_shared_counter_add(s, "p/a", "sat", INT64_MAX, UINT64_C(1) << 62, &v, NULL), 0);
    CU_ASSERT_EQUAL(v, (INT64_C(1) << 39) - 1);
    CU_ASSERT_EQUAL(lintel_shared_counter_add(s, "p/a", "sat", -1, UINT64_C(1) << 62, &v, NULL), 0);
    CU_ASSERT_EQUAL(v, (INT64_C(1) << 39) - 2);
    lintel_shared_free(s);
}

static void test_namespaces(void)
{
    struct lintel_shared *s = lintel_shared_new(64, 64, 16);
    CU_ASSERT_FATAL(s != NULL);
    int64_t v = 0;
    CU_ASSERT_EQUAL(lintel_shared_counter_add(s, "rl/a", "k", 3, 0, &v, NULL), 0);
    CU_ASSERT_EQUAL(lintel_shared_counter_add(s, "rl/b", "k", 1, 0, &v, NULL), 0);
    CU_ASSERT_EQUAL(v, 1);
    CU_ASSERT_EQUAL(lintel_shared_counter_add(s, "rl/a", "k", 0, 0, &v, NULL), 0);
    CU_ASSERT_EQUAL(v, 3);
    /* The boundary between namespace and key is part of the identity. */
    CU_ASSERT_EQUAL(lintel_shared_counter_add(s, "a/b", "c", 1, 0, &v, NULL), 0);
    CU_ASSERT_EQUAL(lintel_shared_counter_add(s, "a", "b/c", 1, 0, &v, NULL), 0);
    CU_ASSERT_EQUAL(v, 1);

    char buf[16];
    CU_ASSERT_EQUAL(lintel_shared_cache_set(s, "c/a", "k", "AAA", 3, 0), 0);
    CU_ASSERT_EQUAL(lintel_shared_cache_get(s, "c/b", "k", buf, sizeof(buf)), -1);
    CU_ASSERT_EQUAL(lintel_shared_cache_set(s, "c/b", "k", "BB", 2, 0), 0);
    CU_ASSERT_EQUAL(lintel_shared_cache_get(s, "c/a", "k", buf, sizeof(buf)), 3);
    CU_ASSERT_EQUAL(memcmp(buf, "AAA", 3), 0);
    CU_ASSERT_EQUAL(lintel_shared_cache_get(s, "c/b", "k", buf, sizeof(buf)), 2);
    CU_ASSERT_EQUAL(memcmp(buf, "BB", 2), 0);
    lintel_shared_free(s);
}

/* ---- counters under contention ---------------------------------------------------------- */

struct counter_job {
    struct lintel_shared *s;
    uint64_t window_ms;
    int failures;
};

static void *on_counter_thread(void *arg)
{
    struct counter_job *job = arg;
    for (int i = 0; i < INCREMENTS; i++) {
        if (lintel_shared_counter_add(job->s, "p/i", "hot", 1, job->window_ms, NULL, NULL) != 0)
            job->failures++;
    }
    return NULL;
}

static void run_counter_threads(uint64_t window_ms)
{
    struct lintel_shared *s = lintel_shared_new(1024, 0, 0);
    CU_ASSERT_FATAL(s != NULL);
    pthread_t t[THREADS];
    struct counter_job jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (struct counter_job){.s = s, .window_ms = window_ms};
        CU_ASSERT_FATAL(pthread_create(&t[i], NULL, on_counter_thread, &jobs[i]) == 0);
    }
    int failures = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        failures += jobs[i].failures;
    }
    int64_t v = 0;
    CU_ASSERT_EQUAL(failures, 0);
    CU_ASSERT_EQUAL(lintel_shared_counter_add(s, "p/i", "hot", 0, window_ms, &v, NULL), 0);
    CU_ASSERT_EQUAL(v, (int64_t)THREADS * INCREMENTS);
    lintel_shared_free(s);
}

static void test_counter_threads(void)
{
    run_counter_threads(0);
}

static void test_counter_threads_windowed(void)
{
    run_counter_threads(UINT64_C(1) << 62);
}

/* Every thread adds 1 to the same fresh keys in the same order, so each key's first insert is
 * raced; a key inserted twice would show up as a count below THREADS. */
#define RACE_KEYS 2000

static atomic_int race_go;

static void *on_race_thread(void *arg)
{
    struct counter_job *job = arg;
    while (!atomic_load(&race_go))
        ;
    char key[32];
    for (int i = 0; i < RACE_KEYS; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        if (lintel_shared_counter_add(job->s, "p/r", key, 1, 0, NULL, NULL) != 0)
            job->failures++;
    }
    return NULL;
}

static void test_counter_insert_race(void)
{
    struct lintel_shared *s = lintel_shared_new(4096, 0, 0);
    CU_ASSERT_FATAL(s != NULL);
    atomic_store(&race_go, 0);
    pthread_t t[THREADS];
    struct counter_job jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (struct counter_job){.s = s};
        CU_ASSERT_FATAL(pthread_create(&t[i], NULL, on_race_thread, &jobs[i]) == 0);
    }
    atomic_store(&race_go, 1);
    int failures = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        failures += jobs[i].failures;
    }
    CU_ASSERT_EQUAL(failures, 0);
    int wrong = 0;
    char key[32];
    for (int i = 0; i < RACE_KEYS; i++) {
        int64_t v = 0;
        snprintf(key, sizeof(key), "k%d", i);
        if (lintel_shared_counter_add(s, "p/r", key, 0, 0, &v, NULL) != 0 || v != THREADS)
            wrong++;
    }
    CU_ASSERT_EQUAL(wrong, 0);
    lintel_shared_free(s);
}

/* ---- cache ------------------------------------------------------------------------------ */

static void test_cache_basic(void)
{
    struct lintel_shared *s = lintel_shared_new(0, 64, 32);
    CU_ASSERT_FATAL(s != NULL);
    char buf[64];
    CU_ASSERT_EQUAL(lintel_shared_cache_get(s, "c/a", "missing", buf, sizeof(buf)), -1);

    CU_ASSERT_EQUAL(lintel_shared_cache_set(s, "c/a", "k", "hello world", 11, 0), 0);
    memset(buf, 0, sizeof(buf));
    CU_ASSERT_EQUAL(lintel_shared_cache_get(s, "c/a", "k", buf, sizeof(buf)), 11);
    CU_ASSERT_STRING_EQUAL(buf, "hello world");

    /* Overwrite with a shorter value: the new length, the new bytes. */
    CU_ASSERT_EQUAL(lintel_shared_cache_set(s, "c/a", "k", "bye", 3, 0), 0);
    memset(buf, 0, sizeof(buf));
    CU_ASSERT_EQUAL(lintel_shared_cache_get(s, "c/a", "k", buf, sizeof(buf)), 3);
    CU_ASSERT_STRING_EQUAL(buf, "bye");

    /* A small buffer gets a cut copy and the full length. */
    CU_ASSERT_EQUAL(lintel_shared_cache_set(s, "c/a", "k", "0123456789", 10, 0), 0);
    memset(buf, 'x', sizeof(buf));
    CU_ASSERT_EQUAL(lintel_shared_cache_get(s, "c/a", "k", buf, 4), 10);
    CU_ASSERT_EQUAL(memcmp(buf, "0123x", 5), 0);
    CU_ASSERT_EQUAL(lintel_shared_cache_get(s, "c/a", "k", NULL, 0), 10);

    /* Empty and maximal values; one byte too many is refused and leaves the old value. */
    CU_ASSERT_EQUAL(lintel_shared_cache_set(s, "c/a", "empty", NULL, 0, 0), 0);
    CU_ASSERT_EQUAL(lintel_shared_cache_get(s, "c/a", "empty", buf, sizeof(buf)), 0);
    char big[33];
    memset(big, 'b', sizeof(big));
    CU_ASSERT_EQUAL(lintel_shared_cache_set(s, "c/a", "k", big, 32, 0), 0);
    CU_ASSERT_EQUAL(lintel_shared_cache_get(s, "c/a", "k", buf, sizeof(buf)), 32);
    CU_ASSERT_EQUAL(memcmp(buf, big, 32), 0);
    CU_ASSERT_EQUAL(lintel_shared_cache_set(s, "c/a", "k", big, 33, 0), -1);
    CU_ASSERT_EQUAL(lintel_shared_cache_get(s, "c/a", "k", buf, sizeof(buf)), 32);
    lintel_shared_free(s);
}

static void test_cache_ttl(void)
{
    struct lintel_shared *s = lintel_shared_new(0, 64, 32);
    CU_ASSERT_FATAL(s != NULL);
    char buf[32];
    CU_ASSERT_EQUAL(lintel_shared_cache_set(s, "c/a", "short", "v1", 2, 50), 0);
    CU_ASSERT_EQUAL(lintel_shared_cache_set(s, "c/a", "forever", "v2", 2, 0), 0);
    CU_ASSERT_EQUAL(lintel_shared_cache_get(s, "c/a", "short", buf, sizeof(buf)), 2);
    sleep_ms(70);
    CU_ASSERT_EQUAL(lintel_shared_cache_get(s, "c/a", "short", buf, sizeof(buf)), -1);
    CU_ASSERT_EQUAL(lintel_shared_cache_get(s, "c/a", "forever", buf, sizeof(buf)), 2);
    /* An expired key is set again in its own slot. */
    CU_ASSERT_EQUAL(lintel_shared_cache_set(s, "c/a", "short", "v3", 2, 0), 0);
    CU_ASSERT_EQUAL(lintel_shared_cache_get(s, "c/a", "short", buf, sizeof(buf)), 2);
    CU_ASSERT_EQUAL(memcmp(buf, "v3", 2), 0);
    lintel_shared_free(s);
}

/* Writers store values whose bytes all equal b and whose length follows from b; readers check
 * that every value they get is exactly one such value. */
#define TORN_VALUE_MAX 512
#define TORN_ROUNDS 200000

struct torn_job {
    struct lintel_shared *s;
    int id;
    atomic_int *writers_left;
    long torn, hits;
};

static size_t torn_len(unsigned char b)
{
    return 1 + ((size_t)b * 37) % TORN_VALUE_MAX;
}

static void *on_torn_writer(void *arg)
{
    struct torn_job *job = arg;
    unsigned char v[TORN_VALUE_MAX];
    for (int i = 0; i < TORN_ROUNDS; i++) {
        unsigned char b = (unsigned char)(i * 2 + job->id);
        memset(v, b, sizeof(v));
        lintel_shared_cache_set(job->s, "c/t", "key", v, torn_len(b), 0);
    }
    atomic_fetch_sub(job->writers_left, 1);
    return NULL;
}

static void *on_torn_reader(void *arg)
{
    struct torn_job *job = arg;
    unsigned char v[TORN_VALUE_MAX];
    while (atomic_load(job->writers_left) > 0) {
        ssize_t n = lintel_shared_cache_get(job->s, "c/t", "key", v, sizeof(v));
        if (n < 0)
            continue;
        job->hits++;
        bool ok = n >= 1 && (size_t)n == torn_len(v[0]);
        for (ssize_t i = 1; ok && i < n; i++)
            ok = v[i] == v[0];
        if (!ok)
            job->torn++;
    }
    return NULL;
}

static void test_cache_no_torn_reads(void)
{
    struct lintel_shared *s = lintel_shared_new(0, 16, TORN_VALUE_MAX);
    CU_ASSERT_FATAL(s != NULL);
    atomic_int writers_left = 2;
    pthread_t t[THREADS];
    struct torn_job jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (struct torn_job){.s = s, .id = i, .writers_left = &writers_left};
        CU_ASSERT_FATAL(
            pthread_create(&t[i], NULL, i < 2 ? on_torn_writer : on_torn_reader, &jobs[i]) == 0);
    }
    long torn = 0, hits = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        torn += jobs[i].torn;
        hits += jobs[i].hits;
    }
    CU_ASSERT_EQUAL(torn, 0);
    CU_ASSERT(hits > 0);
    lintel_shared_free(s);
}

/* ---- limits ----------------------------------------------------------------------------- */

static void test_table_full(void)
{
    struct lintel_shared *s = lintel_shared_new(8, 8, 8);
    CU_ASSERT_FATAL(s != NULL);
    char key[16];
    int64_t v = 0;
    for (int i = 0; i < 8; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        CU_ASSERT_EQUAL(lintel_shared_counter_add(s, "p/a", key, 1, 0, &v, NULL), 0);
        CU_ASSERT_EQUAL(lintel_shared_cache_set(s, "p/a", key, "v", 1, 1), 0);
    }
    CU_ASSERT_EQUAL(lintel_shared_counter_add(s, "p/a", "one-more", 1, 0, &v, NULL), -1);
    CU_ASSERT_EQUAL(lintel_shared_cache_set(s, "p/a", "one-more", "v", 1, 0), -1);
    char buf[8];
    CU_ASSERT_EQUAL(lintel_shared_cache_get(s, "p/a", "one-more", buf, sizeof(buf)), -1);
    /* Known keys keep working, expired ones included (their slot is theirs). */
    CU_ASSERT_EQUAL(lintel_shared_counter_add(s, "p/a", "k3", 1, 0, &v, NULL), 0);
    CU_ASSERT_EQUAL(v, 2);
    sleep_ms(5);
    CU_ASSERT_EQUAL(lintel_shared_cache_get(s, "p/a", "k5", buf, sizeof(buf)), -1);
    CU_ASSERT_EQUAL(lintel_shared_cache_set(s, "p/a", "k5", "w", 1, 0), 0);
    CU_ASSERT_EQUAL(lintel_shared_cache_get(s, "p/a", "k5", buf, sizeof(buf)), 1);
    lintel_shared_free(s);

    /* Disabled tables and oversized keys. */
    s = lintel_shared_new(0, 0, 0);
    CU_ASSERT_FATAL(s != NULL);
    CU_ASSERT_EQUAL(lintel_shared_counter_add(s, "p/a", "k", 1, 0, &v, NULL), -1);
    CU_ASSERT_EQUAL(lintel_shared_cache_set(s, "p/a", "k", "v", 1, 0), -1);
    lintel_shared_free(s);

    s = lintel_shared_new(8, 8, 8);
    CU_ASSERT_FATAL(s != NULL);
    char longkey[LINTEL_SHARED_KEY_MAX + 2];
    memset(longkey, 'x', sizeof(longkey));
    longkey[LINTEL_SHARED_KEY_MAX] = '\0';
    CU_ASSERT_EQUAL(lintel_shared_counter_add(s, "p/a", longkey, 1, 0, &v, NULL), 0);
    longkey[LINTEL_SHARED_KEY_MAX] = 'x';
    longkey[LINTEL_SHARED_KEY_MAX + 1] = '\0';
    CU_ASSERT_EQUAL(lintel_shared_counter_add(s, "p/a", longkey, 1, 0, &v, NULL), -1);
    CU_ASSERT_EQUAL(lintel_shared_cache_set(s, "p/a", longkey, "v", 1, 0), -1);
    CU_ASSERT_EQUAL(lintel_shared_cache_get(s, "p/a", longkey, buf, sizeof(buf)), -1);
    lintel_shared_free(s);

    CU_ASSERT_PTR_NULL(lintel_shared_new(8, 8, (size_t)64 * 1024 * 1024));
}

static CU_TestInfo shared_tests[] = {
    {"counter add", test_counter_add},
    {"counter window expiry", test_counter_window},
    {"namespaces are isolated", test_namespaces},
    {"4 threads x 100k on one counter", test_counter_threads},
    {"4 threads x 100k on one windowed counter", test_counter_threads_windowed},
    {"concurrent first insert of the same keys", test_counter_insert_race},
    {"cache set/get/overwrite/sizes", test_cache_basic},
    {"cache ttl", test_cache_ttl},
    {"cache: no torn reads under concurrent set/get", test_cache_no_torn_reads},
    {"table full, disabled tables, long keys", test_table_full},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"shared", NULL, NULL, NULL, NULL, shared_tests},
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
