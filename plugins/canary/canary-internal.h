/* The canary instance, shared by canary_config.c (built once by create, main thread) and canary.c
 * (read by the BALANCE handler on every worker). Internal to the plugin: nothing here is exported
 * from the .so (it is built with hidden visibility). */
#ifndef LINTEL_CANARY_INTERNAL_H
#define LINTEL_CANARY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <lintel/plugin.h>

/* Percentages are kept in basis points: 1 % = 100, 100 % = CANARY_BUCKETS. A user's bucket is
 * in 0..CANARY_BUCKETS-1 and the user goes to the canary iff bucket < the current basis points. */
#define CANARY_BUCKETS 10000u

/* Where the stickiness key comes from (`key.from`). */
enum canary_key_from {
    CANARY_KEY_IP,       /* the client's address */
    CANARY_KEY_CONSUMER, /* the authenticated consumer's name */
    CANARY_KEY_ARG,      /* a query argument */
    CANARY_KEY_HEADER,   /* a request header */
    CANARY_KEY_COOKIE,   /* a cookie */
};

/* Events counted with metric_add as they happen. */
enum canary_metric {
    CANARY_M_CANARY,   /* requests sent to the canary upstream */
    CANARY_M_STABLE,   /* requests left on the route's (stable) upstream */
    CANARY_M_FORCED,   /* decided by the override header or cookie */
    CANARY_M_FALLBACK, /* meant for the canary, which had no healthy target: sent to stable */
    CANARY_M_NO_KEY,   /* the key was absent: the client address was hashed instead */
    CANARY_M_ERRORS,   /* set_upstream refused the canary upstream (out of memory: the name
                        * was checked at create) */
    CANARY_M_N
};

struct canary {
    const struct lintel_host_api *host;
    const lintel_instance *self;

    const char *upstream; /* the canary upstream's name; borrowed from the config tree */

    /* Share of users: fixed (`percent`), or a time ramp (`ramp`). Basis points. */
    int ramp;
    uint32_t percent_bp;     /* without ramp */
    uint32_t from_bp, to_bp; /* with ramp: before start, and from start + duration on */
    uint64_t start_ms;       /* Unix ms */
    uint64_t duration_ms;    /* > 0 */
    uint32_t steps;          /* 0: smooth (every millisecond); else that many equal increments */

    enum canary_key_from key_from;
    const char *key_name; /* arg, header or cookie name; borrowed */
    uint64_t hash_seed;   /* FNV-1a state after `seed` and ':' (the FNV offset without a seed) */

    const char *override_header; /* NULL: none; borrowed */
    const char *override_cookie; /* NULL: none; borrowed */

    int upstream_fallback;

    const char *mark_header; /* NULL: no mark; borrowed */
    const char *mark_value;
    size_t mark_value_len;
};

/* Reads and checks the instance's config into c (zeroed by the caller, host and self set).
 * Returns 0, or -1 after host->cfg_error. Allocates nothing. Thread: main (create). */
int canary_config_parse(struct canary *c, const lintel_cfg *config, lintel_cfg_error *err);

/* Parses an RFC 3339 date-time, "YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm)" ('t', 'z' and a
 * space for 'T' accepted; fractions beyond milliseconds dropped; second 60 accepted), years 1970
 * to 9999, into Unix milliseconds. Returns 0, or -1 with *why set to a short phrase. */
int canary_parse_time(const char *s, uint64_t *unix_ms, const char **why);

#endif
