/* The abtest instance, shared by abtest_config.c (built once by create, main thread) and
 * abtest.c (read by the handlers on every worker). Internal to the plugin: nothing here is
 * exported from the .so (it is built with hidden visibility). */
#ifndef LINTEL_ABTEST_INTERNAL_H
#define LINTEL_ABTEST_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <lintel/plugin.h>

#define ABTEST_BUCKETS 100u                         /* hash strategy: buckets 0..99 */
#define ABTEST_DEFAULT_MAX_REPLAY_BODY (64u * 1024) /* `max_replay_body` */
#define ABTEST_GROUP_HEADER "X-AB-Group"

enum abtest_uid_from {
    ABTEST_UID_ARG,
    ABTEST_UID_HEADER,
    ABTEST_UID_COOKIE,
};

enum abtest_strategy {
    ABTEST_WHITELIST,
    ABTEST_TAIL_DIGIT,
    ABTEST_HASH,
};

/* A string borrowed from the config tree (it lives as long as the instance). */
struct abtest_str {
    const char *s;
    size_t len;
};

/* One entry of `rules`. Strings are borrowed from the config tree unless marked owned. */
struct abtest_rule {
    enum abtest_strategy strategy;
    struct abtest_str *uids; /* whitelist: sorted (abtest_str_cmp), owned array */
    size_t nuids;
    unsigned digits;     /* tail_digit: bit d set for digit d */
    uint64_t buckets[2]; /* hash: bit b (of 128) set for bucket b */

    /* `to`: a redirect, or a path (with an optional query) and/or an upstream. */
    struct abtest_str path;     /* {NULL,0}: the path stays */
    struct abtest_str query;    /* the query part of `path` ({NULL,0}: none) */
    const char *upstream;       /* NUL-terminated; NULL: the upstream stays */
    struct abtest_str redirect; /* {NULL,0}: not a redirect */
    int redirect_status;        /* 302 or 307 */

    struct abtest_str group; /* `group`, or the rule's index as text (index_text) */
    char index_text[24];
    char *metric; /* "group:" + group, owned */
};

struct abtest {
    const struct lintel_host_api *host;
    const lintel_instance *self;

    enum abtest_uid_from uid_from;
    const char *uid_name; /* NUL-terminated, borrowed */
    struct abtest_str salt;

    struct abtest_rule *rules; /* owned */
    size_t nrules;

    int replay;            /* `on_error` was given */
    uint64_t on_error[10]; /* bit s (of 640) set for each listed status */
    uint64_t max_replay_body;
    int expose_group;

    /* Per worker: whether that worker already logged a rule's upstream as unknown (once per
     * worker, not once per request). Owned; worker_count() slots, each touched by its worker. */
    unsigned char *warned_upstream;
    unsigned nworkers;
};

/* Orders whitelist entries: by length, then bytes. */
int abtest_str_cmp(const void *a, const void *b);

/* The stable hash the `hash` strategy puts a uid in a bucket with: FNV-1a 64 over the salt's
 * bytes then the uid's, modulo 100. Part of the product: changing it would move users between
 * groups (docs/plugins/abtest.md pins the values). */
unsigned abtest_bucket(struct abtest_str salt, const char *uid, size_t len);

/* Reads and checks the instance's config into t (zeroed by the caller, host and self set).
 * Returns 0, or -1 after host->cfg_error; t then holds nothing that needs abtest_config_free.
 * Thread: main (create). */
int abtest_config_parse(struct abtest *t, const lintel_cfg *config, lintel_cfg_error *err);

/* Frees what abtest_config_parse allocated (not t itself). */
void abtest_config_free(struct abtest *t);

#endif
