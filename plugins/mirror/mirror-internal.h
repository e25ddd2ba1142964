/* The mirror instance, shared by mirror_config.c (built once by create, main thread) and
 * mirror.c (read by the handler on every worker, which also owns its own `workers` slot).
 * Internal to the plugin: nothing here is exported from the .so. */
#ifndef LINTEL_MIRROR_INTERNAL_H
#define LINTEL_MIRROR_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <lintel/plugin.h>

/* `sample` is kept in parts per MIRROR_SAMPLE_SCALE (docs/plugins/mirror.md gives the rule). */
#define MIRROR_SAMPLE_SCALE 1000000u

#define MIRROR_DEFAULT_TIMEOUT_MS 1000u
#define MIRROR_DEFAULT_MAX_INFLIGHT 100u
#define MIRROR_DEFAULT_BODY_MAX (64u * 1024u)

/* A byte string that lives as long as the instance (borrowed from the config tree, or owned by
 * the instance where the comment says so). */
struct mirror_str {
    const char *s;
    size_t len;
};

/* One worker's share of the instance: touched by that worker only (no lock, no atomic), on a
 * cache line of its own. */
struct mirror_worker {
    _Alignas(64) struct mirror *m;
    unsigned inflight; /* copies started here whose answer has not come yet */
};

struct mirror {
    const struct lintel_host_api *host;
    const lintel_instance *self;

    /* `to`: "upstream://NAME" or the `url` without its trailing '/' (owned). */
    char *base;
    size_t base_len;
    /* `path`: prefix put in front, after replace changed the start of the path; all "" when not
     * given, never ending with '/' (borrowed). */
    struct mirror_str prefix;
    int has_replace;
    struct mirror_str from, to;

    uint32_t sample_ppm;        /* out of MIRROR_SAMPLE_SCALE */
    struct mirror_str *methods; /* owned array of borrowed names; NULL: every method */
    size_t nmethods;
    int with_body;                 /* `body` not false */
    uint64_t body_max;             /* bodies up to this many bytes are copied */
    char *header_line;             /* "X-Mirror: 1" (owned) */
    struct mirror_str header_name; /* its name, borrowed from header_line */
    uint64_t timeout_ms;
    unsigned max_inflight;

    struct mirror_worker *workers; /* worker_count() slots (owned) */
    unsigned nworkers;
};

/* Reads and checks the instance's config into m (zeroed by the caller, host and self set).
 * Returns 0, or -1 after host->cfg_error; m then holds nothing that needs mirror_config_free.
 * Thread: main (create). */
int mirror_config_parse(struct mirror *m, const lintel_cfg *config, lintel_cfg_error *err);

/* Frees what mirror_config_parse allocated (not m itself, not m->workers). */
void mirror_config_free(struct mirror *m);

#endif
