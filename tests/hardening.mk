# hardening.mk: regression tests of what fuzzing and the fault matrix found,
# the fault matrix itself (tests/e2e/hard_*.sh, part of make check), and
# `make soak SOAK_MINUTES=N` and `make lint` (neither in make check).
HARDENING_UNIT_TESTS = tests/unit/test_hardening
check_PROGRAMS += $(HARDENING_UNIT_TESTS)
TESTS += $(HARDENING_UNIT_TESTS)
tests_unit_test_hardening_CFLAGS = $(UNIT_CFLAGS) $(MHD_CFLAGS) -I$(top_srcdir)/agent
tests_unit_test_hardening_LDADD = tests/unit/libtestutil.a $(MOLT_AGENT_LIBS) $(CMOCKA_LIBS)

HARDENING_E2E_TESTS = tests/e2e/hard_disk.sh tests/e2e/hard_net.sh tests/e2e/hard_state.sh \
	tests/e2e/hard_crash.sh tests/e2e/hard_redirect.sh
TESTS += $(HARDENING_E2E_TESTS)
EXTRA_DIST += $(HARDENING_E2E_TESTS) tests/e2e/hard_lib.sh tests/e2e/hard_stub.py
EXTRA_DIST += docs/security.md tests/e2e/hard_soak.sh

# make soak SOAK_MINUTES=N: tests/e2e/hard_soak.sh (an agent at a 100 ms
# heartbeat, random faults, repeated upgrades and rollbacks; fails on a stuck
# or lost task or on growing memory or descriptors). Not part of make check.
SOAK_MINUTES = 10
soak: all
	MOLT_TOP_SRCDIR='$(abs_top_srcdir)' MOLT_TOP_BUILDDIR='$(abs_top_builddir)' \
	MOLT_BUILD_VERSION='$(MOLT_VERSION)' PYTHON3='$(PYTHON3)' SOAK_MINUTES='$(SOAK_MINUTES)' \
	$(SHELL) $(top_srcdir)/tests/e2e/hard_soak.sh
.PHONY: soak
