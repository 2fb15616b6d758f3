# Reference control plane (tests/controlplane/): a Python 3 standard-library server for the
# collector protocol and the management API, its unittest suites (TAP), and the e2e helper
# library tests/e2e/lib/cp.sh with the seed documents' curl sessions. See tests/controlplane/README.md.
CP_PY_TESTS = \
	tests/controlplane/test_units.py \
	tests/controlplane/test_management.py \
	tests/controlplane/test_protocol.py \
	tests/controlplane/test_downloads.py \
	tests/controlplane/test_faults.py \
	tests/controlplane/test_lifecycle.py
CP_MODULES = \
	tests/controlplane/server.py \
	tests/controlplane/cp_http.py \
	tests/controlplane/cp_management.py \
	tests/controlplane/cp_protocol.py \
	tests/controlplane/cp_downloads.py \
	tests/controlplane/cp_admin.py \
	tests/controlplane/cp_common.py \
	tests/controlplane/cp_input.py \
	tests/controlplane/cp_builds.py \
	tests/controlplane/cp_channel.py \
	tests/controlplane/cp_faults.py \
	tests/controlplane/cp_store.py \
	tests/controlplane/cp_collectors.py \
	tests/controlplane/cp_tasks.py \
	tests/controlplane/cp_version.py \
	tests/controlplane/cptest.py \
	tests/controlplane/taprunner.py \
	tests/controlplane/README.md \
	tests/controlplane/serve.sh \
	tests/controlplane/mkcert.sh
CP_SH_TESTS = tests/e2e/cp_curl.sh tests/e2e/cp_functions.sh tests/e2e/cp_serve.sh
TESTS += $(CP_PY_TESTS) $(CP_SH_TESTS)
EXTRA_DIST += $(CP_PY_TESTS) $(CP_SH_TESTS) $(CP_MODULES) tests/e2e/lib/cp.sh
