/* Work a plugin instance starts on a worker outside any request: timers and outbound HTTP calls
 * (log shipping, key refreshes). Each task belongs to (instance, worker) and is cancelled before
 * that instance's worker_fini on that worker, so no callback outlives what it was started for.
 * Worker thread only. */
#ifndef LINTEL_PLUGIN_TASKS_H
#define LINTEL_PLUGIN_TASKS_H

#include <lintel/plugin.h>

struct lintel_worker;

/* The worker running on this thread, or NULL (main thread). */
struct lintel_worker *lintel_worker_self(void);
void lintel_worker_self_set(struct lintel_worker *w);

lintel_timer *lintel_task_timer(struct lintel_worker *w, const lintel_instance *owner, uint64_t ms,
                                int repeat, lintel_timer_fn fn, void *arg);
void lintel_task_timer_stop(lintel_timer *t);
int lintel_task_http(struct lintel_worker *w, const lintel_instance *owner,
                     const struct lintel_http_request *spec, lintel_http_fn cb, void *arg);

lintel_watch *lintel_task_watch(struct lintel_worker *w, const lintel_instance *owner, int fd,
                               int events, lintel_watch_fn fn, void *arg);
int lintel_task_watch_set(lintel_watch *watch, int events);
void lintel_task_watch_stop(lintel_watch *watch);

/* Cancels every task of owner on w (NULL owner: every task). */
void lintel_tasks_cancel(struct lintel_worker *w, const lintel_instance *owner);

#endif
