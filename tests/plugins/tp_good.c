/* A well-formed test plugin; CMake builds it several times with different TP_VERSIONs so that
 * one directory holds several versions of "tp-good". */
#include <lintel/plugin.h>

#ifndef TP_VERSION
#define TP_VERSION "1.0.0"
#endif

LINTEL_PLUGIN_EXPORT const struct lintel_plugin lintel_plugin_v1 = {
    LINTEL_PLUGIN_INIT,
    .name = "tp-good",
    .version = TP_VERSION,
    .priority = 100,
};
