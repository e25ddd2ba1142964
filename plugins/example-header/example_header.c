/* example-header: sets one configured header on every response.
 *
 *     plugins: [{ name: example-header, config: { name: X-Example, value: hello } }]
 *
 * Config is read and checked once, in create (main thread); the one handler, RESPONSE_HEADERS
 * (workers), only reads the instance. docs/plugin-sdk.md walks through this file. */
#include <stdlib.h>
#include <string.h>

#include <lintel/config.h>
#include <lintel/text.h>
#include <lintel/plugin.h>

struct example_header {
    const struct lintel_host_api *host;
    /* Borrowed from the config tree: its nodes live as long as the instance. */
    const char *name;
    const char *value;
    size_t value_len;
};

/* ---- configuration (create: main thread) -------------------------------------------------- */

/* No control characters but tab: a CR or LF would split the header on the wire. */
static int is_field_value(const char *s)
{
    for (; *s; s++)
        if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
            return 0;
    return 1;
}

/* The string at config.key, or NULL after reporting why there is none. */
static const char *required_string(const struct lintel_host_api *host, const lintel_cfg *config,
                                   const char *key, lintel_cfg_error *err)
{
    const lintel_cfg *node = host->cfg_get(config, key);
    if (!node) {
        /* No node to point at: report at the map, naming the key. */
        host->cfg_error(err, config, "%s: required", key);
        return NULL;
    }
    const char *s = host->cfg_str(node);
    if (!s)
        host->cfg_error(err, node, "must be a string");
    return s;
}

static int create(const struct lintel_host_api *host, lintel_instance *self,
                  const lintel_cfg *config, lintel_cfg_error *err, void **instance)
{
    (void)self; /* only needed for log, metrics and per-request context, which this one skips */

    /* a map of these keys only: unknown keys are errors, as everywhere in lintel's config */
    static const char *const keys[] = {"name", "value", NULL};
    if (lintel_cfg_require_config(host, config, keys, err) < 0)
        return -1;
    const char *name = required_string(host, config, "name", err);
    if (!name)
        return -1;
    if (!lintel_is_token(name, strlen(name))) {
        host->cfg_error(err, host->cfg_get(config, "name"), "must be a header name");
        return -1;
    }
    const char *value = required_string(host, config, "value", err);
    if (!value)
        return -1;
    if (!is_field_value(value)) {
        host->cfg_error(err, host->cfg_get(config, "value"), "must not contain control characters");
        return -1;
    }

    struct example_header *inst = malloc(sizeof(*inst));
    if (!inst) {
        host->cfg_error(err, NULL, "out of memory");
        return -1;
    }
    *inst = (struct example_header){
        .host = host, .name = name, .value = value, .value_len = strlen(value)};
    *instance = inst;
    return 0;
}

static void destroy(void *instance)
{
    free(instance);
}

/* ---- requests (worker threads) ------------------------------------------------------------ */

/* The instance is shared by every worker and only read here, so no locking is needed. */
static enum lintel_result on_response_headers(lintel_req *r, void *instance)
{
    const struct example_header *inst = instance;
    if (inst->host->resp_header_set(r, inst->name, inst->value, inst->value_len) < 0)
        return LINTEL_ERROR; /* out of memory: the request gets a 500 */
    return LINTEL_CONTINUE;
}

LINTEL_PLUGIN_EXPORT const struct lintel_plugin lintel_plugin_v1 = {
    LINTEL_PLUGIN_INIT,
    .name = "example-header",
    .version = "1.0.0",
    .priority = 0,
    .create = create,
    .destroy = destroy,
    .response_headers = on_response_headers,
};
