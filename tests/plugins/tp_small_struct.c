/* Declares a descriptor of 8 bytes (only the ABI fields): smaller than any v1 descriptor. */
#include <lintel/plugin.h>

LINTEL_PLUGIN_EXPORT const struct lintel_plugin lintel_plugin_v1 = {
    /* The ABI fields by hand: LINTEL_PLUGIN_INIT would set the right ones. */
    .struct_size = 8,
    .abi_major = LINTEL_ABI_MAJOR,
    .abi_minor = LINTEL_ABI_MINOR,
    .name = "tp-small-struct",
    .version = "1.0.0",
};
