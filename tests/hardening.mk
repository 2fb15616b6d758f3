# hardening.mk: the fault matrix (tests/e2e/hard_*.sh, part of make check),
# and `make soak SOAK_MINUTES=N` and `make lint` (neither in make check). The
# regression tests of what fuzzing and the fault matrix found live in the unit
# tests of the modules they test.

HARDENING_E2E_TESTS = tests/e2e/hard_disk.sh tests/e2e/hard_net.sh tests/e2e/hard_state.sh \
	tests/e2e/hard_crash.sh tests/e2e/hard_redirect.sh
TESTS += $(HARDENING_E2E_TESTS)
EXTRA_DIST += $(HARDENING_E2E_TESTS) tests/e2e/lib/hard.sh tests/e2e/lib/hard_stub.py
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

# make lint: no circle of includes or calls within agent/ or lib/
# (tests/depcycles.py), cppcheck, clang-tidy (.clang-tidy) and scan-build, no
# findings allowed (tests/lint.sh; exclusions justified where configured).
lint:
	$(SHELL) $(top_srcdir)/tests/lint.sh --builddir $(abs_top_builddir)
.PHONY: lint
EXTRA_DIST += tests/lint.sh tests/depcycles.py tests/cppcheck.supp .clang-tidy

# make valgrind: every unit test under valgrind's memcheck; any error or
# definite/indirect leak fails (logs in tests/unit/<test>.valgrind.log, the
# end of each failing one repeated last, so a CI log's tail shows them).
# test_sandbox is left out: valgrind (and qemu-user, which runs this list for
# make check-arm64) executes the program's syscalls itself, so a seccomp filter
# or a Landlock ruleset would bind the emulator, not the program (valgrind
# refuses the filter's rules and knows no landlock_* syscall; under qemu an
# exec is emulated and never reaches the filter). The test would only show the
# emulator's limits; it runs natively in make check and in the sanitizer build.
VALGRIND_UNIT_TESTS = $(filter-out tests/unit/test_sandbox,$(UNIT_TESTS) $(PACKAGE_TESTS) \
	$(AGENT_UNIT_TESTS) $(INSTALLER_UNIT_TESTS))
VALGRIND_FLAGS = -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
	--track-fds=no --trace-children=no
valgrind: $(VALGRIND_UNIT_TESTS)
	@failed=; for t in $(VALGRIND_UNIT_TESTS); do \
	  $(AM_TESTS_ENVIRONMENT) valgrind $(VALGRIND_FLAGS) ./$$t >$$t.valgrind.log 2>&1; rc=$$?; \
	  if [ $$rc -eq 0 ]; then echo "valgrind: $$t: clean"; \
	  else echo "valgrind: $$t: FAILED (exit $$rc, see $$t.valgrind.log)"; failed="$$failed $$t"; fi; \
	done; \
	for t in $$failed; do echo "=== $$t.valgrind.log ends with:"; tail -n 40 $$t.valgrind.log; done; \
	test -z "$$failed"
.PHONY: valgrind
