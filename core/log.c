#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum lintel_log_level min_level = LINTEL_LOG_INFO;
static _Thread_local char thread_name[16] = "main";

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void lintel_log_set_level(enum lintel_log_level level)
{
    min_level = level;
}

void lintel_log_set_thread(const char *name)
{
    snprintf(thread_name, sizeof(thread_name), "%s", name);
}

void lintel_log(enum lintel_log_level level, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char line[4096];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s [%s] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_names[level], thread_name);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    /* Best effort: a full or closed stderr must not stop the gateway. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
