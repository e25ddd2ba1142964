/* The gateway configuration: one YAML file, loaded and validated as a whole.
 *
 * A loaded configuration is immutable. It owns an arena holding every string and array below and
 * the YAML tree (plugin configs point into it). Errors name file, line, column and key path:
 * "conf/x.yaml:12:7: routes[0].match.paths[1]: regex does not compile: ...". */
#ifndef LINTEL_CONFIG_H
#define LINTEL_CONFIG_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "arena.h"
#include "ynode.h"

enum lintel_balance { LINTEL_BALANCE_ROUND_ROBIN, LINTEL_BALANCE_LEAST_CONN, LINTEL_BALANCE_HASH };
enum lintel_hash_on { LINTEL_HASH_HEADER, LINTEL_HASH_ARG, LINTEL_HASH_COOKIE, LINTEL_HASH_IP };
enum lintel_path_kind { LINTEL_PATH_PREFIX, LINTEL_PATH_EXACT, LINTEL_PATH_REGEX };

/* A resolved "host:port" (IPv4, [IPv6]:port, or a name resolved once at load time). */
struct lintel_sockaddr {
    const char *text; /* as written in the file */
    struct sockaddr_storage ss;
    socklen_t len;
};

struct lintel_target_conf {
    struct lintel_sockaddr addr;
    unsigned weight; /* >= 1, default 1 */
};

/* An upstream's health checks (docs/health.md). Status sets are bitmaps: bit s of word s / 64. */
#define LINTEL_STATUS_WORDS 10 /* statuses 0..639; the loader allows 100..599 */

struct lintel_health_active_conf {
    const char *path;                       /* probed with GET; default "/" */
    uint64_t interval_ms, timeout_ms;       /* defaults 5s, 1s */
    unsigned healthy, unhealthy;            /* consecutive probes to flip; defaults 2, 3 */
    uint64_t statuses[LINTEL_STATUS_WORDS]; /* healthy answers; default 200..399 */
};

struct lintel_health_passive_conf {
    unsigned failures;    /* consecutive failures that mark a target down; default 3 */
    uint64_t cooldown_ms; /* how long it stays down; default 10s */
    uint64_t statuses[LINTEL_STATUS_WORDS]; /* answers that count as failures; default 502..504 */
};

struct lintel_upstream_conf {
    size_t index; /* position in lintel_config.upstreams */
    const char *name;
    struct lintel_target_conf *targets;
    size_t ntargets; /* >= 1 */
    enum lintel_balance balance;
    enum lintel_hash_on hash_on; /* when balance == HASH */
    const char *hash_name;       /* header/arg/cookie name; NULL for ip */
    unsigned keepalive;          /* idle connections kept per worker, default 32; 0 disables */
    uint64_t connect_ms, send_ms, read_ms, idle_ms; /* defaults 5s, 60s, 60s, 60s */
    unsigned retries;                               /* default 1 */
    struct {
        const struct lintel_health_active_conf *active;   /* NULL: no probes */
        const struct lintel_health_passive_conf *passive; /* NULL: no passive marking */
    } health; /* both NULL without a `health` section: targets are always up */
    const struct lintel_ynode *node;
};

struct lintel_path_conf {
    enum lintel_path_kind kind;
    const char *text; /* without the leading '=' or '~' */
    regex_t *re;      /* REGEX only: compiled REG_EXTENDED|REG_NOSUB; freed with the config */
};

struct lintel_header_match {
    const char *name; /* matched case-insensitively */
    const char *value; /* matched exactly */
};

struct lintel_route_conf {
    size_t index; /* position in file order */
    const char *name;
    const char **hosts; /* lowercase; "*.example.org" for wildcards */
    size_t nhosts;      /* 0: any host */
    struct lintel_path_conf *paths;
    size_t npaths; /* 0: the same as one prefix "/" */
    uint64_t methods; /* bit (1 << enum http_method); 0: any method */
    struct lintel_header_match *headers;
    size_t nheaders;
    const struct lintel_upstream_conf *upstream; /* required */
    bool strip_prefix;
    const struct lintel_ynode *plugins;          /* the route's plugins: list, or NULL */
    const struct lintel_ynode *disable_plugins;  /* list of names, or NULL */
    const struct lintel_ynode *node;
};

/* A listener's TLS: certificates chosen by SNI (the first is the default), protocol range. */
struct lintel_tls_cert {
    const char *cert, *key; /* PEM file paths */
    const char **hosts;     /* lowercase; "*.example.org" wildcards; may be empty */
    size_t nhosts;
    const struct lintel_ynode *node;
};

struct lintel_tls_conf {
    struct lintel_tls_cert *certs;
    size_t ncerts; /* >= 1 */
    int min_version, max_version; /* TLS1_2_VERSION / TLS1_3_VERSION */
    const struct lintel_ynode *node;
};

struct lintel_config {
    struct lintel_arena *arena;
    const char *path;
    const struct lintel_ynode *root;

    struct lintel_sockaddr *listen;
    struct lintel_tls_conf **listen_tls; /* per listen entry: NULL for plain HTTP */
    size_t nlisten; /* >= 1 */
    bool admin_enabled;
    struct lintel_sockaddr admin; /* default 127.0.0.1:9901 */
    const char *admin_token;      /* resolved bearer token (admin.token), or NULL: none asked */
    size_t admin_token_len;
    unsigned workers;             /* resolved: "auto" becomes the number of online CPUs */

    struct {
        uint64_t header_bytes; /* default 32k */
        unsigned headers;      /* default 100 */
        uint64_t body_bytes;   /* default 8m; 0 means unlimited */
        unsigned connections_per_worker; /* default 16384; past it new connections get a 503 */
        unsigned connections_per_ip;     /* per worker; default 0 (no cap); past it a 429 */
    } limits;
    struct {
        uint64_t client_header_ms, client_body_ms, keepalive_ms, drain_ms; /* 10s 30s 60s 10s */
    } timeouts;

    const char **plugin_paths;
    size_t nplugin_paths;
    const struct lintel_ynode *plugins; /* global plugins: list, or NULL */
    const struct lintel_ynode *consumers;

    struct lintel_upstream_conf *upstreams;
    size_t nupstreams;
    struct lintel_route_conf *routes;
    size_t nroutes;
};

/* Loads and validates the file at path. Returns 0 and sets *out (free it with
 * lintel_config_free), or -1 with err set to "FILE:LINE:COL: key.path: message". */
int lintel_config_load(const char *path, struct lintel_config **out, char *err, size_t errlen);

/* Same, from text in memory; name is used in error messages in place of the file name. */
int lintel_config_load_string(const char *name, const char *text, size_t len,
                              struct lintel_config **out, char *err, size_t errlen);

/* Frees a configuration and everything it owns (compiled regexes included). NULL is ignored. */
void lintel_config_free(struct lintel_config *cfg);

/* Parses "host:port" / "[v6]:port" into addr (text copied into arena). Returns 0, or -1 with a
 * short phrase in err. Name resolution blocks: call it only at load time, never on a worker. */
int lintel_sockaddr_parse(struct lintel_arena *arena, const char *text, struct lintel_sockaddr *addr,
                          char *err, size_t errlen);

#endif
