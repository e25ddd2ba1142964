/* Tests for core/metrics.c: counting across shards, the latency histogram, label escaping,
 * overflow into "_other" when a shard's tables are full, plugin counters added from worker
 * threads and other threads, and a line-by-line check that the rendered text is valid
 * Prometheus text format. */
#include <CUnit/Basic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "metrics.h"

/* ---- a small reader of the text format ---- */

/* Checks one label set "{k="v",...}" starting at p; returns the character after '}' or NULL. */
static const char *parse_labels(const char *p)
{
    if (*p++ != '{')
        return NULL;
    if (*p == '}')
        return p + 1;
    for (;;) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_'))
            return NULL;
        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
               (*p >= '0' && *p <= '9'))
            p++;
        if (*p++ != '=' || *p++ != '"')
            return NULL;
        while (*p != '"') {
            if (*p == '\n' || *p == '\0')
                return NULL;
            if (*p == '\\' && !strchr("\\\"n", *++p))
                return NULL;
            p++;
        }
        p++;
        if (*p == '}')
            return p + 1;
        if (*p++ != ',')
            return NULL;
    }
}

/* Whether every line of text is a HELP, a TYPE or a sample of the family its TYPE announced
 * (for a histogram: _bucket with le, _sum, _count), with a numeric value. Reports the first bad
 * line when report is set. */
static bool check_exposition(const char *text, bool report)
{
    char family[128] = "", type[16] = "";
    bool helped = false;
    const char *line = text;

    if (!*text || text[strlen(text) - 1] != '\n')
        return false;
    while (*line) {
        const char *end = strchr(line, '\n');
        char buf[1024];
        snprintf(buf, sizeof(buf), "%.*s", (int)(end - line), line);
        bool ok = false;
        char name[128], rest[64];
        if (sscanf(buf, "# HELP %127s %63[^\n]", name, rest) == 2) {
            snprintf(family, sizeof(family), "%s", name);
            helped = ok = true;
            type[0] = '\0';
        } else if (sscanf(buf, "# TYPE %127s %15s", name, type) == 2) {
            ok = helped && strcmp(name, family) == 0 &&
                 (strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
                  strcmp(type, "histogram") == 0);
            helped = false;
        } else if (type[0]) {
            size_t flen = strlen(family), n = strcspn(buf, "{ ");
            const char *suffix = buf + flen;
            ok = n >= flen && strncmp(buf, family, flen) == 0;
            if (ok && strcmp(type, "histogram") == 0)
                ok = (strncmp(suffix, "_bucket{", 8) == 0 && strstr(buf, "le=\"")) ||
                     strncmp(suffix, "_sum ", 5) == 0 || strncmp(suffix, "_count ", 7) == 0;
            else if (ok)
                ok = n == flen;
            const char *p = buf + n;
            if (ok && *p == '{')
                ok = (p = parse_labels(p)) != NULL;
            if (ok) {
                char *num_end;
                ok = *p == ' ' && p[1] && (strtod(p + 1, &num_end), *num_end == '\0');
            }
        }
        if (!ok) {
            if (report)
                fprintf(stderr, "\n  bad exposition line: %s\n", buf);
            return false;
        }
        line = end + 1;
    }
    return true;
}

static char *render(struct lintel_metrics *m)
{
    struct evbuffer *b = evbuffer_new();
    CU_ASSERT_EQUAL(lintel_metrics_render(m, NULL, b), 0);
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    evbuffer_free(b);
    CU_ASSERT_TRUE(check_exposition(s, true));
    return s;
}

/* The value of the series written exactly as series ("name{labels}"), or -1 when absent. */
static double value_of(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; (p = strstr(p, series)) != NULL; p += n)
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

/* The sum of every lintel_requests_total sample, and how many name route="prefix...". */
static double requests_sum(const char *text, const char *prefix, unsigned *named)
{
    static const char head[] = "lintel_requests_total{route=\"";
    double sum = 0;
    *named = 0;
    for (const char *p = text; (p = strstr(p, head)) != NULL; p++) {
        const char *route = p + sizeof(head) - 1;
        if (strncmp(route, prefix, strlen(prefix)) == 0)
            (*named)++;
        sum += strtod(strchr(p, ' ') + 1, NULL);
    }
    return sum;
}

