/* Claims an ABI minor the host does not have yet: the loader must refuse it. */
#include <lintel/plugin.h>

LINTEL_PLUGIN_EXPORT const struct lintel_plugin lintel_plugin_v1 = {
    /* The ABI fields by hand: LINTEL_PLUGIN_INIT would set the right ones. */
    .struct_size = sizeof(struct lintel_plugin),
    .abi_major = LINTEL_ABI_MAJOR,
    .abi_minor = LINTEL_ABI_MINOR + 7,
    .name = "tp-newer-minor",
    .version = "1.0.0",
};
