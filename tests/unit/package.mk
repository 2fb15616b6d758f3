# package.mk: tests of build packages (lib/package*, lib/sign*, molt-pack).
PACKAGE_TESTS = tests/unit/test_package tests/unit/test_package_stage
check_PROGRAMS += $(PACKAGE_TESTS)
TESTS += $(PACKAGE_TESTS) tests/e2e/pack.sh
EXTRA_DIST += tests/e2e/pack.sh

PACKAGE_TEST_SOURCES = tests/unit/test_package_util.c tests/unit/test_package_util.h
tests_unit_test_package_SOURCES = tests/unit/test_package.c $(PACKAGE_TEST_SOURCES)
tests_unit_test_package_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_package_LDADD = $(UNIT_LDADD)
tests_unit_test_package_stage_SOURCES = tests/unit/test_package_stage.c $(PACKAGE_TEST_SOURCES)
tests_unit_test_package_stage_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_package_stage_LDADD = $(UNIT_LDADD)