/* ---- tests ---- */

static void test_counts_across_shards(void)
{
    struct lintel_metrics *m = lintel_metrics_new(3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_PTR_NULL(lintel_metrics_shard(m, 3));
    struct lintel_metrics_shard *s0 = lintel_metrics_shard(m, 0), *s1 = lintel_metrics_shard(m, 1),
                                *s2 = lintel_metrics_shard(m, 2);
    char route[16] = "users"; /* not kept by the caller: the shard copies it */
    lintel_metrics_request(s0, route, 200, 100);
    lintel_metrics_request(s0, "users", 200, 100);
    lintel_metrics_request(s1, "users", 200, 100);
    strcpy(route, "xxxxx");
    lintel_metrics_request(s2, "users", 404, 100);
    lintel_metrics_request(s2, "orders", 200, 100);
    lintel_metrics_request(s1, "", 404, 100);
    lintel_metrics_request(s1, NULL, 404, 100);
    lintel_metrics_request(s0, "odd", -5, 100);
    lintel_metrics_request(s0, "odd", 1200, 100);

    char *t = render(m);
    CU_ASSERT_EQUAL(value_of(t, "lintel_requests_total{route=\"users\",status=\"200\"}"), 3);
    CU_ASSERT_EQUAL(value_of(t, "lintel_requests_total{route=\"users\",status=\"404\"}"), 1);
    CU_ASSERT_EQUAL(value_of(t, "lintel_requests_total{route=\"orders\",status=\"200\"}"), 1);
    CU_ASSERT_EQUAL(value_of(t, "lintel_requests_total{route=\"\",status=\"404\"}"), 2);
    CU_ASSERT_EQUAL(value_of(t, "lintel_requests_total{route=\"odd\",status=\"0\"}"), 2);
    CU_ASSERT_PTR_NULL(strstr(t, "xxxxx"));
    CU_ASSERT_PTR_NULL(strstr(t, "_other"));
    /* Sorted by route, then status: one series per label set even though three shards wrote. */
    const char *a = strstr(t, "route=\"\""), *b = strstr(t, "route=\"odd\""),
               *c = strstr(t, "route=\"orders\""), *d = strstr(t, "route=\"users\",status=\"200\""),
               *e = strstr(t, "route=\"users\",status=\"404\"");
    CU_ASSERT_TRUE(a && b && c && d && e && a < b && b < c && c < d && d < e);
    CU_ASSERT_PTR_NULL(strstr(d + 1, "route=\"users\",status=\"200\""));
    CU_ASSERT_EQUAL(value_of(t, "lintel_reloads_total{result=\"ok\"}"), 0);
    CU_ASSERT_EQUAL(value_of(t, "lintel_reloads_total{result=\"failed\"}"), 0);
    free(t);

    lintel_metrics_reload(m, true);
    lintel_metrics_reload(m, true);
    lintel_metrics_reload(m, false);
    t = render(m);
    CU_ASSERT_EQUAL(value_of(t, "lintel_reloads_total{result=\"ok\"}"), 2);
    CU_ASSERT_EQUAL(value_of(t, "lintel_reloads_total{result=\"failed\"}"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "# TYPE lintel_plugin_inflight gauge\n"));
    CU_ASSERT_PTR_NULL(strstr(t, "lintel_plugin_inflight{"));
    free(t);
    lintel_metrics_free(m);
    lintel_metrics_free(NULL);
}

static void test_histogram(void)
{
    struct lintel_metrics *m = lintel_metrics_new(2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    struct lintel_metrics_shard *s0 = lintel_metrics_shard(m, 0), *s1 = lintel_metrics_shard(m, 1);
    /* A bound belongs to its own bucket (le means <=). */
    lintel_metrics_request(s0, "r", 200, 0);
    lintel_metrics_request(s0, "r", 200, 1000);
    lintel_metrics_request(s1, "r", 200, 1001);
    lintel_metrics_request(s1, "r", 200, 10000000);
    lintel_metrics_request(s0, "r", 200, 10000001);

    char *t = render(m);
    static const struct {
        const char *le;
        double want;
    } cases[] = {
        {"0.001", 2}, {"0.005", 3}, {"0.01", 3}, {"0.025", 3}, {"0.05", 3},
        {"0.1", 3},   {"0.25", 3},  {"0.5", 3},  {"1", 3},     {"2.5", 3},
        {"5", 3},     {"10", 4},    {"+Inf", 5},
    };
    const char *prev = t;
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char series[96];
        snprintf(series, sizeof(series), "lintel_request_duration_seconds_bucket{le=\"%s\"}",
                 cases[i].le);
        CU_ASSERT_EQUAL(value_of(t, series), cases[i].want);
        const char *at = strstr(t, series);
        CU_ASSERT_TRUE(at && at > prev); /* buckets in increasing order */
        prev = at ? at : prev;
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nlintel_request_duration_seconds_sum 20.002002\n"));
    CU_ASSERT_EQUAL(value_of(t, "lintel_request_duration_seconds_count"), 5);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "# TYPE lintel_request_duration_seconds histogram\n"));
    free(t);
    lintel_metrics_free(m);
}

