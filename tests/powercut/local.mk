# Power-cut tests: molt-powercutfs (a FUSE file system that loses what was not
# synced) and the tests that cut power under molt. `make check` runs the model
# test and a sample of the installer matrix; `make check-powercut` runs all of it.
EXTRA_DIST += tests/powercut/README.md tests/powercut/pcfs_lib.sh tests/powercut/pcfs.h
if HAVE_FUSE3
check_PROGRAMS += tests/powercut/molt-powercutfs
tests_powercut_molt_powercutfs_SOURCES = tests/powercut/pcfs_fuse.c tests/powercut/pcfs_state.c \
	tests/powercut/pcfs.h
tests_powercut_molt_powercutfs_CFLAGS = $(AM_CFLAGS) $(FUSE3_CFLAGS)
tests_powercut_molt_powercutfs_LDADD = $(FUSE3_LIBS)
else
EXTRA_DIST += tests/powercut/pcfs_fuse.c tests/powercut/pcfs_state.c
endif
POWERCUT_TESTS = tests/powercut/pcfs_model.sh tests/powercut/installer_powercut.sh \
	tests/powercut/install_powercut.sh \
	tests/powercut/upgrade_powercut.sh
TESTS += $(POWERCUT_TESTS)
EXTRA_DIST += $(POWERCUT_TESTS)

check-powercut:
	$(MAKE) $(AM_MAKEFLAGS) check TESTS='$(POWERCUT_TESTS)' MOLT_POWERCUT_FULL=1
.PHONY: check-powercut
