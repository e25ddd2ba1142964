/* Its version is not MAJOR.MINOR.PATCH. */
#include <lintel/plugin.h>

LINTEL_PLUGIN_EXPORT const struct lintel_plugin lintel_plugin_v1 = {
    LINTEL_PLUGIN_INIT,
    .name = "tp-bad-version",
    .version = "1.0",
};