static void test_label_escaping(void)
{
    struct lintel_metrics *m = lintel_metrics_new(1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    struct lintel_metrics_shard *s = lintel_metrics_shard(m, 0);
    lintel_metrics_request(s, "a\"b\\c\nd", 200, 1);
    lintel_metrics_upstream_error(s, "up\"1\\", "reset");
    lintel_metrics_upstream_error(s, "up\"1\\", "reset");
    lintel_metrics_upstream_error(s, "plain", "connect_timeout");
    lintel_metrics_upstream_error(s, "plain", "something new");

    char *t = render(m);
    CU_ASSERT_EQUAL(value_of(t, "lintel_requests_total{route=\"a\\\"b\\\\c\\nd\",status=\"200\"}"),
                    1);
    CU_ASSERT_EQUAL(
        value_of(t, "lintel_upstream_errors_total{upstream=\"up\\\"1\\\\\",kind=\"reset\"}"), 2);
    CU_ASSERT_EQUAL(
        value_of(t, "lintel_upstream_errors_total{upstream=\"plain\",kind=\"connect_timeout\"}"),
        1);
    CU_ASSERT_EQUAL(value_of(t, "lintel_upstream_errors_total{upstream=\"plain\",kind=\"other\"}"),
                    1);
    free(t);
    lintel_metrics_free(m);
}

static void test_overflow_into_other(void)
{
    struct lintel_metrics *m = lintel_metrics_new(2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    struct lintel_metrics_shard *s0 = lintel_metrics_shard(m, 0), *s1 = lintel_metrics_shard(m, 1);
    char name[320];

    /* More route names than a shard keeps: every request still counts, the excess as _other. */
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof(name), "route-%d", i);
        lintel_metrics_request(s0, name, 200, 10);
    }
    char *t = render(m);
    unsigned named;
    CU_ASSERT_EQUAL(requests_sum(t, "route-", &named), 3000);
    CU_ASSERT_TRUE(named >= 1000 && named < 3000);
    CU_ASSERT_EQUAL(value_of(t, "lintel_requests_total{route=\"_other\",status=\"200\"}"),
                    3000 - named);
    /* A name seen before the table filled keeps its own series. */
    lintel_metrics_request(s0, "route-0", 200, 10);
    free(t);
    t = render(m);
    CU_ASSERT_EQUAL(value_of(t, "lintel_requests_total{route=\"route-0\",status=\"200\"}"), 2);
    free(t);

    /* More (route, status) pairs than fit: 10 routes x 500 statuses. */
    for (int r = 0; r < 10; r++) {
        snprintf(name, sizeof(name), "pair-%d", r);
        for (int st = 100; st < 600; st++)
            lintel_metrics_request(s1, name, st, 10);
    }
    /* Too long a name is not copied. */
    memset(name, 'x', 300);
    name[300] = '\0';
    lintel_metrics_request(s1, name, 201, 10);
    t = render(m);
    CU_ASSERT_EQUAL(requests_sum(t, "pair-", &named), 3001 + 5000 + 1);
    CU_ASSERT_TRUE(named > 1000 && named < 5000);
    CU_ASSERT_PTR_NULL(strstr(t, "xxxxxxxx"));
    CU_ASSERT_TRUE(value_of(t, "lintel_requests_total{route=\"_other\",status=\"201\"}") >= 1);
    CU_ASSERT_EQUAL(value_of(t, "lintel_request_duration_seconds_count"), 3001 + 5000 + 1);

    /* Upstream names overflow the same way. */
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "up-%d", i);
        lintel_metrics_upstream_error(s1, name, "reset");
    }
    free(t);
    t = render(m);
    double other = value_of(t, "lintel_upstream_errors_total{upstream=\"_other\",kind=\"reset\"}");
    CU_ASSERT_TRUE(other > 0 && other < 500);
    free(t);
    lintel_metrics_free(m);
}

