# cmocka unit tests; each program prints TAP (CMOCKA_MESSAGE_OUTPUT=TAP).
UNIT_CFLAGS = $(AM_CFLAGS) $(MOLT_DEP_CFLAGS) $(CMOCKA_CFLAGS)
UNIT_LDADD = tests/unit/libtestutil.a $(MOLT_LIBS) $(CMOCKA_LIBS)
check_LIBRARIES = tests/unit/libtestutil.a
tests_unit_libtestutil_a_CFLAGS = $(UNIT_CFLAGS)
tests_unit_libtestutil_a_SOURCES = tests/unit/testutil.c tests/unit/testutil.h

UNIT_TESTS = tests/unit/test_err tests/unit/test_text tests/unit/test_version tests/unit/test_log tests/unit/test_conf tests/unit/test_fs tests/unit/test_host \
	tests/unit/test_json tests/unit/test_base64 tests/unit/test_proto tests/unit/test_window \
	tests/unit/test_notify tests/unit/test_sandbox
check_PROGRAMS += $(UNIT_TESTS)
TESTS += $(UNIT_TESTS)
# cmocka 1.1.5's skipped cases as TAP skips, not failures (the script says why).
LOG_COMPILER = $(SHELL) $(top_srcdir)/tests/unit/cmocka-tap.sh
EXTRA_DIST += tests/unit/cmocka-tap.sh

tests_unit_test_err_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_err_LDADD = $(UNIT_LDADD)
tests_unit_test_text_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_text_LDADD = $(UNIT_LDADD)
tests_unit_test_version_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_version_LDADD = $(UNIT_LDADD)
tests_unit_test_log_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_log_LDADD = $(UNIT_LDADD)
tests_unit_test_conf_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_conf_LDADD = $(UNIT_LDADD)
tests_unit_test_fs_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_fs_LDADD = $(UNIT_LDADD)
tests_unit_test_host_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_host_LDADD = $(UNIT_LDADD)
tests_unit_test_json_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_json_LDADD = $(UNIT_LDADD)
tests_unit_test_base64_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_base64_LDADD = $(UNIT_LDADD)
tests_unit_test_proto_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_proto_LDADD = $(UNIT_LDADD)
tests_unit_test_window_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_window_LDADD = $(UNIT_LDADD)
tests_unit_test_notify_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_notify_LDADD = $(UNIT_LDADD)
tests_unit_test_sandbox_SOURCES = tests/unit/test_sandbox.c tests/unit/test_package_util.c \
	tests/unit/test_package_util.h
tests_unit_test_sandbox_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_sandbox_LDADD = $(UNIT_LDADD) $(MOLT_SANDBOX_LIBS)

include tests/unit/package.mk
include tests/unit/channel.mk
include tests/unit/agent.mk
include tests/unit/installer.mk
