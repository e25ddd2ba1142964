/* Loading the configuration file: reading it, the top-level sections, and the typed readers the
 * other config_*.c files share. Upstreams and routes live in their own files. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config-internal.h"
#include "consumers.h"

/* A configuration larger than this is a mistake (a log file passed with -c), not a config. */
#define MAX_FILE_BYTES (64u << 20)
#define MAX_WORKERS 1024u

static const char *const type_phrase[] = {
    [LINTEL_YNODE_SCALAR] = "must be a string",
    [LINTEL_YNODE_SEQ] = "must be a list",
    [LINTEL_YNODE_MAP] = "must be a map",
};

int lintel_config_fail(struct lintel_config_ctx *c, const struct lintel_ynode *at, const char *fmt,
                       ...)
{
    int n = snprintf(c->err, c->errlen, "%s:%d:%d: %s%s", c->name, at->line, at->col, c->path.buf,
                     c->path.len ? ": " : "");
    if (n < 0 || (size_t)n >= c->errlen)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

int lintel_config_map(struct lintel_config_ctx *c, const struct lintel_ynode *n,
                      const char *const *allowed)
{
    if (n->type != LINTEL_YNODE_MAP)
        return lintel_config_fail(c, n, "%s", type_phrase[LINTEL_YNODE_MAP]);
    for (size_t i = 0; i < n->len; i++) {
        const char *key = n->keys[i]->scalar;
        const char *const *a = allowed;
        while (*a && strcmp(*a, key) != 0)
            a++;
        if (!*a) {
            lintel_ypath_push_key(&c->path, key);
            return lintel_config_fail(c, n->keys[i], "unknown key");
        }
    }
    return 0;
}

int lintel_config_child(struct lintel_config_ctx *c, const struct lintel_ynode *map,
                        const char *key, enum lintel_ynode_type type, bool required,
                        const struct lintel_ynode **out, size_t *mark)
{
    const struct lintel_ynode *n = lintel_ynode_get(map, key);
    *out = NULL;
    if (!n && !required)
        return 0;
    *mark = lintel_ypath_push_key(&c->path, key);
    if (!n)
        return lintel_config_fail(c, map, "required key is missing");
    if (n->type != type)
        return lintel_config_fail(c, n, "%s", type_phrase[type]);
    *out = n;
    return 0;
}

/* The scalar under key, with the key pushed onto the path; NULL when absent (not an error) or
 * when it is not a scalar (an error, *rc = -1). */
static const struct lintel_ynode *scalar_child(struct lintel_config_ctx *c,
                                               const struct lintel_ynode *map, const char *key,
                                               bool required, size_t *mark, int *rc)
{
    const struct lintel_ynode *n;
    *rc = lintel_config_child(c, map, key, LINTEL_YNODE_SCALAR, required, &n, mark);
    return n;
}

int lintel_config_string(struct lintel_config_ctx *c, const struct lintel_ynode *map,
                         const char *key, bool required, const char **out)
{
    size_t mark;
    int rc;
    const struct lintel_ynode *n = scalar_child(c, map, key, required, &mark, &rc);
    if (!n)
        return rc;
    if (n->len == 0)
        return lintel_config_fail(c, n, "must not be empty");
    *out = n->scalar;
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

/* Strict decimal: no sign, no spaces, no suffix. */
static int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
    if (*s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

int lintel_config_uint(struct lintel_config_ctx *c, const struct lintel_ynode *map, const char *key,
                       unsigned min, unsigned max, unsigned *out)
{
    size_t mark;
    int rc;
    const struct lintel_ynode *n = scalar_child(c, map, key, false, &mark, &rc);
    if (!n)
        return rc;
    if (parse_uint(n->scalar, min, max, out) < 0)
        return lintel_config_fail(c, n, "must be an integer from %u to %u", min, max);
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

int lintel_config_bool(struct lintel_config_ctx *c, const struct lintel_ynode *map, const char *key,
                       bool *out)
{
    size_t mark;
    int rc;
    const struct lintel_ynode *n = scalar_child(c, map, key, false, &mark, &rc);
    if (!n)
        return rc;
    /* Only the two YAML 1.2 spellings: "yes"/"on" meaning true surprises people. */
    if (strcmp(n->scalar, "true") == 0)
        *out = true;
    else if (strcmp(n->scalar, "false") == 0)
        *out = false;
    else
        return lintel_config_fail(c, n, "must be true or false");
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

int lintel_config_duration(struct lintel_config_ctx *c, const struct lintel_ynode *map,
                           const char *key, bool zero_ok, uint64_t *ms)
{
    size_t mark;
    int rc;
    const struct lintel_ynode *n = scalar_child(c, map, key, false, &mark, &rc);
    if (!n)
        return rc;
    uint64_t v;
    if (lintel_parse_duration_ms(n->scalar, &v) < 0 || (!zero_ok && v == 0))
        return lintel_config_fail(c, n,
                                  zero_ok ? "must be a duration" : "must be a positive duration");
    *ms = v;
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

int lintel_config_size(struct lintel_config_ctx *c, const struct lintel_ynode *map, const char *key,
                       uint64_t min, uint64_t max, const char *msg, uint64_t *bytes)
{
    size_t mark;
    int rc;
    const struct lintel_ynode *n = scalar_child(c, map, key, false, &mark, &rc);
    if (!n)
        return rc;
    uint64_t v;
    if (lintel_parse_size(n->scalar, &v) < 0 || v < min || v > max)
        return lintel_config_fail(c, n, "%s", msg);
    *bytes = v;
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

int lintel_config_address(struct lintel_config_ctx *c, const struct lintel_ynode *map,
                          const char *key, bool required, struct lintel_sockaddr *out)
{
    size_t mark;
    int rc;
    const struct lintel_ynode *n = scalar_child(c, map, key, required, &mark, &rc);
    if (!n)
        return rc;
    char why[256];
    if (lintel_sockaddr_parse(c->arena, n->scalar, out, why, sizeof(why)) < 0)
        return lintel_config_fail(c, n, "%s", why);
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

int lintel_config_plugin_list(struct lintel_config_ctx *c, const struct lintel_ynode *n)
{
    for (size_t i = 0; i < n->len; i++) {
        size_t mark = lintel_ypath_push_index(&c->path, i);
        const struct lintel_ynode *entry = n->items[i];
        const char *name;
        if (entry->type != LINTEL_YNODE_MAP)
            return lintel_config_fail(c, entry, "must be a map");
        if (lintel_config_string(c, entry, "name", true, &name) < 0)
            return -1;
        lintel_ypath_restore(&c->path, mark);
    }
    return 0;
}

/* A list of non-empty strings (plugin_paths, disable_plugins). */
static int string_list(struct lintel_config_ctx *c, const struct lintel_ynode *n, const char ***out,
                       size_t *count)
{
    const char **v = NULL;
    if (n->len && !(v = lintel_arena_alloc(c->arena, n->len * sizeof(*v))))
        return lintel_config_fail(c, n, "out of memory");
    for (size_t i = 0; i < n->len; i++) {
        size_t mark = lintel_ypath_push_index(&c->path, i);
        const struct lintel_ynode *s = n->items[i];
        if (s->type != LINTEL_YNODE_SCALAR)
            return lintel_config_fail(c, s, "must be a string");
        if (s->len == 0)
            return lintel_config_fail(c, s, "must not be empty");
        v[i] = s->scalar;
        lintel_ypath_restore(&c->path, mark);
    }
    *out = v;
    *count = n->len;
    return 0;
}

static int read_listen(struct lintel_config_ctx *c, const struct lintel_ynode *root)
{
    static const char *const keys[] = {"address", "tls", NULL};
    struct lintel_config *cfg = c->cfg;
    const struct lintel_ynode *n;
    size_t mark;

    if (lintel_config_child(c, root, "listen", LINTEL_YNODE_SEQ, true, &n, &mark) < 0)
        return -1;
    if (n->len == 0)
        return lintel_config_fail(c, n, "must not be empty");
    cfg->listen = lintel_arena_calloc(c->arena, n->len * sizeof(*cfg->listen));
    cfg->listen_tls = lintel_arena_calloc(c->arena, n->len * sizeof(*cfg->listen_tls));
    if (!cfg->listen || !cfg->listen_tls)
        return lintel_config_fail(c, n, "out of memory");
    for (size_t i = 0; i < n->len; i++) {
        size_t item = lintel_ypath_push_index(&c->path, i);
        const struct lintel_ynode *tls;
        size_t tmark;
        if (lintel_config_map(c, n->items[i], keys) < 0 ||
            lintel_config_address(c, n->items[i], "address", true, &cfg->listen[i]) < 0 ||
            lintel_config_child(c, n->items[i], "tls", LINTEL_YNODE_MAP, false, &tls, &tmark) < 0)
            return -1;
        if (tls) {
            if (lintel_config_tls(c, tls, &cfg->listen_tls[i]) < 0)
                return -1;
            lintel_ypath_restore(&c->path, tmark);
        }
        lintel_ypath_restore(&c->path, item);
    }
    cfg->nlisten = n->len;
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

/* admin.token: "env:NAME", "file:PATH" or the token itself, resolved now so that a missing
 * variable is a load error rather than an admin API nobody can use. */
static int read_admin_token(struct lintel_config_ctx *c, const struct lintel_ynode *admin)
{
    const char *spec = NULL;
    if (lintel_config_string(c, admin, "token", false, &spec) < 0)
        return -1;
    if (!spec)
        return 0;
    const struct lintel_ynode *n = lintel_ynode_get(admin, "token");
    size_t mark = lintel_ypath_push_key(&c->path, "token");
    long len = lintel_secret_resolve(spec, NULL, 0);
    if (len < 0)
        return lintel_config_fail(c, n, "cannot read the token (unset variable or unreadable file)");
    if (len < 16)
        return lintel_config_fail(c, n, "must be at least 16 characters");
    char *tok = lintel_arena_alloc(c->arena, (size_t)len + 1);
    if (!tok)
        return lintel_config_fail(c, n, "out of memory");
    if (lintel_secret_resolve(spec, tok, (size_t)len) != len)
        return lintel_config_fail(c, n, "the token changed while it was read");
    tok[len] = '\0';
    for (long i = 0; i < len; i++)
        if ((unsigned char)tok[i] <= 0x20 || (unsigned char)tok[i] >= 0x7f)
            return lintel_config_fail(c, n, "must be visible ASCII without spaces");
    c->cfg->admin_token = tok;
    c->cfg->admin_token_len = (size_t)len;
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

static int read_admin(struct lintel_config_ctx *c, const struct lintel_ynode *root)
{
    static const char *const keys[] = {"address", "enabled", "token", NULL};
    struct lintel_config *cfg = c->cfg;
    const struct lintel_ynode *n;
    size_t mark;
    char why[256];

    cfg->admin_enabled = true;
    if (lintel_sockaddr_parse(c->arena, "127.0.0.1:9901", &cfg->admin, why, sizeof(why)) < 0)
        return lintel_config_fail(c, root, "admin default address: %s", why);
    if (lintel_config_child(c, root, "admin", LINTEL_YNODE_MAP, false, &n, &mark) < 0)
        return -1;
    if (!n)
        return 0;
    if (lintel_config_map(c, n, keys) < 0 ||
        lintel_config_bool(c, n, "enabled", &cfg->admin_enabled) < 0 ||
        lintel_config_address(c, n, "address", false, &cfg->admin) < 0 ||
        read_admin_token(c, n) < 0)
        return -1;
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

static int read_workers(struct lintel_config_ctx *c, const struct lintel_ynode *root)
{
    const struct lintel_ynode *n;
    size_t mark;

    if (lintel_config_child(c, root, "workers", LINTEL_YNODE_SCALAR, false, &n, &mark) < 0)
        return -1;
    if (n && strcmp(n->scalar, "auto") != 0) {
        if (parse_uint(n->scalar, 1, MAX_WORKERS, &c->cfg->workers) < 0)
            return lintel_config_fail(c, n, "must be \"auto\" or an integer from 1 to %u",
                                      MAX_WORKERS);
        lintel_ypath_restore(&c->path, mark);
        return 0;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    c->cfg->workers = cpus < 1 ? 1 : cpus > (long)MAX_WORKERS ? MAX_WORKERS : (unsigned)cpus;
    if (n)
        lintel_ypath_restore(&c->path, mark);
    return 0;
}

static int read_limits(struct lintel_config_ctx *c, const struct lintel_ynode *root)
{
    static const char *const keys[] = {"header_bytes",           "headers",
                                       "body_bytes",             "connections_per_worker",
                                       "connections_per_ip",     NULL};
    struct lintel_config *cfg = c->cfg;
    const struct lintel_ynode *n;
    size_t mark;

    cfg->limits.header_bytes = 32 << 10;
    cfg->limits.headers = 100;
    cfg->limits.body_bytes = 8 << 20;
    cfg->limits.connections_per_worker = 16384;
    cfg->limits.connections_per_ip = 0;
    if (lintel_config_child(c, root, "limits", LINTEL_YNODE_MAP, false, &n, &mark) < 0)
        return -1;
    if (!n)
        return 0;
    /* Upper bounds keep per-connection buffers sized from these values sane. */
    if (lintel_config_map(c, n, keys) < 0 ||
        lintel_config_size(c, n, "header_bytes", 1 << 10, 64 << 10, "must be a size from 1k to 64k",
                           &cfg->limits.header_bytes) < 0 ||
        lintel_config_uint(c, n, "headers", 1, 10000, &cfg->limits.headers) < 0 ||
        lintel_config_size(c, n, "body_bytes", 0, UINT64_MAX, "must be a size",
                           &cfg->limits.body_bytes) < 0 ||
        lintel_config_uint(c, n, "connections_per_worker", 1, 1000000,
                           &cfg->limits.connections_per_worker) < 0 ||
        lintel_config_uint(c, n, "connections_per_ip", 0, 1000000,
                           &cfg->limits.connections_per_ip) < 0)
        return -1;
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

static int read_timeouts(struct lintel_config_ctx *c, const struct lintel_ynode *root)
{
    static const char *const keys[] = {"client_header", "client_body", "keepalive", "drain", NULL};
    struct lintel_config *cfg = c->cfg;
    const struct lintel_ynode *n;
    size_t mark;

    cfg->timeouts.client_header_ms = 10000;
    cfg->timeouts.client_body_ms = 30000;
    cfg->timeouts.keepalive_ms = 60000;
    cfg->timeouts.drain_ms = 10000;
    if (lintel_config_child(c, root, "timeouts", LINTEL_YNODE_MAP, false, &n, &mark) < 0)
        return -1;
    if (!n)
        return 0;
    /* drain 0 means: close idle connections and stop at once on shutdown. */
    if (lintel_config_map(c, n, keys) < 0 ||
        lintel_config_duration(c, n, "client_header", false, &cfg->timeouts.client_header_ms) < 0 ||
        lintel_config_duration(c, n, "client_body", false, &cfg->timeouts.client_body_ms) < 0 ||
        lintel_config_duration(c, n, "keepalive", false, &cfg->timeouts.keepalive_ms) < 0 ||
        lintel_config_duration(c, n, "drain", true, &cfg->timeouts.drain_ms) < 0)
        return -1;
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

/* plugin_paths, plugins, consumers: the plugin host checks the rest later. */
static int read_plugin_sections(struct lintel_config_ctx *c, const struct lintel_ynode *root)
{
    struct lintel_config *cfg = c->cfg;
    const struct lintel_ynode *n;
    size_t mark;

    if (lintel_config_child(c, root, "plugin_paths", LINTEL_YNODE_SEQ, false, &n, &mark) < 0)
        return -1;
    if (n) {
        if (string_list(c, n, &cfg->plugin_paths, &cfg->nplugin_paths) < 0)
            return -1;
        lintel_ypath_restore(&c->path, mark);
    }
    if (lintel_config_child(c, root, "plugins", LINTEL_YNODE_SEQ, false, &n, &mark) < 0)
        return -1;
    if (n) {
        if (lintel_config_plugin_list(c, n) < 0)
            return -1;
        cfg->plugins = n;
        lintel_ypath_restore(&c->path, mark);
    }
    if (lintel_config_child(c, root, "consumers", LINTEL_YNODE_SEQ, false, &n, &mark) < 0)
        return -1;
    if (n) {
        cfg->consumers = n;
        lintel_ypath_restore(&c->path, mark);
    }
    return 0;
}

static int read_root(struct lintel_config_ctx *c, const struct lintel_ynode *root)
{
    static const char *const keys[] = {"listen",       "admin",   "workers",   "limits",
                                       "timeouts",     "plugins", "consumers", "upstreams",
                                       "plugin_paths", "routes",  "resolver",  NULL};
    const struct lintel_ynode *n;
    size_t mark;

    if (lintel_config_map(c, root, keys) < 0 || read_listen(c, root) < 0 ||
        read_admin(c, root) < 0 || read_workers(c, root) < 0 || read_limits(c, root) < 0 ||
        read_timeouts(c, root) < 0 || read_plugin_sections(c, root) < 0 ||
        lintel_config_resolver(c, root) < 0)
        return -1;
    if (lintel_config_child(c, root, "upstreams", LINTEL_YNODE_MAP, true, &n, &mark) < 0 ||
        lintel_config_upstreams(c, n) < 0)
        return -1;
    lintel_ypath_restore(&c->path, mark);
    if (lintel_config_child(c, root, "routes", LINTEL_YNODE_SEQ, true, &n, &mark) < 0 ||
        lintel_config_routes(c, n) < 0)
        return -1;
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

int lintel_config_load_string(const char *name, const char *text, size_t len,
                              struct lintel_config **out, char *err, size_t errlen)
{
    struct lintel_arena *arena = lintel_arena_new(16 << 10);
    struct lintel_config *cfg = NULL;
    char yerr[512];

    if (!arena)
        goto oom;
    cfg = lintel_arena_calloc(arena, sizeof(*cfg));
    if (!cfg)
        goto oom;
    cfg->arena = arena;
    cfg->path = lintel_arena_strndup(arena, name, strlen(name));
    if (!cfg->path)
        goto oom;
    struct lintel_ynode *root = lintel_ynode_parse(arena, text, len, yerr, sizeof(yerr));
    if (!root) {
        snprintf(err, errlen, "%s:%s", name, yerr);
        goto fail;
    }
    cfg->root = root;
    struct lintel_config_ctx c = {
        .cfg = cfg, .arena = arena, .name = name, .err = err, .errlen = errlen};
    if (read_root(&c, root) < 0)
        goto fail;
    *out = cfg;
    return 0;

oom:
    snprintf(err, errlen, "%s: out of memory", name);
fail:
    lintel_arena_free(arena);
    return -1;
}

/* Reads the whole file into a malloc'd buffer; works for pipes (-c /dev/stdin) too. */
static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t used = 0, cap = 0;
    FILE *f = fopen(path, "rb");

    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (cap - used < 4096) {
            cap = cap ? cap * 2 : 16384;
            char *nb = cap <= MAX_FILE_BYTES ? realloc(buf, cap) : NULL;
            if (!nb) {
                snprintf(err, errlen, "%s: %s", path,
                         cap > MAX_FILE_BYTES ? "file is too large" : "out of memory");
                goto fail;
            }
            buf = nb;
        }
        size_t n = fread(buf + used, 1, cap - used, f);
        used += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        goto fail;
    }
    fclose(f);
    *len = used;
    return buf;

fail:
    fclose(f);
    free(buf);
    return NULL;
}

int lintel_config_load(const char *path, struct lintel_config **out, char *err, size_t errlen)
{
    size_t len;
    char *text = read_file(path, &len, err, errlen);
    if (!text)
        return -1;
    int rc = lintel_config_load_string(path, text, len, out, err, errlen);
    free(text);
    return rc;
}

void lintel_config_free(struct lintel_config *cfg)
{
    if (cfg)
        lintel_arena_free(cfg->arena);
}

int lintel_sockaddr_parse(struct lintel_arena *arena, const char *text,
                          struct lintel_sockaddr *addr, char *err, size_t errlen)
{
    char host[256];
    const char *h, *port;
    size_t hlen;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    unsigned portnum;

    memset(addr, 0, sizeof(*addr));
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':' || close == text + 1) {
            snprintf(err, errlen, "must be [IPv6 address]:port");
            return -1;
        }
        h = text + 1;
        hlen = (size_t)(close - h);
        port = close + 2;
        hints.ai_family = AF_INET6;
        hints.ai_flags |= AI_NUMERICHOST;
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon) {
            snprintf(err, errlen, "must be host:port");
            return -1;
        }
        h = text;
        hlen = (size_t)(colon - text);
        port = colon + 1;
        if (memchr(h, ':', hlen)) {
            snprintf(err, errlen, "IPv6 addresses must be in brackets: [::1]:80");
            return -1;
        }
        /* ":8080" is every IPv4 interface, as in "0.0.0.0:8080". */
        if (hlen == 0) {
            h = "0.0.0.0";
            hlen = 7;
            hints.ai_flags |= AI_NUMERICHOST;
        }
    }
    if (parse_uint(port, 1, 65535, &portnum) < 0) {
        snprintf(err, errlen, "port must be from 1 to 65535");
        return -1;
    }
    if (hlen >= sizeof(host)) {
        snprintf(err, errlen, "host name is too long");
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';

    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve \"%s\": %s", host,
                 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -1;
    }
    if (res->ai_addrlen > sizeof(addr->ss)) {
        freeaddrinfo(res);
        snprintf(err, errlen, "unsupported address family");
        return -1;
    }
    memcpy(&addr->ss, res->ai_addr, res->ai_addrlen);
    addr->len = res->ai_addrlen;
    freeaddrinfo(res);
    addr->text = lintel_arena_strndup(arena, text, strlen(text));
    if (!addr->text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}
