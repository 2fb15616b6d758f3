# installer.mk: the journal's unit tests and molt-installer's end-to-end tests.
INSTALLER_UNIT_TESTS = tests/unit/test_journal
check_PROGRAMS += $(INSTALLER_UNIT_TESTS)
TESTS += $(INSTALLER_UNIT_TESTS)
tests_unit_test_journal_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_journal_LDADD = $(UNIT_LDADD)

INSTALLER_E2E_TESTS = \
	tests/e2e/installer_switch.sh \
	tests/e2e/installer_trial.sh \
	tests/e2e/installer_crash.sh \
	tests/e2e/installer_install.sh \
	tests/e2e/installer_cli.sh
TESTS += $(INSTALLER_E2E_TESTS)
EXTRA_DIST += $(INSTALLER_E2E_TESTS) tests/e2e/lib/installer.sh
