/* The CUnit runner every plugin unit test needs: one place instead of one copy per test. */
#include <CUnit/Basic.h>

#include "lintel/testkit.h"

int lk_test_run(struct CU_SuiteInfo *suites)
{
    /* A test that registered suites of its own first keeps its registry. */
    if (!CU_get_registry() && CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    if (CU_register_suites(suites) != CUE_SUCCESS) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed() +
                      CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
