#include "consumers.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int lintel_consumer_read(const struct lintel_ynode *list, size_t i, struct lintel_consumer *out)
{
    if (!list || i >= list->len || !out || out->struct_size < sizeof(out->struct_size))
        return -1;
    const struct lintel_ynode *m = list->items[i], *id = lintel_ynode_get(m, "id");
    struct lintel_consumer v = {
        .struct_size = sizeof(v),
        .name = lintel_ynode_get(m, "name")->scalar,
        .id = id ? id->scalar : NULL,
        .credentials = (const lintel_cfg *)lintel_ynode_get(m, "credentials"),
    };
    size_t n = out->struct_size < sizeof(v) ? out->struct_size : sizeof(v);
    memcpy(out, &v, n);
    out->struct_size = (uint32_t)n;
    return 0;
}

/* The largest file:PATH secret lintel reads; a bigger file is a mistake, not a secret. */
#define SECRET_FILE_MAX 65536

long lintel_secret_resolve(const char *spec, char *buf, size_t cap)
{
    if (!spec || (!buf && cap))
        return -1;
    const char *val = spec;
    size_t len;
    char file[SECRET_FILE_MAX];
    if (strncmp(spec, "env:", 4) == 0) {
        val = getenv(spec + 4);
        if (!val)
            return -1;
        len = strlen(val);
    } else if (strncmp(spec, "file:", 5) == 0) {
        FILE *f = fopen(spec + 5, "rb");
        if (!f)
            return -1;
        len = fread(file, 1, sizeof(file), f);
        bool big = !feof(f);
        fclose(f);
        if (big)
            return -1;
        if (len && file[len - 1] == '\n')
            len--;
        val = file;
    } else {
        len = strlen(val);
    }
    if (cap)
        memcpy(buf, val, len < cap ? len : cap);
    return (long)len;
}
