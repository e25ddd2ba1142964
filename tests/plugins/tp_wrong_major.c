/* Built for the next ABI major: the loader must refuse it. */
#include <lintel/plugin.h>

LINTEL_PLUGIN_EXPORT const struct lintel_plugin lintel_plugin_v1 = {
    /* The ABI fields by hand: LINTEL_PLUGIN_INIT would set the right ones. */
    .struct_size = sizeof(struct lintel_plugin),
    .abi_major = LINTEL_ABI_MAJOR + 1,
    .abi_minor = LINTEL_ABI_MINOR,
    .name = "tp-wrong-major",
    .version = "1.0.0",
};
