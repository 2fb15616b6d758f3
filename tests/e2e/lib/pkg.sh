# shellcheck shell=bash
# lib/pkg.sh: shared by the packaging tests (pkg_*.sh): the signed releases and
# build dirs of lib/upgrade.sh (keys made at test time, several versions of
# this tree), a work dir, and TAP skips for tools that cannot be had.
. "$(dirname "${BASH_SOURCE[0]}")/upgrade.sh"

# The builds packed here are test builds, with fault points (packaging/pkgtree.sh
# refuses those otherwise); pkg_deb.sh shows a release build's package has none.
export MOLT_PKG_ALLOW_FAULT_POINTS=1

PKG_WORK=
pkg_cleanup() {
    if [ -n "${MOLT_TEST_KEEP:-}" ]; then echo "# kept $PKG_WORK"; return; fi
    [ -z "$PKG_WORK" ] || rm -rf "$PKG_WORK"
}

# pkg_work NAME: a work dir the service user of a dpkg --root install can
# traverse (mktemp makes it 0700).
pkg_work() {
    PKG_WORK=$(mktemp -d "${TMPDIR:-/tmp}/molt-$1-XXXXXX")
    chmod 0755 "$PKG_WORK"
    trap pkg_cleanup EXIT
}

# pkg_skip_all REASON: the whole test is skipped (only for tools that cannot be installed).
pkg_skip_all() {
    echo "1..0 # SKIP $1"
    exit 0
}

pkg_signing_key() { ls "$FIX/keys/"*.key | head -n 1; }

# pkg_build_dir VERSION: this tree built as VERSION (shared with the upgrade tests).
pkg_build_dir() { fix__build "$1"; }

# make in a build dir, outside the jobserver of the make check running us.
pkg_make() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make "$@"; }

# pkg_deb_of BUILD_DIR OUT_DIR: make deb there (under build-version.sh's lock if it has
# one) signed with $KEY, print the .deb; make's errors are in $WORK/make.err.
pkg_deb_of() {
    local lock=/dev/null
    [ ! -e "$1/.build-version.lock" ] || lock=$1/.build-version.lock
    flock "$lock" env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$1" -s deb MOLT_SIGNING_KEY="$KEY" MOLT_PKG_OUT_DIR="$2" 2>"$WORK/make.err" |
        tail -n 1
}

# pkg_start NAME PLAN: the TAP plan, a work dir ($WORK, see pkg_work) and the fixture's
# releases, keys and builds; KEY is the private key they are signed with.
# shellcheck disable=SC2034 # WORK and KEY are for the tests
pkg_start() {
    tap_plan "$2"
    pkg_work "$1"
    WORK=$PKG_WORK
    fixture_prepare || { echo "Bail out! fixture"; exit 1; }
    KEY=$(pkg_signing_key)
}

# pkg_needs_key TARGET: two tests: `make TARGET` without a signing key fails, with a clear message.
pkg_needs_key() {
    local out
    out=$(pkg_make -C "$MOLT_TOP_BUILDDIR" -s "$1" MOLT_SIGNING_KEY= 2>&1)
    ok $((! $?)) "make $1 without MOLT_SIGNING_KEY fails"
    like "$out" "no signing key: run 'make $1 MOLT_SIGNING_KEY=FILE'" "with a clear message"
}
