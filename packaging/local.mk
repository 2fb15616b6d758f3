# molt-pack: build, sign and verify build packages; release scripts.
bin_PROGRAMS += packaging/molt-pack
packaging_molt_pack_CFLAGS = $(AM_CFLAGS) $(MOLT_DEP_CFLAGS)
packaging_molt_pack_SOURCES = packaging/molt-pack.c packaging/pack_cli.c packaging/pack_cli.h \
	packaging/molt-pack-channel.c \
	packaging/molt-pack-channel.h packaging/molt-pack-keyring.c packaging/molt-pack-keyring.h
packaging_molt_pack_LDADD = $(MOLT_LIBS)
EXTRA_DIST += packaging/mkrelease.sh tests/e2e/build-version.sh

# make packages: a signed package of this build, for the demo and manual tests.
# The signing key is made in the build dir on first use (never in the sources,
# never committed); agents trust it by copying $(PACKAGES_KEYS)/*.pub.
PACKAGES_DIR = $(abs_top_builddir)/packages
PACKAGES_KEYS = $(abs_top_builddir)/packages-keys
packages: packaging/molt-pack agent/molt-agent installer/molt-installer
	@ls $(PACKAGES_KEYS)/*.key >/dev/null 2>&1 || \
	  packaging/molt-pack keygen --quiet --out $(PACKAGES_KEYS)
	$(SHELL) $(top_srcdir)/packaging/mkrelease.sh --build-dir $(abs_top_builddir) \
	  --version $(MOLT_VERSION) --keys $(PACKAGES_KEYS) --out $(PACKAGES_DIR)
.PHONY: packages

# Installing on servers and in VM images: deb, rpm, service files, install.sh, man pages.
include packaging/packaging.mk
