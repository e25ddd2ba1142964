/* Passes every loader check, but its create always reports a config error: the plugin host must
 * refuse the configuration and keep the running one. */
#include <lintel/plugin.h>

static int create(const struct lintel_host_api *host, lintel_instance *self,
                  const lintel_cfg *config, lintel_cfg_error *err, void **instance)
{
    host->cfg_error(err, NULL, "this plugin always fails: %s", "as asked");
    return -1;
}

LINTEL_PLUGIN_EXPORT const struct lintel_plugin lintel_plugin_v1 = {
    LINTEL_PLUGIN_INIT,
    .name = "tp-failing-create",
    .version = "1.0.0",
    .create = create,
};