struct writer {
    struct lintel_metrics_shard *s;
    unsigned id;
};

static void *write_many(void *arg)
{
    struct writer *w = arg;
    char route[16];
    for (unsigned i = 0; i < 200000; i++) {
        snprintf(route, sizeof(route), "r%u", i % 8);
        lintel_metrics_request(w->s, route, i % 2 ? 200 : 503, i % 3000);
        if (i % 1000 == 0)
            lintel_metrics_upstream_error(w->s, "u", "read_timeout");
    }
    return NULL;
}

/* Workers write their shards while the main thread renders: totals come out exact at the end,
 * and every intermediate rendering is well formed. */
static void test_concurrent_writers(void)
{
    enum { N = 4 };
    struct lintel_metrics *m = lintel_metrics_new(N);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    pthread_t th[N];
    struct writer w[N];
    for (unsigned i = 0; i < N; i++) {
        w[i] = (struct writer){lintel_metrics_shard(m, i), i};
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, write_many, &w[i]), 0);
    }
    for (int i = 0; i < 20; i++)
        free(render(m));
    for (unsigned i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    char *t = render(m);
    unsigned named;
    CU_ASSERT_EQUAL(requests_sum(t, "r", &named), N * 200000.0);
    CU_ASSERT_EQUAL(named, 8);
    CU_ASSERT_EQUAL(value_of(t, "lintel_requests_total{route=\"r3\",status=\"200\"}"), N * 25000.0);
    CU_ASSERT_EQUAL(value_of(t, "lintel_request_duration_seconds_count"), N * 200000.0);
    CU_ASSERT_EQUAL(value_of(t, "lintel_request_duration_seconds_bucket{le=\"+Inf\"}"),
                    N * 200000.0);
    CU_ASSERT_EQUAL(
        value_of(t, "lintel_upstream_errors_total{upstream=\"u\",kind=\"read_timeout\"}"),
        N * 200.0);
    free(t);
    lintel_metrics_free(m);
}

/* ---- plugin counters (metric_add) from workers and other threads ---- */

#define PLUGIN_SERIES(name)                                                                        \
    "lintel_plugin_events_total{plugin=\"rl\",instance=\"api\",name=\"" name "\"}"

enum { ADDS = 200000 };

struct adder {
    struct lintel_metrics *m;
    struct lintel_metrics_shard *bind; /* NULL: a thread that is not a worker */
    int64_t level;                     /* the gauge it sets at the end */
};

