/* lintel plugin SDK — small readers for a plugin's create, built only on the host table's cfg_*
 * functions (plugin.h). They are static inline, so using them adds nothing to the ABI: a plugin
 * built with them needs the same host as one that writes the loops itself.
 *
 * Each reports through h->cfg_error with the short phrase lintel's own readers use, so the gateway
 * prints "FILE:LINE:COL: key.path: message", and returns -1; create must then return -1.
 * Thread: main (create only), like the cfg_* functions they call. */
#ifndef LINTEL_SDK_CONFIG_H
#define LINTEL_SDK_CONFIG_H

#include <string.h>

#include <lintel/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 0 when every key of map is one of known (a NULL-terminated list of names); -1 after reporting
 * "unknown key" at the value of the first key that is not (its path names the key). A node that
 * is not a map has no keys: 0. */
static inline int lintel_cfg_check_keys(const struct lintel_host_api *h, const lintel_cfg *map,
                                        const char *const *known, lintel_cfg_error *err)
{
    size_t n = h->cfg_type(map) == LINTEL_CFG_MAP ? h->cfg_len(map) : 0;
    for (size_t i = 0; i < n; i++) {
        const char *key = h->cfg_key_at(map, i);
        size_t k = 0;
        while (known[k] && strcmp(known[k], key) != 0)
            k++;
        if (!known[k]) {
            h->cfg_error(err, h->cfg_at(map, i), "unknown key");
            return -1;
        }
    }
    return 0;
}

/* 0 when node is a map of known keys (known NULL: any keys); -1 after reporting "must be a map"
 * at node (also when node is absent: check that first where absent is allowed) or "unknown key"
 * as lintel_cfg_check_keys does. */
static inline int lintel_cfg_require_map(const struct lintel_host_api *h, const lintel_cfg *node,
                                         const char *const *known, lintel_cfg_error *err)
{
    if (h->cfg_type(node) != LINTEL_CFG_MAP) {
        h->cfg_error(err, node, "must be a map");
        return -1;
    }
    return known ? lintel_cfg_check_keys(h, node, known, err) : 0;
}

/* For the instance's whole config (create's config argument), when the plugin needs one: -1
 * after reporting "required" when there is none (config NULL), else as lintel_cfg_require_map. */
static inline int lintel_cfg_require_config(const struct lintel_host_api *h,
                                            const lintel_cfg *config, const char *const *known,
                                            lintel_cfg_error *err)
{
    if (!config) {
        h->cfg_error(err, config, "required");
        return -1;
    }
    return lintel_cfg_require_map(h, config, known, err);
}

#ifdef __cplusplus
}
#endif

#endif
