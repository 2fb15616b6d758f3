# package.mk: tests of build packages (lib/package*, lib/sign*, molt-pack).
PACKAGE_TESTS = tests/unit/test_package tests/unit/test_package_stage tests/unit/test_delta
check_PROGRAMS += $(PACKAGE_TESTS)
TESTS += $(PACKAGE_TESTS) tests/e2e/pack.sh tests/e2e/pack_delta.sh
EXTRA_DIST += tests/e2e/pack.sh tests/e2e/pack_delta.sh

PACKAGE_TEST_SOURCES = tests/unit/test_package_util.c tests/unit/test_package_util.h
tests_unit_test_package_SOURCES = tests/unit/test_package.c $(PACKAGE_TEST_SOURCES)
tests_unit_test_package_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_package_LDADD = $(UNIT_LDADD)
tests_unit_test_package_stage_SOURCES = tests/unit/test_package_stage.c $(PACKAGE_TEST_SOURCES)
tests_unit_test_package_stage_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_package_stage_LDADD = $(UNIT_LDADD)
tests_unit_test_delta_SOURCES = tests/unit/test_delta.c $(PACKAGE_TEST_SOURCES)
tests_unit_test_delta_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_delta_LDADD = $(UNIT_LDADD)

# libFuzzer harnesses (configure --enable-fuzzing, CC=clang); run e.g.
#   tests/fuzz/fuzz_statement -max_total_time=600 $(top_srcdir)/tests/fuzz/corpus/statement
PACKAGE_FUZZERS = tests/fuzz/fuzz_statement tests/fuzz/fuzz_manifest tests/fuzz/fuzz_sig \
	tests/fuzz/fuzz_archive tests/fuzz/fuzz_channel tests/fuzz/fuzz_delta tests/fuzz/fuzz_keyring
PACKAGE_FUZZ_CORPORA = tests/fuzz/corpus/statement tests/fuzz/corpus/manifest \
	tests/fuzz/corpus/sig tests/fuzz/corpus/archive tests/fuzz/corpus/channel \
	tests/fuzz/corpus/delta tests/fuzz/corpus/keyring
EXTRA_DIST += $(PACKAGE_FUZZ_CORPORA) tests/fuzz/fuzz_statement.c tests/fuzz/fuzz_manifest.c \
	tests/fuzz/fuzz_sig.c tests/fuzz/fuzz_archive.c tests/fuzz/fuzz_delta.c
if ENABLE_FUZZING
noinst_PROGRAMS += $(PACKAGE_FUZZERS)
PACKAGE_FUZZ_COMPILE = $(AM_CFLAGS) $(MOLT_DEP_CFLAGS)
PACKAGE_FUZZ_LINK = $(AM_LDFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_statement_SOURCES = tests/fuzz/fuzz_statement.c
tests_fuzz_fuzz_statement_CFLAGS = $(PACKAGE_FUZZ_COMPILE)
tests_fuzz_fuzz_statement_LDFLAGS = $(PACKAGE_FUZZ_LINK)
tests_fuzz_fuzz_statement_LDADD = $(MOLT_LIBS)
tests_fuzz_fuzz_manifest_SOURCES = tests/fuzz/fuzz_manifest.c
tests_fuzz_fuzz_manifest_CFLAGS = $(PACKAGE_FUZZ_COMPILE)
tests_fuzz_fuzz_manifest_LDFLAGS = $(PACKAGE_FUZZ_LINK)
tests_fuzz_fuzz_manifest_LDADD = $(MOLT_LIBS)
tests_fuzz_fuzz_sig_SOURCES = tests/fuzz/fuzz_sig.c
tests_fuzz_fuzz_sig_CFLAGS = $(PACKAGE_FUZZ_COMPILE)
tests_fuzz_fuzz_sig_LDFLAGS = $(PACKAGE_FUZZ_LINK)
tests_fuzz_fuzz_sig_LDADD = $(MOLT_LIBS)
tests_fuzz_fuzz_archive_SOURCES = tests/fuzz/fuzz_archive.c
tests_fuzz_fuzz_archive_CFLAGS = $(PACKAGE_FUZZ_COMPILE)
tests_fuzz_fuzz_archive_LDFLAGS = $(PACKAGE_FUZZ_LINK)
tests_fuzz_fuzz_archive_LDADD = $(MOLT_LIBS)
tests_fuzz_fuzz_delta_SOURCES = tests/fuzz/fuzz_delta.c tests/fuzz/fuzz_util.c tests/fuzz/fuzz_util.h
tests_fuzz_fuzz_delta_CFLAGS = $(PACKAGE_FUZZ_COMPILE)
tests_fuzz_fuzz_delta_LDFLAGS = $(PACKAGE_FUZZ_LINK)
tests_fuzz_fuzz_delta_LDADD = $(MOLT_LIBS)
endif
include tests/fuzz/fuzz.mk
