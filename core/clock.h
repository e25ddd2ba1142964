/* The monotonic clock in milliseconds, for timeouts, windows and expiry in the core. */
#ifndef LINTEL_CLOCK_H
#define LINTEL_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t lintel_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#endif
