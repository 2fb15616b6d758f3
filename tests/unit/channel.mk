# channel.mk: tests of the signed release channel (lib/channel*, lib/sigset*).
CHANNEL_TESTS = tests/unit/test_channel
check_PROGRAMS += $(CHANNEL_TESTS)
TESTS += $(CHANNEL_TESTS)
tests_unit_test_channel_SOURCES = tests/unit/test_channel.c $(PACKAGE_TEST_SOURCES)
tests_unit_test_channel_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_channel_LDADD = $(UNIT_LDADD)
