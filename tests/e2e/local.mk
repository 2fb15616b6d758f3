# End-to-end tests: real processes, TAP output.
E2E_TESTS = tests/e2e/cli.sh
TESTS += $(E2E_TESTS)
EXTRA_DIST += $(E2E_TESTS) tests/e2e/tap.sh

# Self-upgrade end to end (the agent, the installer, packages and the control plane).
UPGRADE_TESTS = tests/e2e/upgrade_basic.sh tests/e2e/upgrade_hop.sh tests/e2e/upgrade_faults.sh tests/e2e/upgrade_crash.sh tests/e2e/upgrade_local.sh
TESTS += $(UPGRADE_TESTS)
EXTRA_DIST += $(UPGRADE_TESTS) tests/e2e/upgrade_lib.sh
include demo/demo.mk
