/* The cors instance, shared by cors_config.c (built once by create, main thread) and cors.c (read
 * by the handlers on every worker). Internal to the plugin: nothing here is exported from the .so
 * (it is built with hidden visibility). */
#ifndef LINTEL_CORS_INTERNAL_H
#define LINTEL_CORS_INTERNAL_H

#include <regex.h>
#include <stddef.h>
#include <string.h>

#include <lintel/plugin.h>
#include <lintel/text.h>

/* lintel's upper bound for `workers:` (docs/configuration.md). The ABI gives neither the worker
 * count nor this bound, so the per-worker regex table is sized for it. */
#define CORS_MAX_WORKERS 1024u

/* One exact origin from `origins`, borrowed from the config tree (it lives as long as the
 * instance). */
struct cors_exact {
    const char *s;
    size_t len;
};

struct cors {
    const struct lintel_host_api *host;
    const lintel_instance *self;

    /* `origins` */
    int any_origin; /* "*" was given */
    struct cors_exact *exact;
    size_t nexact;
    char **patterns; /* "~re" entries as compiled: "^(re)$", owned */
    size_t npatterns;
    /* patterns compiled per worker (glibc's regexec locks each regex_t): worker_re[w] holds
     * npatterns regex_t, set and freed by worker w only; NULL when there are no patterns or
     * worker_init has not run (or failed) there. Owned; CORS_MAX_WORKERS slots. */
    regex_t **worker_re;

    /* Header values, joined with ", " once; owned, NULL when the header is not sent. */
    char *methods;
    size_t methods_len;
    char *headers; /* NULL with echo_headers: Access-Control-Request-Headers is echoed */
    size_t headers_len;
    int echo_headers;
    char *expose;
    size_t expose_len;
    char max_age[24]; /* decimal seconds; "" when not sent */
    size_t max_age_len;

    int credentials;
    int preflight_continue;
    /* The answer depends on the request's Origin (anything but "*" without credentials), so every
     * response carries Vary: Origin. */
    int vary_origin;
};

/* Reads and checks the instance's config into c (zeroed by the caller, host and self set).
 * Returns 0, or -1 after host->cfg_error; c then holds nothing that needs cors_config_free.
 * Thread: main (create). */
int cors_config_parse(struct cors *c, const lintel_cfg *config, lintel_cfg_error *err);

/* Frees what cors_config_parse allocated (not c itself, not worker_re's sets). */
void cors_config_free(struct cors *c);

#endif
