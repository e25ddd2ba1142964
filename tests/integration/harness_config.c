/* Configuration helpers of the integration harness: the YAML examples of the docs pages, a copy
 * of a plugin in a directory of its own, and `lintel -t` with its verdict. */
#include "harness.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DOC_PLUGIN_PATHS "plugin_paths: [build/plugins]"

/* Adds line to out with every addr_from[i] replaced by 127.0.0.1:port_to[i]. */
static void add_line(struct it_buf *out, const char *line, const char *const *addr_from,
                     const int *port_to, size_t n)
{
    while (*line) {
        size_t i = 0;
        while (i < n && strncmp(line, addr_from[i], strlen(addr_from[i])) != 0)
            i++;
        if (i < n) {
            char addr[32];
            int k = snprintf(addr, sizeof(addr), "127.0.0.1:%d", port_to[i]);
            it_buf_add(out, addr, (size_t)k);
            line += strlen(addr_from[i]);
        } else {
            it_buf_add(out, line++, 1);
        }
    }
}

int it_doc_yaml(const char *doc_rel_path, int block, const char *plugin_dir,
                const char *const *addr_from, const int *port_to, size_t n, struct it_buf *out)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", LINTEL_SOURCE_DIR, doc_rel_path);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "it_doc_yaml: cannot open %s\n", path);
        return -1;
    }
    char line[4096];
    int seen = -1; /* index of the ```yaml block we are in, or of the last one */
    bool in = false, done = false, paths = false;
    while (!done && fgets(line, sizeof(line), f)) {
        if (!in && strcmp(line, "```yaml\n") == 0) {
            in = true;
            seen++;
        } else if (in && strcmp(line, "```\n") == 0) {
            in = false;
            done = seen == block;
        } else if (in && seen == block) {
            if (plugin_dir && strncmp(line, DOC_PLUGIN_PATHS, strlen(DOC_PLUGIN_PATHS)) == 0) {
                char p[PATH_MAX + 64];
                int k = snprintf(p, sizeof(p), "plugin_paths: [\"%s\"]%s", plugin_dir,
                                 line + strlen(DOC_PLUGIN_PATHS));
                it_buf_add(out, p, (size_t)k);
                paths = true;
            } else {
                add_line(out, line, addr_from, port_to, n);
            }
        }
    }
    fclose(f);
    if (!done) {
        fprintf(stderr, "it_doc_yaml: %s has no ```yaml block %d\n", path, block);
        return -1;
    }
    if (plugin_dir && !paths) {
        fprintf(stderr, "it_doc_yaml: block %d of %s has no \"%s\"\n", block, path,
                DOC_PLUGIN_PATHS);
        return -1;
    }
    return 0;
}

int it_doc_check(const char *doc_rel_path, const char *plugin_dir)
{
    struct it_buf yaml = {0};
    if (!plugin_dir) {
        fprintf(stderr, "it_doc_check: %s: no plugin directory\n", doc_rel_path);
        return -1;
    }
    if (it_doc_yaml(doc_rel_path, 0, plugin_dir, NULL, NULL, 0, &yaml) < 0) {
        it_buf_free(&yaml);
        return -1;
    }
    const char *base = strrchr(doc_rel_path, '/');
    char name[256];
    snprintf(name, sizeof(name), "doc-%s.yaml", base ? base + 1 : doc_rel_path);
    const char *conf = it_temp_path(name);
    int rc = it_write_file(conf, "%s", yaml.data);
    it_buf_free(&yaml);
    return rc == 0 ? it_lintel_check(conf, NULL) : -1;
}

const char *it_check_config(const char *name, const char *plugin_dir, const char *plugins)
{
    const char *conf = it_temp_path(name);
    int rc = it_write_file(conf,
                           "listen: [ { address: \"127.0.0.1:1\" } ]\n"
                           "admin: { enabled: false }\n"
                           "plugin_paths: [\"%s\"]\n"
                           "plugins:\n"
                           "%s"
                           "upstreams: {}\n"
                           "routes: []\n",
                           plugin_dir, plugins);
    return rc == 0 ? conf : NULL;
}

const char *it_plugin_dir(const char *name, const char *so_path)
{
    const char *dir = it_temp_path(name);
    const char *base = strrchr(so_path, '/');
    char dst[PATH_MAX];
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "it_plugin_dir: mkdir %s: %s\n", dir, strerror(errno));
        return NULL;
    }
    snprintf(dst, sizeof(dst), "%s/%s", dir, base ? base + 1 : so_path);
    return it_install_file(so_path, dst) == 0 ? dir : NULL;
}

int it_lintel_check(const char *conf, struct it_buf *err)
{
    char *argv[] = {LINTEL_BIN, "-t", "-c", (char *)conf, NULL};
    struct it_buf out = {0}, mine = {0};
    struct it_buf *e = err ? err : &mine;
    int rc = it_run(argv, 10000, &out, e);
    if (rc != 0 && !err)
        fprintf(stderr, "\n  lintel -t -c %s (exit %d): %s%s\n", conf, rc, out.data ? out.data : "",
                mine.data ? mine.data : "");
    it_buf_free(&out);
    it_buf_free(&mine);
    return rc;
}

bool it_lintel_refuses(const char *conf, const char *fmt, ...)
{
    char want[PATH_MAX + 512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(want, sizeof(want), fmt, ap);
    va_end(ap);
    struct it_buf err = {0};
    int rc = it_lintel_check(conf, &err);
    bool ok = rc == 1 && err.data && strstr(err.data, want);
    if (!ok)
        fprintf(stderr, "\n  lintel -t -c %s (exit %d, want 1) said: %s\n  wanted: %s\n", conf, rc,
                err.data ? err.data : "(nothing)", want);
    it_buf_free(&err);
    return ok;
}

void it_build_path(char *out, size_t len, const char *rel)
{
    char bin[PATH_MAX];
    snprintf(bin, sizeof(bin), "%s", LINTEL_BIN);
    snprintf(out, len, "%s/%s", dirname(bin), rel);
}