static void *add_many(void *arg)
{
    struct adder *a = arg;
    if (a->bind)
        lintel_metrics_shard_bind(a->bind);
    char copy[16];
    for (unsigned i = 0; i < ADDS; i++) {
        /* Mostly the same name pointer (the memo's case), sometimes a fresh copy (a lookup). */
        const char *name = "allowed";
        if (i % 1000 == 0) {
            snprintf(copy, sizeof(copy), "%s", "allowed");
            name = copy;
        }
        lintel_metrics_plugin_add(a->m, "rl", "api", name, 1);
        if (i % 10 == 0)
            lintel_metrics_plugin_add(a->m, "rl", "api", "limited", 3);
    }
    lintel_metrics_plugin_set(a->m, "rl", "api", "level", a->level);
    return NULL;
}

/* Three worker threads (each bound to its shard) and one that is not a worker add to the same
 * counters while the main thread renders: every rendering is well formed and never above the
 * total, and the final sum is exact. Gauges are not summed: the last set wins. */
static void test_plugin_counters_from_threads(void)
{
    enum { WORKERS = 3, THREADS = WORKERS + 1 };
    struct lintel_metrics *m = lintel_metrics_new(WORKERS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    pthread_t th[THREADS];
    struct adder a[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        a[i] = (struct adder){m, i < WORKERS ? lintel_metrics_shard(m, i) : NULL, 10 + i};
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, add_many, &a[i]), 0);
    }
    lintel_metrics_plugin_add(m, "rl", "api", "allowed", 5); /* the main thread: not a worker */
    for (int i = 0; i < 20; i++) {
        char *t = render(m);
        double v = value_of(t, PLUGIN_SERIES("allowed"));
        CU_ASSERT_TRUE(v <= THREADS * (double)ADDS + 5);
        free(t);
    }
    for (unsigned i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);

    char *t = render(m);
    CU_ASSERT_EQUAL(value_of(t, PLUGIN_SERIES("allowed")), THREADS * (double)ADDS + 5);
    CU_ASSERT_EQUAL(value_of(t, PLUGIN_SERIES("limited")), THREADS * (double)(ADDS / 10) * 3);
    double level =
        value_of(t, "lintel_plugin_gauge{plugin=\"rl\",instance=\"api\",name=\"level\"}");
    CU_ASSERT_TRUE(level >= 10 && level < 10 + THREADS);
    /* One series per name, however many threads wrote it. */
    const char *first = strstr(t, PLUGIN_SERIES("allowed"));
    CU_ASSERT_TRUE(first && !strstr(first + 1, PLUGIN_SERIES("allowed")));
    free(t);

    lintel_metrics_plugin_set(m, "rl", "api", "level", -7);
    t = render(m);
    CU_ASSERT_EQUAL(
        value_of(t, "lintel_plugin_gauge{plugin=\"rl\",instance=\"api\",name=\"level\"}"), -7);
    free(t);
    lintel_metrics_free(m);
}

static void *bound_add_to_other(void *arg)
{
    struct lintel_metrics **ms = arg; /* ms[0]: the shard's owner; ms[1]: other metrics */
    lintel_metrics_shard_bind(lintel_metrics_shard(ms[0], 1));
    lintel_metrics_plugin_add(ms[0], "rl", "api", "allowed", 2);
    lintel_metrics_plugin_add(ms[1], "rl", "api", "allowed", 7);
    lintel_metrics_shard_bind(NULL);
    lintel_metrics_plugin_add(ms[0], "rl", "api", "allowed", 1);
    return NULL;
}

/* A worker adding to metrics its shard does not belong to (another gateway's, in a test) adds
 * to those metrics' shared value; unbound, it adds like any other thread. */
static void test_plugin_counter_binding(void)
{
    struct lintel_metrics *ms[2] = {lintel_metrics_new(2), lintel_metrics_new(1)};
    CU_ASSERT_PTR_NOT_NULL_FATAL(ms[0]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ms[1]);
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, bound_add_to_other, ms), 0);
    pthread_join(th, NULL);
    char *t = render(ms[0]);
    CU_ASSERT_EQUAL(value_of(t, PLUGIN_SERIES("allowed")), 3);
    free(t);
    t = render(ms[1]);
    CU_ASSERT_EQUAL(value_of(t, PLUGIN_SERIES("allowed")), 7);
    free(t);
    lintel_metrics_free(ms[0]);
    lintel_metrics_free(ms[1]);
}

