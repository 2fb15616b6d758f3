# channel.mk: tests of the signed release channel and keyring (lib/channel*, lib/sigset*,
# lib/keyring*).
CHANNEL_TESTS = tests/unit/test_channel tests/unit/test_keyring
check_PROGRAMS += $(CHANNEL_TESTS)
TESTS += $(CHANNEL_TESTS)
tests_unit_test_channel_SOURCES = tests/unit/test_channel.c $(PACKAGE_TEST_SOURCES)
tests_unit_test_channel_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_channel_LDADD = $(UNIT_LDADD)

tests_unit_test_keyring_SOURCES = tests/unit/test_keyring.c $(PACKAGE_TEST_SOURCES)
tests_unit_test_keyring_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_keyring_LDADD = $(UNIT_LDADD)

# The channel and keyring parsers' libFuzzer harnesses (listed in PACKAGE_FUZZERS, tests/unit/package.mk).
EXTRA_DIST += tests/fuzz/fuzz_channel.c tests/fuzz/fuzz_keyring.c
if ENABLE_FUZZING
tests_fuzz_fuzz_channel_SOURCES = tests/fuzz/fuzz_channel.c
tests_fuzz_fuzz_channel_CFLAGS = $(PACKAGE_FUZZ_COMPILE)
tests_fuzz_fuzz_channel_LDFLAGS = $(PACKAGE_FUZZ_LINK)
tests_fuzz_fuzz_channel_LDADD = $(MOLT_LIBS)
tests_fuzz_fuzz_keyring_SOURCES = tests/fuzz/fuzz_keyring.c
tests_fuzz_fuzz_keyring_CFLAGS = $(PACKAGE_FUZZ_COMPILE)
tests_fuzz_fuzz_keyring_LDFLAGS = $(PACKAGE_FUZZ_LINK)
tests_fuzz_fuzz_keyring_LDADD = $(MOLT_LIBS)
endif
