# End-to-end tests: real processes, TAP output.
E2E_TESTS = tests/e2e/cli.sh
# molt-pack channel: the signed release channel's tool (issue 17).
E2E_TESTS += tests/e2e/pack_channel.sh
# molt-pack keyring: the release keyring's tool (issue 17).
E2E_TESTS += tests/e2e/pack_keyring.sh
TESTS += $(E2E_TESTS)
EXTRA_DIST += $(E2E_TESTS) tests/e2e/lib/tap.sh

# Self-upgrade end to end (the agent, the installer, packages and the control plane).
UPGRADE_TESTS = tests/e2e/upgrade_basic.sh tests/e2e/upgrade_health.sh tests/e2e/upgrade_hop.sh tests/e2e/upgrade_faults.sh tests/e2e/upgrade_crash.sh tests/e2e/upgrade_local.sh tests/e2e/upgrade_mirror.sh
# Download rate caps and start-up jitter (issue 18).
UPGRADE_TESTS += tests/e2e/upgrade_pacing.sh
# The watch window after a commit (issue 19).
UPGRADE_TESTS += tests/e2e/upgrade_watch.sh
UPGRADE_TESTS += tests/e2e/upgrade_worker.sh
# Mirror lists (issue 18): downloadUrls tried in order, resume across them, servedBy.
UPGRADE_TESTS += tests/e2e/upgrade_mirrors.sh
EXTRA_DIST += tests/e2e/lib/mirror_stub.py
# A download through the proxy of https_proxy, by the worker's brokered connections (issue 20).
UPGRADE_TESTS += tests/e2e/upgrade_proxy.sh
EXTRA_DIST += tests/e2e/lib/connect_proxy.py
# Switch windows (issue 19).
UPGRADE_TESTS += tests/e2e/upgrade_window.sh
# Delta upgrades (issue 18): a good delta, a corrupted one that falls back to the full package.
UPGRADE_TESTS += tests/e2e/upgrade_delta.sh
# The signed release channel against a malicious control plane (issue 17).
UPGRADE_TESTS += tests/e2e/upgrade_channel.sh
# Release keys rotated and revoked by a root-signed keyring (issue 17).
UPGRADE_TESTS += tests/e2e/upgrade_keyring.sh
TESTS += $(UPGRADE_TESTS)
EXTRA_DIST += $(UPGRADE_TESTS) tests/e2e/lib/upgrade.sh
# The agent configuration of the upgrade tests, the demo and the benchmarks.
EXTRA_DIST += tests/e2e/lib/agent_conf.sh
# The one polling helper (wait_for) of the e2e tests and the benchmarks.
EXTRA_DIST += tests/e2e/lib/wait.sh

# The releases and extra version builds the upgrade tests make, cached between runs.
e2e-fixture-clean:
	-rm -rf tests/e2e/fixture tests/e2e/fixture.lock tests/e2e/fixture-aarch64 tests/e2e/fixture-aarch64.lock
clean-local: e2e-fixture-clean
.PHONY: e2e-fixture-clean
include demo/demo.mk

# make check-arm64: the aarch64 cross build under qemu (tests/e2e/arm64.sh; not in make check).
check-arm64: all
	$(MAKE) $(AM_MAKEFLAGS) check TESTS=tests/e2e/arm64.sh
.PHONY: check-arm64
EXTRA_DIST += tests/e2e/arm64.sh

# The system tier (make check-system, issue 15): the .deb in a booted Debian 12 container
# (systemd-nspawn) under the real unit and journal. Needs root; not part of make check.
SYSTEM_TESTS = tests/e2e/system_systemd.sh
EXTRA_DIST += $(SYSTEM_TESTS) tests/e2e/lib/system.sh tests/e2e/lib/system_rootfs.sh
check-system: all
	$(MAKE) $(AM_MAKEFLAGS) check TESTS='$(SYSTEM_TESTS)'
.PHONY: check-system
