/* The test kit's helpers for plugin tests (lk_plugin_load_or_report, lk_instance_or_report,
 * lk_config_error, lk_str_eq, lk_str_contains) and the SDK's config readers (lintel/config.h),
 * through a plugin linked in whose create uses them. */
#include <CUnit/Basic.h>
#include <string.h>

#include <lintel/config.h>
#include <lintel/testkit.h>

static int destroyed;

/* { name, limits: { max }, any: {...} }: the config is required and a map of these keys; limits
 * a map of max only; any a map of any keys. */
static int create(const struct lintel_host_api *h, lintel_instance *self, const lintel_cfg *config,
                  lintel_cfg_error *err, void **instance)
{
    static const char *const top[] = {"name", "limits", "any", NULL};
    static const char *const limits_keys[] = {"max", NULL};
    (void)self;
    if (lintel_cfg_require_config(h, config, top, err) < 0)
        return -1;
    const lintel_cfg *limits = h->cfg_get(config, "limits"), *any = h->cfg_get(config, "any");
    if (limits && lintel_cfg_require_map(h, limits, limits_keys, err) < 0)
        return -1;
    if (any && lintel_cfg_require_map(h, any, NULL, err) < 0)
        return -1;
    /* keys of a node that is no map: none to refuse */
    if (lintel_cfg_check_keys(h, h->cfg_get(config, "name"), limits_keys, err) != 0)
        return -1;
    *instance = &destroyed;
    return 0;
}

static void destroy(void *instance)
{
    (*(int *)instance)++;
}

static const struct lintel_plugin desc = {
    LINTEL_PLUGIN_INIT, .name = "cfgcheck", .version = "1.0.0",
    .create = create,   .destroy = destroy,
};

static struct lk_plugin *plugin;

static int suite_init(void)
{
    char err[256];
    plugin = lk_plugin_from_descriptor(&desc, err, sizeof(err));
    return plugin ? 0 : -1;
}

static int suite_clean(void)
{
    lk_plugin_free(plugin);
    return 0;
}

static void test_config_readers(void)
{
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, NULL), "1:1: required");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "[a, b]"), "1:1: must be a map");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ name: x, nmae: y }"),
                           "1:18: nmae: unknown key");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "name: x\nlimits: 5\n"),
                           "2:9: limits: must be a map");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "limits: { max: 1, min: 0 }"),
                           "1:24: limits.min: unknown key");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "any: [1]"), "1:6: any: must be a map");
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

static void test_config_error_of_a_good_config(void)
{
    destroyed = 0;
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ name: x, any: { whatever: 1 } }"),
                           "(created)");
    CU_ASSERT_EQUAL(destroyed, 1); /* created, then freed at once */
}

static void test_instance_or_report(void)
{
    struct lk_instance *in = lk_instance_or_report(plugin, "{ limits: { max: 3 } }");
    CU_ASSERT_PTR_NOT_NULL(in);
    lk_instance_free(in);
    CU_ASSERT_PTR_NULL(lk_instance_or_report(plugin, "{ nmae: y }"));
    CU_ASSERT_PTR_NULL(lk_instance_or_report(plugin, NULL));
    CU_ASSERT_PTR_NULL(lk_plugin_load_or_report("/nonexistent/x.so"));
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

static void test_str_checks(void)
{
    CU_ASSERT_EQUAL(lk_str_eq("a", "a"), 1);
    CU_ASSERT_EQUAL(lk_str_eq(NULL, NULL), 1);
    CU_ASSERT_EQUAL(lk_str_eq("a", "b"), 0);
    CU_ASSERT_EQUAL(lk_str_eq("a", "ab"), 0);
    CU_ASSERT_EQUAL(lk_str_eq(NULL, "a"), 0);
    CU_ASSERT_EQUAL(lk_str_eq("a", NULL), 0);
    CU_ASSERT_EQUAL(lk_str_contains("a, b, c", "b, c"), 1);
    CU_ASSERT_EQUAL(lk_str_contains("a, b", "c"), 0);
    CU_ASSERT_EQUAL(lk_str_contains(NULL, "c"), 0);
}

static CU_TestInfo tests[] = {
    {"config.h: required, must be a map, unknown key, where", test_config_readers},
    {"lk_config_error of a config that works: (created), freed",
     test_config_error_of_a_good_config},
    {"lk_instance_or_report and lk_plugin_load_or_report", test_instance_or_report},
    {"lk_str_eq and lk_str_contains", test_str_checks},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"testkit helpers", suite_init, suite_clean, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return lk_test_run(suites);
}
