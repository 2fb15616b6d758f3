# End-to-end tests: real processes, TAP output.
E2E_TESTS = tests/e2e/cli.sh
TESTS += $(E2E_TESTS)
EXTRA_DIST += $(E2E_TESTS) tests/e2e/tap.sh