/* Past the table's 512 series, and with a name too long, adds and sets are not kept: counted in
 * lintel_plugin_metrics_dropped_total (0 before), the series already there unharmed. */
static void test_plugin_series_dropped(void)
{
    struct lintel_metrics *m = lintel_metrics_new(1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    char *t = render(m);
    CU_ASSERT_EQUAL(value_of(t, "lintel_plugin_metrics_dropped_total"), 0);
    free(t);
    char name[32];
    for (int i = 0; i < 512; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        lintel_metrics_plugin_add(m, "rl", "api", name, 1);
    }
    lintel_metrics_plugin_add(m, "rl", "api", "one-too-many", 4);
    lintel_metrics_plugin_set(m, "rl", "api", "gauge-too-many", 9);
    t = render(m);
    CU_ASSERT_EQUAL(value_of(t, "lintel_plugin_metrics_dropped_total"), 5);
    CU_ASSERT_EQUAL(value_of(t, PLUGIN_SERIES("n0")), 1);
    CU_ASSERT_EQUAL(value_of(t, PLUGIN_SERIES("n511")), 1);
    CU_ASSERT_EQUAL(value_of(t, PLUGIN_SERIES("one-too-many")), -1);
    free(t);
    lintel_metrics_free(m);

    m = lintel_metrics_new(1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    char long_name[80];
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    lintel_metrics_plugin_add(m, "rl", "api", long_name, 2);
    lintel_metrics_plugin_add(m, "rl", "api", "fits", 1);
    t = render(m);
    CU_ASSERT_EQUAL(value_of(t, "lintel_plugin_metrics_dropped_total"), 2);
    CU_ASSERT_EQUAL(value_of(t, PLUGIN_SERIES("fits")), 1);
    free(t);
    lintel_metrics_free(m);
}

static void test_exposition_checker(void)
{
    /* The checker itself refuses what it should, so that passing it means something. */
    CU_ASSERT_TRUE(
        check_exposition("# HELP a_total x\n# TYPE a_total counter\na_total{k=\"v\"} 1\n", false));
    CU_ASSERT_FALSE(
        check_exposition("# HELP a_total x\n# TYPE a_total counter\na_total{k=\"v\"} 1", false));
    CU_ASSERT_FALSE(check_exposition("# TYPE a_total counter\na_total 1\n", false));
    CU_ASSERT_FALSE(check_exposition("# HELP a x\n# TYPE a counter\nb 1\n", false));
    CU_ASSERT_FALSE(check_exposition("# HELP a x\n# TYPE a counter\na{k=\"v\\x\"} 1\n", false));
    CU_ASSERT_FALSE(check_exposition("# HELP a x\n# TYPE a counter\na{k=\"v} 1\n", false));
    CU_ASSERT_FALSE(check_exposition("# HELP a x\n# TYPE a counter\na{k=\"v\"} one\n", false));
    CU_ASSERT_FALSE(check_exposition("# HELP h x\n# TYPE h histogram\nh_bucket 1\n", false));
}

static CU_TestInfo metrics_tests[] = {
    {"counts across shards", test_counts_across_shards},
    {"latency histogram", test_histogram},
    {"label escaping", test_label_escaping},
    {"full tables overflow into _other", test_overflow_into_other},
    {"concurrent writers and renders", test_concurrent_writers},
    {"plugin counters from workers and other threads", test_plugin_counters_from_threads},
    {"plugin counters of a worker bound to other metrics", test_plugin_counter_binding},
    {"plugin series past the table, or with a long name: dropped and counted", test_plugin_series_dropped},
    {"exposition checker", test_exposition_checker},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"metrics", NULL, NULL, NULL, NULL, metrics_tests},
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
    unsigned failed = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
