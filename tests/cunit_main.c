/*
 * cunit_main: the shared entry point of every unit suite. Each
 * tests/test_MODULE.c defines test_register(), which adds its suites; this
 * runs them and turns failures into the exit status meson reads.
 */
#include <stdio.h>
#include <stdlib.h>

#include <CUnit/Basic.h>

void test_register(void);

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return EXIT_FAILURE;
    test_register();
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (run == 0) {
        fprintf(stderr, "no test ran\n");
        return EXIT_FAILURE;
    }
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
