/* Tests example-header through the test kit, loading the built .so as lintel would. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

#include <lintel/testkit.h>

static struct lk_plugin *plugin;

static int suite_init(void)
{
    plugin = lk_plugin_load_or_report(EXAMPLE_HEADER_SO);
    return plugin ? 0 : -1;
}

static int suite_clean(void)
{
    lk_plugin_free(plugin);
    return 0;
}

static void test_sets_header_on_upstream_response(void)
{
    struct lk_instance *in = lk_instance_or_report(plugin, "{ name: X-Example, value: hello }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = lk_req_new("GET", "/users/42");
    lk_req_set_response(r, 404, "{\"error\":\"no such user\"}");
    lk_req_set_response_header(r, "Content-Type", "application/json");

    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT_STRING_EQUAL(lk_resp_header(r, "x-example"), "hello");
    CU_ASSERT_EQUAL(lk_resp_status(r), 404); /* everything else untouched */
    CU_ASSERT_STRING_EQUAL(lk_resp_header(r, "Content-Type"), "application/json");
    CU_ASSERT_STRING_EQUAL(lk_resp_body(r, NULL), "{\"error\":\"no such user\"}");
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_req_free(r);
    lk_instance_free(in);
}

static void test_replaces_upstream_header(void)
{
    struct lk_instance *in = lk_instance_or_report(plugin, "name: X-Example\nvalue: \"a, b\"\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = lk_req_new("GET", "/");
    lk_req_set_response(r, 200, "ok");
    lk_req_set_response_header(r, "X-Example", "from upstream");

    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT_STRING_EQUAL(lk_resp_header(r, "X-Example"), "a, b");
    lk_req_free(r);
    lk_instance_free(in);
}

static void test_other_phases_untouched(void)
{
    struct lk_instance *in = lk_instance_or_report(plugin, "{ name: X-Example, value: hello }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = lk_req_new("POST", "/items?id=7");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_REWRITE), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_resp_status(r), 0);
    CU_ASSERT_PTR_NULL(lk_resp_header(r, "X-Example"));
    CU_ASSERT_PTR_NULL(lk_req_header(r, "X-Example"));
    lk_req_free(r);
    lk_instance_free(in);
}

static void test_config_errors(void)
{
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, NULL), "1:1: required");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "[X-Example, hello]"), "1:1: must be a map");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ value: hello }"), "1:1: name: required");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ name: X-Example }"), "1:1: value: required");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "name: [X-Example]\nvalue: hello\n"),
                           "1:7: name: must be a string");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "name: X-Example\nvalue: { a: 1 }\n"),
                           "2:8: value: must be a string");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ name: \"X Example\", value: hello }"),
                           "1:9: name: must be a header name");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ name: X-Example, value: \"a\\r\\nb\" }"),
                           "1:27: value: must not contain control characters");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ name: X-Example, value: hello, valeu: 1 }"),
                           "1:41: valeu: unknown key");
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

static CU_TestInfo example_header_tests[] = {
    {"sets the header on the upstream response", test_sets_header_on_upstream_response},
    {"replaces the upstream's header of that name", test_replaces_upstream_header},
    {"leaves the other phases alone", test_other_phases_untouched},
    {"config errors point at the offending node", test_config_errors},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"example-header", suite_init, suite_clean, NULL, NULL, example_header_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return lk_test_run(suites);
}
