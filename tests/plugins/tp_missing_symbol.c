/* Exports a descriptor under the wrong name, so lintel_plugin_v1 is missing. */
#include <lintel/plugin.h>

LINTEL_PLUGIN_EXPORT const struct lintel_plugin lintel_plugin = {
    LINTEL_PLUGIN_INIT,
    .name = "tp-missing-symbol",
    .version = "1.0.0",
};
