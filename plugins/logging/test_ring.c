/* Tests ring.c: the per-worker byte queue, alone and with a producer and a consumer thread. */
#include <CUnit/Basic.h>
#include <lintel/testkit.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "logging-internal.h"

static void test_push_peek_consume(void)
{
    struct lg_ring r;
    CU_ASSERT_EQUAL_FATAL(lg_ring_init(&r, 5000), 0);
    CU_ASSERT_EQUAL(r.cap, 8192); /* a power of two */
    struct iovec iov[2];
    CU_ASSERT_EQUAL(lg_ring_peek(&r, iov), 0);
    CU_ASSERT_EQUAL(lg_ring_push(&r, "abc\n", 4), 4);
    CU_ASSERT_EQUAL(lg_ring_push(&r, "de\n", 3), 7);
    CU_ASSERT_EQUAL(lg_ring_peek(&r, iov), 7);
    CU_ASSERT_EQUAL(iov[0].iov_len, 7);
    CU_ASSERT_EQUAL(iov[1].iov_len, 0);
    CU_ASSERT_NSTRING_EQUAL(iov[0].iov_base, "abc\nde\n", 7);
    lg_ring_consume(&r, 7);
    CU_ASSERT_EQUAL(lg_ring_peek(&r, iov), 0);
    lg_ring_free(&r);
}

static void test_full_and_wrap(void)
{
    struct lg_ring r;
    CU_ASSERT_EQUAL_FATAL(lg_ring_init(&r, 4096), 0);
    char block[1000];
    memset(block, 'x', sizeof(block));
    for (int i = 0; i < 4; i++)
        CU_ASSERT(lg_ring_push(&r, block, sizeof(block)) > 0);
    CU_ASSERT_EQUAL(lg_ring_push(&r, block, sizeof(block)), -1); /* 4000 + 1000 > 4096 */
    CU_ASSERT_EQUAL(lg_ring_push(&r, block, 96), 4096);          /* exactly full */
    CU_ASSERT_EQUAL(lg_ring_push(&r, "y", 1), -1);
    struct iovec iov[2];
    CU_ASSERT_EQUAL(lg_ring_peek(&r, iov), 4096);
    lg_ring_consume(&r, 4096);
    CU_ASSERT(lg_ring_push(&r, block, 1000) > 0); /* head and tail at 5096: offset 1000 */
    lg_ring_consume(&r, 1000);
    CU_ASSERT(lg_ring_push(&r, block, 2000 - 1000) > 0);
    lg_ring_consume(&r, 1000); /* offset 2000 */
    /* The next record wraps around the end: two pieces, in order. */
    char rec[3000];
    for (size_t i = 0; i < sizeof(rec); i++)
        rec[i] = (char)('a' + i % 26);
    CU_ASSERT_EQUAL(lg_ring_push(&r, rec, sizeof(rec)), 3000);
    size_t n = lg_ring_peek(&r, iov);
    CU_ASSERT_EQUAL(n, 3000);
    CU_ASSERT_EQUAL(iov[0].iov_len, 2096);
    CU_ASSERT_EQUAL(iov[1].iov_len, 904);
    CU_ASSERT_EQUAL(memcmp(iov[0].iov_base, rec, 2096), 0);
    CU_ASSERT_EQUAL(memcmp(iov[1].iov_base, rec + 2096, 904), 0);
    lg_ring_consume(&r, n);
    CU_ASSERT_EQUAL(lg_ring_peek(&r, iov), 0);
    lg_ring_free(&r);
}

/* One producer, one consumer thread: every record arrives once, whole and in order, or is
 * refused at the producer (counted). Run under TSan to check the memory ordering. */
#define RECORDS 200000

static struct lg_ring shared;
static _Atomic int producer_done;

static void *consume(void *arg)
{
    unsigned long *next = arg, bad = 0;
    char rec[32];
    size_t have = 0;
    for (;;) {
        int done = producer_done;
        struct iovec iov[2];
        size_t n = lg_ring_peek(&shared, iov);
        for (int k = 0; k < 2; k++)
            for (size_t i = 0; i < iov[k].iov_len; i++) {
                char c = ((char *)iov[k].iov_base)[i];
                rec[have++] = c;
                if (c == '\n') {
                    unsigned long v;
                    if (sscanf(rec, "%lu", &v) != 1 || v < *next)
                        bad++;
                    *next = v + 1;
                    have = 0;
                }
                if (have == sizeof(rec))
                    have = 0, bad++;
            }
        lg_ring_consume(&shared, n);
        if (done && !n)
            break;
    }
    return (void *)bad;
}

static void test_two_threads(void)
{
    CU_ASSERT_EQUAL_FATAL(lg_ring_init(&shared, 4096), 0);
    unsigned long next = 0, refused = 0;
    pthread_t t;
    producer_done = 0;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, consume, &next), 0);
    for (unsigned long i = 0; i < RECORDS; i++) {
        char rec[32];
        int n = snprintf(rec, sizeof(rec), "%lu\n", i);
        if (lg_ring_push(&shared, rec, (size_t)n) < 0)
            refused++;
    }
    producer_done = 1;
    void *bad;
    pthread_join(t, &bad);
    CU_ASSERT_PTR_NULL(bad);
    CU_ASSERT(refused < RECORDS);
    lg_ring_free(&shared);
}

static CU_TestInfo ring_tests[] = {
    {"push, peek, consume", test_push_peek_consume},
    {"full ring refuses whole records; wrap-around", test_full_and_wrap},
    {"producer and consumer threads", test_two_threads},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"logging ring.c", NULL, NULL, NULL, NULL, ring_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return lk_test_run(suites);
}
