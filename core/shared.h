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
 *   - a counter is identified by (namespace, key, window_ms) and by the function that made it:
 *     counter_add and counter_window keep apart counters even of the same name and window;
 *   - expired entries free their slot for other keys: a windowed counter (counter_add with a
 *     window, counter_window) once it has not been touched in its current or previous window
 *     (it would read 0 and previous 0 then, so nothing visible is lost), a cache value once its
 *     ttl has passed. Counters without a window and cache values without a ttl keep their slot
 *     for good. A new key fails with -1 only when every slot of its probe run (up to 1024 slots
 *     from its hash) holds a live entry;
 *   - every update of an entry happens exactly once, also when it races the entry's reclaim
 *     (it then lands in a fresh entry of the key);
 *   - windows are aligned on the monotonic clock (window i covers [i*window_ms, (i+1)*window_ms)
 *     ms), so every worker agrees on them. A call whose clock read is a little older than a
 *     concurrent call's new window counts in that new window. */
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
 * is about 450 bytes per counter slot and 450 + cache_value_max bytes per cache slot, reserved
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

/* A counter_window result. */
struct lintel_shared_window {
    int64_t value;       /* in the current window, after the delta */
    int64_t previous;    /* final value of the window just before; 0 when none or not adjacent */
    uint64_t elapsed_ms; /* since the current window began */
    uint64_t reset_ms;   /* until it ends (1..window_ms) */
};

/* Adds delta to the counter (ns, key) in the current fixed window of window_ms (> 0), keeping
 * the previous window's final value too (for sliding windows), and fills *out (may be NULL).
 * Values saturate at +/-(2^31 - 1). Add-then-check with it is exact across threads: of
 * concurrent calls adding 1, each sees a different value.
 * Returns 0, or -1 when window_ms is 0, the key is too long or the table is full. Thread: any. */
int lintel_shared_counter_window(struct lintel_shared *s, const char *ns, const char *key,
                                 int64_t delta, uint64_t window_ms,
                                 struct lintel_shared_window *out);

/* Stores a copy of value[0..len) under (ns, key) for ttl_ms (0: no expiry), replacing what was
 * there. Concurrent writes of one key take turns (each waits at most for one value copy); the
 * last one stays. Returns 0, or -1 when len > cache_value_max, the key is too long or the table
 * is full. Thread: any. */
int lintel_shared_cache_set(struct lintel_shared *s, const char *ns, const char *key,
                            const void *value, size_t len, uint64_t ttl_ms);

/* Stores a copy of value[0..len) under (ns, key) for ttl_ms (0: no expiry) only when the key
 * has no value or an expired one. Returns 1 when stored, 0 when a value was present (nothing
 * changed), -1 as cache_set. Of concurrent adds of one absent key exactly one returns 1.
 * Thread: any. */
int lintel_shared_cache_add(struct lintel_shared *s, const char *ns, const char *key,
                            const void *value, size_t len, uint64_t ttl_ms);

/* Copies the value of (ns, key) into buf (at most cap bytes; buf may be NULL when cap is 0) and
 * returns its full length (more than cap: the copy was cut), or -1 when absent or expired. The
 * copy is always one value as a set stored it, never a mix of two. Thread: any. */
ssize_t lintel_shared_cache_get(struct lintel_shared *s, const char *ns, const char *key, void *buf,
                                size_t cap);

#endif
