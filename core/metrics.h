/* Gateway metrics, rendered in Prometheus text format by the admin API.
 *
 * Each worker writes only its own shard, without locks or atomic read-modify-writes (single
 * writer; relaxed atomic stores); the admin thread sums the shards with relaxed loads. */
#ifndef LINTEL_METRICS_H
#define LINTEL_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct lintel_metrics;
struct lintel_metrics_shard;
struct lintel_registry;

/* Creates metrics for nworkers shards (one allocation each, made now). NULL when out of memory.
 * Free with lintel_metrics_free after the workers have stopped. Thread: main. */
struct lintel_metrics *lintel_metrics_new(unsigned nworkers);
/* Frees m and its shards. NULL is ignored. Thread: main. */
void lintel_metrics_free(struct lintel_metrics *m);

/* The shard of worker i (i < nworkers), or NULL past the end. Lives as long as m. */
struct lintel_metrics_shard *lintel_metrics_shard(struct lintel_metrics *m, unsigned worker);

/* Makes the calling thread the writer of s for plugin counters: lintel_metrics_plugin_add on s's
 * metrics from this thread adds to s's own copy of the counter. NULL unbinds. One thread per
 * shard (its worker, when it starts); the binding must not outlive s's metrics unless the thread
 * ends first or unbinds. Thread: the one being bound. */
void lintel_metrics_shard_bind(struct lintel_metrics_shard *s);

/* One finished request: route name ("" or NULL when none matched), status sent, total time.
 * The route name is copied into the shard the first time it is seen (route names are bounded by
 * the configuration); never allocates. When the shard's tables are full (about 1500 names, 3000
 * (route, status) pairs, 64 KiB of names) or the name is longer than 255 bytes, the request
 * counts under route "_other". A status outside [0, 1000) counts as 0. Thread: the shard's
 * worker. */
void lintel_metrics_request(struct lintel_metrics_shard *s, const char *route, int status,
                            uint64_t latency_us);

/* An upstream failure: kind is one of "connect_refused", "connect_timeout", "read_timeout",
 * "send_timeout", "reset", "invalid_response" (anything else counts as "other"). Beyond about
 * 190 upstream names per shard, or for a name longer than 255 bytes, upstream is "_other".
 * Never allocates. Thread: the shard's worker. */
void lintel_metrics_upstream_error(struct lintel_metrics_shard *s, const char *upstream,
                                   const char *kind);

/* Adds delta to the plugin counter (plugin, instance, name) (host API metric_add). Names are
 * copied once; a full table (512 series) drops the add. On a thread bound to one of m's shards
 * (lintel_metrics_shard_bind) the add is a relaxed load and store into that shard; on any other
 * thread an atomic add to a value shared by those threads. Rendering shows the sum. Repeated
 * lookups of the same names are served from a per-thread memo. Thread: any. */
void lintel_metrics_plugin_add(struct lintel_metrics *m, const char *plugin, const char *instance,
                               const char *name, uint64_t delta);
/* Sets the plugin gauge (plugin, instance, name) (host API metric_set): one value for all threads,
 * the last set wins. Shares the table with the counters. Thread: any. */
void lintel_metrics_plugin_set(struct lintel_metrics *m, const char *plugin, const char *instance,
                               const char *name, int64_t value);

/* A reload attempt. Thread: main. */
void lintel_metrics_reload(struct lintel_metrics *m, bool ok);

/* One upstream target's health, for lintel_metrics_render_targets. */
struct lintel_target_sample {
    const char *upstream, *target; /* target: the address as written */
    bool up;
    uint64_t changes; /* up/down changes so far */
};

/* Appends lintel_upstream_target_up{upstream,target} (gauge, 1 or 0) and
 * lintel_upstream_target_health_changes_total{upstream,target} for v[0..n). Thread: main. */
void lintel_metrics_render_targets(struct evbuffer *out, const struct lintel_target_sample *v,
                                   size_t n);

/* Appends the Prometheus text format (0.0.4): lintel_requests_total{route,status},
 * lintel_request_duration_seconds (histogram), lintel_upstream_errors_total{upstream,kind},
 * lintel_reloads_total{result}, and from reg (may be NULL) lintel_plugin_inflight{plugin,version,
 * hash} and lintel_plugin_image_state{plugin,version,hash,state}. Shards are summed with relaxed
 * loads while workers write, so a scrape is a consistent-enough sample, not a snapshot.
 * Returns 0, or -1 when out of memory (out may then hold part of the text). Thread: main. */
int lintel_metrics_render(struct lintel_metrics *m, struct lintel_registry *reg,
                          struct evbuffer *out);

#endif
