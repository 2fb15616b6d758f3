# packaging.mk: installing molt on servers and in VM images (issue 8): the
# .deb (make deb) and .rpm (make rpm), the systemd unit and SysV script,
# installer/install.sh, the man pages and the tests of all of them.
#
# make deb|rpm MOLT_SIGNING_KEY=FILE [MOLT_TRUSTED_KEYS=DIR]: the private key
# (molt-pack keygen) signs the build embedded in the package, whose public half
# the package trusts; MOLT_TRUSTED_KEYS adds more public keys (key rotation).
# The packages land in $(MOLT_PKG_OUT_DIR).
dist_man_MANS = packaging/man/molt-agent.8 packaging/man/molt-installer.8 \
	packaging/man/molt-pack.1 packaging/man/molt.conf.5

MOLT_PKG_FILES = packaging/pkgtree.sh packaging/pkgargs.sh packaging/molt.conf \
	packaging/systemd/molt-agent.service packaging/sysv/molt-agent.init \
	packaging/deb/mkdeb.sh packaging/deb/control.in packaging/deb/copyright \
	packaging/deb/preinst packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm \
	packaging/rpm/mkrpm.sh packaging/rpm/molt.spec.in installer/install.sh
EXTRA_DIST += $(MOLT_PKG_FILES)

MOLT_PKG_OUT_DIR = $(abs_top_builddir)/pkg
MOLT_PKG_INPUTS = agent/molt-agent installer/molt-installer packaging/molt-pack
pkg__need_key = @test -n "$(MOLT_SIGNING_KEY)" || { \
	echo "make $@: no signing key: run 'make $@ MOLT_SIGNING_KEY=FILE' with a private key" \
	     "made by 'molt-pack keygen --out DIR' (DIR/<keyid>.key; keep it off the hosts)" >&2; exit 1; }; \
	test -f "$(MOLT_SIGNING_KEY)" || { echo "make $@: $(MOLT_SIGNING_KEY): no such file" >&2; exit 1; }
pkg__args = --build-dir $(abs_top_builddir) --srcdir $(abs_top_srcdir) \
	--key "$(MOLT_SIGNING_KEY)" --out-dir $(MOLT_PKG_OUT_DIR) \
	$(if $(MOLT_TRUSTED_KEYS),--trusted "$(MOLT_TRUSTED_KEYS)")

deb: $(MOLT_PKG_INPUTS)
	$(pkg__need_key)
	bash $(top_srcdir)/packaging/deb/mkdeb.sh $(pkg__args)
rpm: $(MOLT_PKG_INPUTS)
	$(pkg__need_key)
	bash $(top_srcdir)/packaging/rpm/mkrpm.sh $(pkg__args)
.PHONY: deb rpm

clean-local: pkg-clean-local
pkg-clean-local:
	rm -rf $(MOLT_PKG_OUT_DIR)
.PHONY: pkg-clean-local

# Tests: the unit and the init script; install.sh into a prefix with a real
# agent and control plane (registration, image-prep, clones, coexistence);
# the .deb (lintian, dpkg --root) and the .rpm.
MOLT_PKG_TESTS = tests/e2e/pkg_service.sh tests/e2e/pkg_install.sh tests/e2e/pkg_deb.sh \
	tests/e2e/pkg_rpm.sh
TESTS += $(MOLT_PKG_TESTS)
EXTRA_DIST += $(MOLT_PKG_TESTS) tests/e2e/lib/pkg.sh
