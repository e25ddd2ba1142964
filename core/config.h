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

/* An upstream target as written in the file: an IP address, or a host name that the resolver
 * (dns.h) turns into one target per address, at start and every `resolve_interval`. */
struct lintel_target_decl {
    const char *text; /* "users.internal:8080", as written */
    const char *host; /* the host part: "users.internal", "10.0.0.7", "::1" */
    uint16_t port;
    bool is_name;                /* a host name; else addr holds the address */
    struct lintel_sockaddr addr; /* IP addresses only */
    unsigned weight;             /* >= 1, default 1 */
    const struct lintel_ynode *node;
};

/* A target the balancers pick from: one address. */
struct lintel_target_conf {
    struct lintel_sockaddr addr; /* text: as written for an IP target, "10.0.0.7:8080" (the
                                    address) for one a host name resolved to */
    unsigned weight;             /* >= 1, default 1 */
    const struct lintel_target_decl *decl; /* where it comes from */
    const char *host;     /* the target as written ("users.internal:8080"): the Host header
                             when the client sent none, and the probes' Host */
    const char *sni;      /* https: the server name sent and verified; NULL for an IP target
                             without `tls.sni` (then the certificate must name the IP) */
    const char *pool_key; /* NULL for plain HTTP; https: the TLS settings (name, verification),
                             so a kept connection is reused only under the same ones */
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

/* An upstream's `tls` section (scheme: https). */
struct lintel_upstream_tls_conf {
    const char *ca_file; /* PEM CA bundle; NULL: the system's store */
    bool verify;         /* default true; false is logged as a warning at load */
    const char *sni;     /* server name for every target; NULL: each target's host name */
    const struct lintel_ynode *node; /* the `tls` map, or the `scheme` key without one */
};

struct lintel_upstream_conf {
    size_t index; /* position in lintel_config.upstreams */
    const char *name;
    struct lintel_target_decl *decl; /* as written */
    size_t ndecl;                    /* >= 1 */
    /* The targets: one per IP address written, plus one per address each host name resolves
     * to. As loaded, only the IP ones; a snapshot's configuration has the names' addresses
     * too (config_targets.c). May be 0 while no name has an address. */
    struct lintel_target_conf *targets;
    size_t ntargets;
    const char *unresolved; /* why names have no address ("users.internal: no such host";
                               as loaded, "...: not resolved yet"), or NULL */
    uint64_t resolve_ms;    /* host names are resolved again this often; default
                               resolver.interval */
    bool https;             /* scheme: https */
    struct lintel_upstream_tls_conf tls; /* https only */
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

/* The `resolver` section: how host-name targets are resolved (dns.h). */
struct lintel_resolver_conf {
    const char **nameservers; /* "IP" or "IP:port"; none: those of /etc/resolv.conf */
    size_t nnameservers;
    const char *hosts;       /* hosts file consulted first; default /etc/hosts */
    uint64_t timeout_ms;     /* per query; default 5s */
    unsigned attempts;       /* per name and interval; default 2 */
    uint64_t interval_ms;    /* default resolve_interval of upstreams; default 30s */
    const struct lintel_ynode *node; /* NULL without a `resolver` section */
};

struct lintel_config {
    struct lintel_arena *arena;
    const struct lintel_config *base; /* a snapshot's configuration with resolved targets: the
                                         configuration as loaded, which owns everything but the
                                         upstream and route arrays; NULL when loaded */
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

    struct lintel_resolver_conf resolver;
    bool has_names; /* some target is a host name */

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
