/* Counters and a small key/value cache shared by every worker of the process.
 *
 * Entries are keyed by (namespace, key); the host uses "plugin/instance" as the namespace, so a
 * plugin's state survives a swap to a newer version of the plugin. Every function may be called
 * from any thread and none takes a lock: the tables are fixed-size open-addressing arrays of C11
 * atomics (how, and what that costs, is described in shared.c).
 *
 * Limits a caller may rely on:
 *   - a namespace is at most LINTEL_SHARED_NS_MAX bytes, a key at most LINTEL_SHARED_KEY_MAX
 *     bytes (longer: the call fails);
 *   - an entry is never removed: an expired counter window or cache value keeps its slot, which
 *     only the same (namespace, key) reuses. Once a table holds as many distinct keys as it has
 *     slots (or a key's probe run is too long), adding a new key fails with -1;
 *   - windows are aligned on the monotonic clock (window i covers [i*window_ms, (i+1)*window_ms)
 *     ms), so every worker agrees on them. */
#ifndef LINTEL_SHARED_H
#define LINTEL_SHARED_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LINTEL_SHARED_NS_MAX 159
#define LINTEL_SHARED_KEY_MAX 200

struct lintel_shared;

/* Creates the tables: counter_slots counters and cache_slots cache entries (each rounded up to
 * a power of two; 0 disables that table), cache values of at most cache_value_max bytes. Memory
 * is about 400 bytes per counter slot and 400 + cache_value_max bytes per cache slot, reserved
 * up front. Returns NULL when out of memory or when cache_value_max is above 16 MiB.
 * Thread: any (normally main, at startup). */
struct lintel_shared *lintel_shared_new(size_t counter_slots, size_t cache_slots,
                                        size_t cache_value_max);

/* Frees the tables. No other thread may be using them. NULL is ignored. */
void lintel_shared_free(struct lintel_shared *s);

/* Adds delta to the counter (ns, key) in the current fixed window of window_ms (0: one window
 * that never ends); when that window has passed, the counter restarts from 0 first. Sets *value
 * to the new value and *reset_ms to the ms left in the window (0 when window_ms is 0); either
 * pointer may be NULL. Windowed values saturate at +/-(2^39 - 1).
 * Returns 0, or -1 when the key is too long or the table is full. Thread: any. */
int lintel_shared_counter_add(struct lintel_shared *s, const char *ns, const char *key,
                              int64_t delta, uint64_t window_ms, int64_t *value,
                              uint64_t *reset_ms);

/* Stores a copy of value[0..len) under (ns, key) for ttl_ms (0: no expiry), replacing what was
 * there. A set that overlaps another set of the same key is ordered just before it and so
 * overwritten by it (the call still returns 0).
 * Returns 0, or -1 when len > cache_value_max, the key is too long or the table is full.
 * Thread: any. */
int lintel_shared_cache_set(struct lintel_shared *s, const char *ns, const char *key,
                            const void *value, size_t len, uint64_t ttl_ms);

/* Copies the value of (ns, key) into buf (at most cap bytes; buf may be NULL when cap is 0) and
 * returns its full length (more than cap: the copy was cut), or -1 when absent or expired. The
 * copy is always one value as a set stored it, never a mix of two. Thread: any. */
ssize_t lintel_shared_cache_get(struct lintel_shared *s, const char *ns, const char *key, void *buf,
                                size_t cap);

#endif
