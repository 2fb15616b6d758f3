# demo/demo.mk: `make demo` (demo/demo.sh, molt's main job in one command) and its test.
# `make demo DEMO_ARGS=--keep` leaves the demo running; builds of other versions are cached
# in demo-cache/ (removed by make clean).
DEMO_ARGS =

demo: agent/molt-agent installer/molt-installer packaging/molt-pack
	@MOLT_TOP_SRCDIR='$(abs_top_srcdir)' MOLT_TOP_BUILDDIR='$(abs_top_builddir)' \
	  MOLT_BUILD_VERSION='$(MOLT_VERSION)' PYTHON3='$(PYTHON3)' \
	  bash '$(abs_top_srcdir)/demo/demo.sh' $(DEMO_ARGS)

demo-clean:
	-rm -rf demo-cache

clean-local: demo-clean
.PHONY: demo demo-clean

DEMO_TESTS = tests/demo/demo_test.sh
TESTS += $(DEMO_TESTS)
EXTRA_DIST += $(DEMO_TESTS) demo/demo.sh demo/demo.py
