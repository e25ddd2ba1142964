/* The configuration's consumers (consumer_count, consumer_at) and secrets (secret): what
 * authentication plugins read at create time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumers.h"
#include "testkit-internal.h"

/* The consumers YAML given to lk_set_consumers (checked); each instance parses its own copy, so
 * its nodes live exactly as long as the instance. NULL: none. */
static char *consumers_text;

/* Writes "LINE:COL: consumers[i]...: message" into err; returns -1. */
__attribute__((format(printf, 5, 6))) static int consumer_fail(char *err, size_t errlen,
                                                               const struct lintel_ynode *at,
                                                               const struct lintel_ypath *path,
                                                               const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "%d:%d: consumers%s: %s", at->line, at->col, path->buf, text);
    return -1;
}

/* The checks lintel makes on `consumers:` (core/plugin_host.c): a list of maps with name (a
 * unique, non-empty string), id (a non-empty string) and credentials (a map), nothing else. */
static int check(const struct lintel_ynode *list, char *err, size_t errlen)
{
    static const char *const keys[] = {"name", "id", "credentials"};
    struct lintel_ypath path = {0};
    if (list->type != LINTEL_YNODE_SEQ)
        return consumer_fail(err, errlen, list, &path, "must be a list");
    const char **names = lk_must(calloc(list->len ? list->len : 1, sizeof(*names)));
    int rc = 0;
    for (size_t i = 0; i < list->len && rc == 0; i++) {
        const struct lintel_ynode *m = list->items[i];
        lintel_ypath_push_index(&path, i);
        if (m->type != LINTEL_YNODE_MAP) {
            rc = consumer_fail(err, errlen, m, &path, "must be a map");
            break;
        }
        for (size_t k = 0; k < m->len && rc == 0; k++) {
            size_t j = 0;
            while (j < 3 && strcmp(keys[j], m->keys[k]->scalar) != 0)
                j++;
            if (j == 3) {
                lintel_ypath_push_key(&path, m->keys[k]->scalar);
                rc = consumer_fail(err, errlen, m->keys[k], &path, "unknown key");
            }
        }
        const struct lintel_ynode *name = lintel_ynode_get(m, "name");
        const struct lintel_ynode *cred = lintel_ynode_get(m, "credentials");
        if (rc == 0 && !name) {
            lintel_ypath_push_key(&path, "name");
            rc = consumer_fail(err, errlen, m, &path, "required key is missing");
        }
        for (int s = 0; s < 2 && rc == 0; s++) { /* name, id: non-empty strings */
            const struct lintel_ynode *n = lintel_ynode_get(m, keys[s]);
            if (!n)
                continue;
            size_t at = lintel_ypath_push_key(&path, keys[s]);
            if (n->type != LINTEL_YNODE_SCALAR)
                rc = consumer_fail(err, errlen, n, &path, "must be a string");
            else if (n->len == 0)
                rc = consumer_fail(err, errlen, n, &path, "must not be empty");
            lintel_ypath_restore(&path, at);
        }
        if (rc == 0 && cred && cred->type != LINTEL_YNODE_MAP) {
            lintel_ypath_push_key(&path, "credentials");
            rc = consumer_fail(err, errlen, cred, &path, "must be a map");
        }
        names[i] = rc == 0 ? name->scalar : NULL;
        lintel_ypath_restore(&path, 0);
    }
    size_t dup;
    if (rc == 0 && lintel_find_duplicate(names, list->len, &dup) == 1) {
        lintel_ypath_push_index(&path, dup);
        rc = consumer_fail(err, errlen, list->items[dup], &path, "duplicate consumer name \"%s\"",
                           names[dup]);
    }
    free(names);
    return rc;
}

int lk_set_consumers(const char *yaml, char *err, size_t errlen)
{
    if (!yaml) {
        free(consumers_text);
        consumers_text = NULL;
        return 0;
    }
    struct lintel_arena *a = lk_must(lintel_arena_new(4096));
    const struct lintel_ynode *list = lintel_ynode_parse(a, yaml, strlen(yaml), err, errlen);
    int rc = list ? check(list, err, errlen) : -1;
    lintel_arena_free(a);
    if (rc == 0) {
        free(consumers_text);
        consumers_text = lk_must(strdup(yaml));
    }
    return rc;
}

int lk_consumers_load(struct lk_instance *in, char *err, size_t errlen)
{
    if (!consumers_text)
        return 0;
    in->consumers =
        lintel_ynode_parse(in->arena, consumers_text, strlen(consumers_text), err, errlen);
    return in->consumers ? 0 : -1;
}

size_t lk_consumer_count_fn(const lintel_instance *self)
{
    return self && self->kit->consumers ? self->kit->consumers->len : 0;
}

int lk_consumer_at_fn(const lintel_instance *self, size_t i, struct lintel_consumer *out)
{
    return lintel_consumer_read(self ? self->kit->consumers : NULL, i, out);
}

long lk_secret_fn(const lintel_instance *self, const lintel_cfg *node, char *buf, size_t cap)
{
    return lintel_secret_resolve(lintel_cfg_str(node), buf, cap);
}
