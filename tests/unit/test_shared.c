/* Tests for core/shared.c: counters (windows, namespaces, exact totals under contention,
 * concurrent first insert of a key), counter_window (previous window, add-then-check exact under
 * contention), the cache (ttl, overwrite, sizes, no torn reads under concurrent set/get, add with
 * exactly one winner), what happens when a table is full, and expired entries' slots reused by
 * other keys, also while threads churn through keys. */
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

static atomic_int race_go;

/* Starts fn on each of THREADS jobs (job i at jobs + i * size), lets them all go at once through
 * race_go and waits for every one. */
static void run_threads(void *(*fn)(void *), void *jobs, size_t size)
{
    pthread_t t[THREADS];
    atomic_store(&race_go, 0);
    for (int i = 0; i < THREADS; i++)
        CU_ASSERT_FATAL(pthread_create(&t[i], NULL, fn, (char *)jobs + (size_t)i * size) == 0);
    atomic_store(&race_go, 1);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
}

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
    struct counter_job jobs[THREADS];
    for (int i = 0; i < THREADS; i++)
        jobs[i] = (struct counter_job){.s = s, .window_ms = window_ms};
    run_threads(on_counter_thread, jobs, sizeof(jobs[0]));
    int failures = 0;
    for (int i = 0; i < THREADS; i++) {
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
    struct counter_job jobs[THREADS];
    for (int i = 0; i < THREADS; i++)
        jobs[i] = (struct counter_job){.s = s};
    run_threads(on_race_thread, jobs, sizeof(jobs[0]));
    int failures = 0;
    for (int i = 0; i < THREADS; i++) {
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

/* ---- counter_window ----------------------------------------------------------------------- */

#define PAIR_WINDOW 200

static void test_counter_window_previous(void)
{
    struct lintel_shared *s = lintel_shared_new(64, 0, 0);
    CU_ASSERT_FATAL(s != NULL);
    struct lintel_shared_window w;
    CU_ASSERT_EQUAL(lintel_shared_counter_window(s, "p/a", "k", 1, 0, &w), -1);

    wait_window_room(PAIR_WINDOW, 100);
    uint64_t window = mono_ms() / PAIR_WINDOW;
    for (int i = 1; i <= 3; i++) {
        CU_ASSERT_EQUAL(lintel_shared_counter_window(s, "p/a", "k", 1, PAIR_WINDOW, &w), 0);
        CU_ASSERT_EQUAL(w.value, i);
        CU_ASSERT_EQUAL(w.previous, 0);
        CU_ASSERT_EQUAL(w.elapsed_ms + w.reset_ms, PAIR_WINDOW);
    }
    CU_ASSERT_EQUAL(lintel_shared_counter_window(s, "p/a", "k", -1, PAIR_WINDOW, &w), 0);
    CU_ASSERT_EQUAL(w.value, 2);
    /* counter_add's counter of the same name and window is another counter. */
    int64_t v = 0;
    CU_ASSERT_EQUAL(lintel_shared_counter_add(s, "p/a", "k", 1, PAIR_WINDOW, &v, NULL), 0);
    CU_ASSERT_EQUAL(v, 1);

    /* The next window starts from 0 and reports the last one's final value. */
    wait_window_room(PAIR_WINDOW, PAIR_WINDOW); /* sleeps into the next window */
    CU_ASSERT_EQUAL(lintel_shared_counter_window(s, "p/a", "k", 1, PAIR_WINDOW, &w), 0);
    if (mono_ms() / PAIR_WINDOW == window + 1) {
        CU_ASSERT_EQUAL(w.value, 1);
        CU_ASSERT_EQUAL(w.previous, 2);
        CU_ASSERT(w.elapsed_ms < PAIR_WINDOW);
    } else {
        printf("\n    slept past a whole window, previous not checked\n");
    }
    /* Two windows later: nothing left of it. */
    sleep_ms(2 * PAIR_WINDOW + 10);
    CU_ASSERT_EQUAL(lintel_shared_counter_window(s, "p/a", "k", 5, PAIR_WINDOW, &w), 0);
    CU_ASSERT_EQUAL(w.value, 5);
    CU_ASSERT_EQUAL(w.previous, 0);
    /* Saturation at 2^31 - 1. */
    CU_ASSERT_EQUAL(lintel_shared_counter_window(s, "p/a", "big", INT64_MAX, UINT64_C(1) << 40, &w),
                    0);
    CU_ASSERT_EQUAL(w.value, INT32_MAX);
    CU_ASSERT_EQUAL(lintel_shared_counter_window(s, "p/a", "big", -1, UINT64_C(1) << 40, &w), 0);
    CU_ASSERT_EQUAL(w.value, INT32_MAX - 1);
    lintel_shared_free(s);
}

/* Threads admit requests with add-then-check: add 1, and take it back when over the limit. */
#define LIMIT 1000
#define ATTEMPTS 50000

struct limit_job {
    struct lintel_shared *s;
    int admitted, failures;
};

static void *on_limit_thread(void *arg)
{
    struct limit_job *job = arg;
    while (!atomic_load(&race_go))
        ;
    for (int i = 0; i < ATTEMPTS; i++) {
        struct lintel_shared_window w;
        if (lintel_shared_counter_window(job->s, "p/l", "hot", 1, UINT64_C(1) << 40, &w) != 0) {
            job->failures++;
            continue;
        }
        if (w.value + w.previous <= LIMIT)
            job->admitted++;
        else if (lintel_shared_counter_window(job->s, "p/l", "hot", -1, UINT64_C(1) << 40, NULL))
            job->failures++;
    }
    return NULL;
}

static void test_counter_window_limit_threads(void)
{
    struct lintel_shared *s = lintel_shared_new(1024, 0, 0);
    CU_ASSERT_FATAL(s != NULL);
    struct limit_job jobs[THREADS];
    for (int i = 0; i < THREADS; i++)
        jobs[i] = (struct limit_job){.s = s};
    run_threads(on_limit_thread, jobs, sizeof(jobs[0]));
    int admitted = 0, failures = 0;
    for (int i = 0; i < THREADS; i++) {
        admitted += jobs[i].admitted;
        failures += jobs[i].failures;
    }
    CU_ASSERT_EQUAL(failures, 0);
    CU_ASSERT_EQUAL(admitted, LIMIT);
    struct lintel_shared_window w;
    CU_ASSERT_EQUAL(lintel_shared_counter_window(s, "p/l", "hot", 0, UINT64_C(1) << 40, &w), 0);
    CU_ASSERT_EQUAL(w.value, LIMIT);
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

static void test_cache_add(void)
{
    struct lintel_shared *s = lintel_shared_new(0, 64, 16);
    CU_ASSERT_FATAL(s != NULL);
    char buf[16] = {0};
    CU_ASSERT_EQUAL(lintel_shared_cache_add(s, "c/a", "n", "first", 5, 50), 1);
    CU_ASSERT_EQUAL(lintel_shared_cache_add(s, "c/a", "n", "second", 6, 50), 0);
    CU_ASSERT_EQUAL(lintel_shared_cache_get(s, "c/a", "n", buf, sizeof(buf)), 5);
    CU_ASSERT_EQUAL(memcmp(buf, "first", 5), 0);
    CU_ASSERT_EQUAL(lintel_shared_cache_add(s, "c/b", "n", "other", 5, 50), 1);
    /* Expired counts as absent. */
    sleep_ms(70);
    CU_ASSERT_EQUAL(lintel_shared_cache_add(s, "c/a", "n", "third", 5, 0), 1);
    CU_ASSERT_EQUAL(lintel_shared_cache_get(s, "c/a", "n", buf, sizeof(buf)), 5);
    CU_ASSERT_EQUAL(memcmp(buf, "third", 5), 0);
    /* A set's value is present too; errors as for set. */
    CU_ASSERT_EQUAL(lintel_shared_cache_set(s, "c/a", "s", "x", 1, 0), 0);
    CU_ASSERT_EQUAL(lintel_shared_cache_add(s, "c/a", "s", "y", 1, 0), 0);
    CU_ASSERT_EQUAL(lintel_shared_cache_add(s, "c/a", "big", buf, 17, 0), -1);
    CU_ASSERT_EQUAL(lintel_shared_cache_add(s, "c/a", "null", NULL, 1, 0), -1);
    lintel_shared_free(s);
}

/* Every thread adds the same fresh keys in the same order, each with its own value: exactly one
 * add per key returns 1, and the key then holds that thread's value. */
static atomic_int add_wins[RACE_KEYS];
static atomic_int add_winner[RACE_KEYS];

static void *on_add_race_thread(void *arg)
{
    struct counter_job *job = arg;
    while (!atomic_load(&race_go))
        ;
    char key[32];
    for (int i = 0; i < RACE_KEYS; i++) {
        snprintf(key, sizeof(key), "n%d", i);
        int rc = lintel_shared_cache_add(job->s, "c/r", key, &job->window_ms,
                                         sizeof(job->window_ms), 60000);
        if (rc < 0)
            job->failures++;
        if (rc == 1) {
            atomic_fetch_add(&add_wins[i], 1);
            atomic_store(&add_winner[i], (int)job->window_ms);
        }
    }
    return NULL;
}

static void test_cache_add_race(void)
{
    struct lintel_shared *s = lintel_shared_new(0, 4096, 8);
    CU_ASSERT_FATAL(s != NULL);
    struct counter_job jobs[THREADS];
    for (int i = 0; i < THREADS; i++)
        jobs[i] = (struct counter_job){.s = s, .window_ms = (uint64_t)i + 1}; /* its value */
    run_threads(on_add_race_thread, jobs, sizeof(jobs[0]));
    int failures = 0;
    for (int i = 0; i < THREADS; i++) {
        failures += jobs[i].failures;
    }
    CU_ASSERT_EQUAL(failures, 0);
    int wrong = 0;
    char key[32];
    for (int i = 0; i < RACE_KEYS; i++) {
        uint64_t v = 0;
        snprintf(key, sizeof(key), "n%d", i);
        if (atomic_load(&add_wins[i]) != 1 ||
            lintel_shared_cache_get(s, "c/r", key, &v, sizeof(v)) != (ssize_t)sizeof(v) ||
            v != (uint64_t)atomic_load(&add_winner[i]))
            wrong++;
    }
    CU_ASSERT_EQUAL(wrong, 0);
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

/* A full table takes new keys once old entries have expired. */
static void test_reuse_after_expiry(void)
{
    struct lintel_shared *s = lintel_shared_new(8, 8, 8);
    CU_ASSERT_FATAL(s != NULL);
    char key[16], buf[8];
    struct lintel_shared_window w;
    int64_t v = 0;
    for (int i = 0; i < 8; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        int rc = i % 2 ? lintel_shared_counter_window(s, "p/a", key, 1, 20, &w)
                       : lintel_shared_counter_add(s, "p/a", key, 1, 20, &v, NULL);
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_EQUAL(lintel_shared_cache_set(s, "p/a", key, "v", 1, 20), 0);
    }
    CU_ASSERT_EQUAL(lintel_shared_counter_window(s, "p/a", "new", 1, 20, &w), -1);
    CU_ASSERT_EQUAL(lintel_shared_counter_add(s, "p/a", "new", 1, 20, &v, NULL), -1);
    CU_ASSERT_EQUAL(lintel_shared_cache_add(s, "p/a", "new", "v", 1, 0), -1);
    /* A key touched every window stays; the others are two windows old after 60 ms. */
    for (int i = 0; i < 4; i++) {
        sleep_ms(15);
        CU_ASSERT_EQUAL(lintel_shared_counter_window(s, "p/a", "k1", 1, 20, &w), 0);
    }
    for (int i = 0; i < 7; i++) {
        snprintf(key, sizeof(key), "n%d", i);
        CU_ASSERT_EQUAL(lintel_shared_counter_window(s, "p/a", key, 3, 20, &w), 0);
        CU_ASSERT_EQUAL(w.value, 3);
        CU_ASSERT_EQUAL(w.previous, 0);
        CU_ASSERT_EQUAL(lintel_shared_cache_add(s, "p/a", key, "w", 1, 0), 1);
    }
    CU_ASSERT_EQUAL(lintel_shared_counter_add(s, "p/a", "n7", 1, 20, &v, NULL), -1); /* k1 lives */
    CU_ASSERT_EQUAL(lintel_shared_cache_set(s, "p/a", "n7", "w", 1, 0), 0);
    CU_ASSERT_EQUAL(lintel_shared_cache_get(s, "p/a", "k3", buf, sizeof(buf)), -1);
    CU_ASSERT_EQUAL(lintel_shared_cache_get(s, "p/a", "n7", buf, sizeof(buf)), 1);
    CU_ASSERT_EQUAL(buf[0], 'w');
    /* Values without expiry are never freed. */
    CU_ASSERT_EQUAL(lintel_shared_cache_set(s, "p/a", "n8", "w", 1, 0), -1);
    lintel_shared_free(s);
}

/* Threads churn through fresh keys in tables much smaller than what they insert, so slots are
 * reclaimed all the time under the feet of other threads. A fresh key must always look fresh
 * (counter 1 and no previous window; cache add 1 and its own value back), never another key's. */
#define CHURN_ROUNDS 20000

struct churn_job {
    struct lintel_shared *s;
    int id;
    int ok, full, wrong;
};

static void *on_churn_thread(void *arg)
{
    struct churn_job *job = arg;
    while (!atomic_load(&race_go))
        ;
    char key[32];
    for (int i = 0; i < CHURN_ROUNDS; i++) {
        snprintf(key, sizeof(key), "t%d-%d", job->id, i);
        struct lintel_shared_window w;
        if (lintel_shared_counter_window(job->s, "p/c", key, 1, 1, &w) != 0) {
            job->full++;
        } else {
            job->ok++;
            if (w.value != 1 || w.previous != 0)
                job->wrong++;
            if (lintel_shared_counter_window(job->s, "p/c", key, 1, 1, &w) == 0 &&
                !((w.value == 2 && w.previous == 0) || (w.value == 1 && w.previous <= 1)))
                job->wrong++;
        }
        uint64_t mine = (uint64_t)job->id << 32 | (uint64_t)i, got = 0;
        int rc = lintel_shared_cache_add(job->s, "p/c", key, &mine, sizeof(mine), 1);
        if (rc < 0) {
            job->full++;
        } else if (rc == 0) {
            job->wrong++; /* nobody else ever adds this key */
        } else {
            job->ok++;
            ssize_t n = lintel_shared_cache_get(job->s, "p/c", key, &got, sizeof(got));
            if (n >= 0 && (n != (ssize_t)sizeof(got) || got != mine))
                job->wrong++;
        }
    }
    return NULL;
}

static void test_reuse_under_threads(void)
{
    struct lintel_shared *s = lintel_shared_new(16, 16, 8);
    CU_ASSERT_FATAL(s != NULL);
    struct churn_job jobs[THREADS];
    for (int i = 0; i < THREADS; i++)
        jobs[i] = (struct churn_job){.s = s, .id = i};
    run_threads(on_churn_thread, jobs, sizeof(jobs[0]));
    int ok = 0, full = 0, wrong = 0;
    for (int i = 0; i < THREADS; i++) {
        ok += jobs[i].ok;
        full += jobs[i].full;
        wrong += jobs[i].wrong;
    }
    printf("\n    %d fresh keys stored in 2 x 16 slots, %d refused as full\n", ok, full);
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT(ok > 32 * 10); /* many times the tables' size: slots were reused */
    lintel_shared_free(s);
}

static CU_TestInfo shared_tests[] = {
    {"counter add", test_counter_add},
    {"counter window expiry", test_counter_window},
    {"namespaces are isolated", test_namespaces},
    {"4 threads x 100k on one counter", test_counter_threads},
    {"4 threads x 100k on one windowed counter", test_counter_threads_windowed},
    {"concurrent first insert of the same keys", test_counter_insert_race},
    {"counter_window: previous window, undo, expiry, saturation", test_counter_window_previous},
    {"counter_window: 4 threads add-then-check admit exactly the limit",
     test_counter_window_limit_threads},
    {"cache set/get/overwrite/sizes", test_cache_basic},
    {"cache ttl", test_cache_ttl},
    {"cache: no torn reads under concurrent set/get", test_cache_no_torn_reads},
    {"cache_add: only when absent or expired", test_cache_add},
    {"cache_add: exactly one winner per key under threads", test_cache_add_race},
    {"table full, disabled tables, long keys", test_table_full},
    {"expired entries free their slots for new keys", test_reuse_after_expiry},
    {"slot reuse while threads churn through keys", test_reuse_under_threads},
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
