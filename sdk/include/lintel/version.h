/* lintel's plugin ABI version. The full ABI (plugin.h) comes with the plugin platform; the
 * version is fixed here so `lintel -V` and plugins agree on one source. */
#ifndef LINTEL_SDK_VERSION_H
#define LINTEL_SDK_VERSION_H

#define LINTEL_ABI_MAJOR 1
#define LINTEL_ABI_MINOR 1

#endif
