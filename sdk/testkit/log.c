/* Captured log lines, ABI violations and metrics: what a plugin reports rather than returns. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testkit-internal.h"

/* One growing text buffer for the whole test process (the kit is single-threaded). */
static struct {
    char *text;
    size_t len, cap;
    unsigned violations;
} captured;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static void append(const char *s, size_t n)
{
    if (captured.len + n + 1 > captured.cap) {
        size_t cap = captured.cap ? captured.cap : 1024;
        while (cap < captured.len + n + 1)
            cap *= 2;
        captured.text = lk_must(realloc(captured.text, cap));
        captured.cap = cap;
    }
    memcpy(captured.text + captured.len, s, n);
    captured.len += n;
    captured.text[captured.len] = '\0';
}

void lk_log_append(const char *who, enum lintel_log_level level, const char *fmt, va_list ap)
{
    char line[4096];
    /* Like lintel, a level past the known ones is logged as an error. */
    const char *lname = (unsigned)level < 4 ? level_names[level] : "error";
    int n = snprintf(line, sizeof(line), "%s [%s] ", lname, who);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(line))
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    size_t len = strlen(line);
    append(line, len);
    append("\n", 1);
    const char *echo = getenv("LINTEL_TESTKIT_LOG");
    if (echo && *echo && strcmp(echo, "0") != 0)
        fprintf(stderr, "%s\n", line);
}

void lk_violation(const char *fmt, ...)
{
    captured.violations++;
    va_list ap;
    va_start(ap, fmt);
    lk_log_append("testkit", LINTEL_LOG_LEVEL_ERROR, fmt, ap);
    va_end(ap);
}

void lk_log_as(const struct lk_instance *in, enum lintel_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lk_log_append(in->ns, level, fmt, ap);
    va_end(ap);
}

void lk_host_log(const lintel_instance *self, enum lintel_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lk_log_append(self ? self->kit->ns : "plugin", level, fmt, ap);
    va_end(ap);
}

const char *lk_log_lines(void)
{
    return captured.text ? captured.text : "";
}

unsigned lk_violations(void)
{
    return captured.violations;
}

void lk_log_clear(void)
{
    free(captured.text);
    captured.text = NULL;
    captured.len = captured.cap = 0;
    captured.violations = 0;
}

void lk_host_metric_add(const lintel_instance *self, const char *name, uint64_t delta)
{
    if (!self || !name) {
        lk_violation("metric_add without an instance or a name");
        return;
    }
    struct lk_instance *in = self->kit;
    struct lk_metric *m = in->metrics;
    while (m && strcmp(m->name, name) != 0)
        m = m->next;
    if (!m) {
        /* Counters outlive requests and are few: plain malloc, freed with the instance. */
        m = lk_must(calloc(1, sizeof(*m)));
        m->name = lk_must(strdup(name));
        m->next = in->metrics;
        in->metrics = m;
    }
    m->value += delta;
}

void lk_host_metric_set(const lintel_instance *self, const char *name, int64_t value)
{
    if (!self || !name) {
        lk_violation("metric_set without an instance or a name");
        return;
    }
    struct lk_instance *in = self->kit;
    struct lk_metric *m = in->gauges;
    while (m && strcmp(m->name, name) != 0)
        m = m->next;
    if (!m) {
        m = lk_must(calloc(1, sizeof(*m)));
        m->name = lk_must(strdup(name));
        m->next = in->gauges;
        in->gauges = m;
    }
    m->value = (uint64_t)value;
}

void lk_metrics_free(struct lk_metric *m)
{
    while (m) {
        struct lk_metric *next = m->next;
        free(m->name);
        free(m);
        m = next;
    }
}
