/* libevent's allocations with a per-thread reuse of small buffer chains (issue 8).
 *
 * Every request fills and empties four evbuffers (client in and out, upstream in and out), and
 * libevent allocates a 1 KiB chain for each and frees it once drained: four malloc/free pairs per
 * request, often past glibc's per-thread cache. lintel_mm_install hands libevent allocation
 * functions that keep up to 64 freed blocks of that size per thread and hand them out again. Every
 * other size goes to malloc as before. Blocks carry a 16-byte header (their size), so the
 * functions must be installed before libevent allocates anything: first thing in main().
 * Threads give their kept blocks back when they exit. Sanitizer builds keep plain malloc (so that
 * ASan sees every chain). */
#ifndef LINTEL_MM_H
#define LINTEL_MM_H

void lintel_mm_install(void);

#endif
