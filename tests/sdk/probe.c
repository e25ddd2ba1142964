/* The probe plugin and the helpers the test kit's tests share (probe.h). */
#include "probe.h"

#include <string.h>

const struct lintel_host_api *host;
lintel_instance *probe_self;
int (*probe_on_create)(const lintel_cfg *config, lintel_cfg_error *err);
enum lintel_result (*handler)(lintel_req *r);
int destroyed, worker_inits, worker_finis;

static int probe_create(const struct lintel_host_api *h, lintel_instance *self,
                        const lintel_cfg *config, lintel_cfg_error *err, void **instance)
{
    host = h;
    probe_self = self;
    *instance = &probe_self;
    return probe_on_create ? probe_on_create(config, err) : 0;
}

static void probe_destroy(void *instance)
{
    CU_ASSERT_PTR_EQUAL(instance, &probe_self);
    destroyed++;
}

static int probe_worker_init(void *instance, unsigned worker)
{
    CU_ASSERT_EQUAL(worker, 0);
    worker_inits++;
    return 0;
}

static void probe_worker_fini(void *instance, unsigned worker)
{
    worker_finis++;
}

int reopens;

static void probe_reopen(void *instance)
{
    reopens++;
}

static enum lintel_result probe_handler(lintel_req *r, void *instance)
{
    return handler(r);
}

const struct lintel_plugin probe = {
    LINTEL_PLUGIN_INIT,
    .name = "probe",
    .version = "0.1.0",
    .create = probe_create,
    .destroy = probe_destroy,
    .worker_init = probe_worker_init,
    .worker_fini = probe_worker_fini,
    .rewrite = probe_handler,
    .access = probe_handler,
    .balance = probe_handler,
    .response_headers = probe_handler,
    .response_body = probe_handler,
    .log = probe_handler,
    .reopen = probe_reopen,
};

struct lk_plugin *plugin;

int probe_suite_init(void)
{
    char err[128];
    plugin = lk_plugin_from_descriptor(&probe, err, sizeof(err));
    return plugin ? 0 : -1;
}

int probe_suite_clean(void)
{
    lk_plugin_free(plugin);
    return 0;
}

struct lk_instance *instance(const char *yaml)
{
    char err[256];
    probe_on_create = NULL;
    struct lk_instance *in = lk_instance_new(plugin, yaml, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL(in);
    return in;
}

int str_is(struct lintel_str s, const char *want)
{
    if (!want)
        return s.ptr == NULL;
    return s.ptr && s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

int cleanups;

void count_cleanup(void *data)
{
    CU_ASSERT_STRING_EQUAL(data, "ctx");
    cleanups++;
}

int probe_run(CU_SuiteInfo *suites)
{
    return lk_test_run(suites);
}
