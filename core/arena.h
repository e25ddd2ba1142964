/* Per-request (and per-configuration) memory arena.
 *
 * Everything allocated from an arena is freed at once by lintel_arena_free(); cleanups registered
 * on it (sockets, timers, handles) run first, newest first. An arena is used by one thread at a
 * time and takes no lock. */
#ifndef LINTEL_ARENA_H
#define LINTEL_ARENA_H

#include <stddef.h>

struct lintel_arena;

/* Creates an arena whose first block holds about first_block bytes. Returns NULL when out of
 * memory. */
struct lintel_arena *lintel_arena_new(size_t first_block);

/* Runs the registered cleanups (newest first) and frees every block. NULL is ignored. */
void lintel_arena_free(struct lintel_arena *a);

/* Runs the registered cleanups and forgets every allocation, keeping the first block for reuse
 * (a recycled arena costs no malloc; worker.h keeps a few per worker for requests). */
void lintel_arena_reset(struct lintel_arena *a);

/* Returns n bytes aligned for any type, valid until the arena is freed, or NULL when out of
 * memory. Memory is not zeroed. */
void *lintel_arena_alloc(struct lintel_arena *a, size_t n);

/* Same as lintel_arena_alloc, zeroed. */
void *lintel_arena_calloc(struct lintel_arena *a, size_t n);

/* Copies s[0..n) and adds a NUL. Returns NULL when out of memory. */
char *lintel_arena_strndup(struct lintel_arena *a, const char *s, size_t n);

/* Registers fn(arg) to run when the arena is freed. Returns 0, or -1 when out of memory (fn is
 * then not registered and the caller still owns arg). */
int lintel_arena_cleanup_add(struct lintel_arena *a, void (*fn)(void *), void *arg);

/* Bytes handed out so far (for limits and metrics). */
size_t lintel_arena_used(const struct lintel_arena *a);

#endif
