/* Logging to stderr: one line per call, written with a single write(2) so lines from several
 * workers never interleave. Thread: any. */
#ifndef LINTEL_LOG_H
#define LINTEL_LOG_H

#include <lintel/plugin.h> /* enum lintel_log_level: one set of levels for core and plugins */

#define LINTEL_LOG_DEBUG LINTEL_LOG_LEVEL_DEBUG
#define LINTEL_LOG_INFO LINTEL_LOG_LEVEL_INFO
#define LINTEL_LOG_WARN LINTEL_LOG_LEVEL_WARN
#define LINTEL_LOG_ERROR LINTEL_LOG_LEVEL_ERROR

/* Lines below level are dropped (default INFO; LINTEL_LOG=debug in the environment lowers it). */
void lintel_log_set_level(enum lintel_log_level level);

/* Names the calling thread in its log lines ("main", "w0", ...); name is copied. */
void lintel_log_set_thread(const char *name);

/* Writes "TIME LEVEL [thread] message\n". Lines longer than 4 KiB are cut. */
void lintel_log(enum lintel_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define lintel_debug(...) lintel_log(LINTEL_LOG_DEBUG, __VA_ARGS__)
#define lintel_info(...) lintel_log(LINTEL_LOG_INFO, __VA_ARGS__)
#define lintel_warn(...) lintel_log(LINTEL_LOG_WARN, __VA_ARGS__)
#define lintel_error(...) lintel_log(LINTEL_LOG_ERROR, __VA_ARGS__)

#endif
