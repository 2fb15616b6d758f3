#!/usr/bin/env bash
# build-version.sh VERSION OUTDIR: builds the programs of this source tree as
# VERSION in OUTDIR (configured with the current build's configure arguments
# when known, plus --with-build-version=VERSION), and prints OUTDIR; the
# programs are OUTDIR/agent/molt-agent, OUTDIR/installer/molt-installer and
# OUTDIR/packaging/molt-pack. An OUTDIR already configured with the same
# arguments (.build-version.args, written once configure succeeded) is reused
# (make rebuilds what changed, a copy of the sources refreshed first); callers
# sharing an OUTDIR wait for each other.
# Sources: MOLT_TOP_SRCDIR (default: two levels above this script); the
# current build: MOLT_TOP_BUILDDIR (optional).
# Normally OUTDIR is an out-of-tree (VPATH) build of the sources. When the
# sources are configured in place (./autogen.sh && make check in a clone), a
# VPATH build is impossible, so the sources are copied into OUTDIR and the
# copy made a clean tree (make distclean: none of the in-place build's
# config.h, config.status, Makefiles or objects is left) before it is
# configured. MOLT_BUILD_HOST (e.g. aarch64-linux-gnu) cross-builds for that
# host instead (configure --host=MOLT_BUILD_HOST); a configure that found no
# MOLT_BUILD_HOST- compiler or pkg-config (and so would build for this host) fails.
# MOLT_BUILD_CONFIGURE_ARG: one more configure argument (e.g. --disable-fault-points).
set -euo pipefail

die() { echo "build-version.sh: $*" >&2; exit 1; }

[ $# -eq 2 ] || { echo "Usage: build-version.sh VERSION OUTDIR" >&2; exit 2; }
VERSION=$1
OUTDIR=$2
case "$VERSION" in
''|-*|*[!0-9A-Za-z.+_-]*) die "'$VERSION' is not a version" ;;
esac
SRC=${MOLT_TOP_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
[ -x "$SRC/configure" ] || die "$SRC/configure is missing (run autoreconf -fi there)"
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
LOG="$OUTDIR/build-version.log"

exec 9>"$OUTDIR/.build-version.lock"
flock 9

# Arguments a cross build does not take from the native one: its compiler,
# host and the instrumentation that needs the native runtimes.
cross_drops() {
    [ -n "${MOLT_BUILD_HOST:-}" ] || return 1
    case "$1" in
    --host=*|--build=*|host_alias=*|build_alias=*|CC=*|PKG_CONFIG*|--enable-sanitizers|--enable-coverage|--enable-fuzzing) return 0 ;;
    esac
    return 1
}
# Nor from the environment, where configure would take them before the --host ones.
[ -z "${MOLT_BUILD_HOST:-}" ] || unset CC CPP PKG_CONFIG PKG_CONFIG_PATH PKG_CONFIG_LIBDIR

# The configure arguments of the build running the tests, minus its version.
config_args=()
if [ -n "${MOLT_TOP_BUILDDIR:-}" ] && [ -x "$MOLT_TOP_BUILDDIR/config.status" ] &&
   [ "$(cd "$MOLT_TOP_BUILDDIR" && pwd)" != "$OUTDIR" ]; then
    eval "set -- $("$MOLT_TOP_BUILDDIR/config.status" --config)"
    for a in "$@"; do
        case "$a" in --with-build-version=*|--cache-file=*|--srcdir=*|-q|--quiet|--silent) ;;
        *) cross_drops "$a" || config_args+=("$a") ;;
        esac
    done
fi
[ -z "${MOLT_BUILD_HOST:-}" ] || config_args+=("--host=$MOLT_BUILD_HOST")
[ -z "${MOLT_BUILD_CONFIGURE_ARG:-}" ] || config_args+=("$MOLT_BUILD_CONFIGURE_ARG")

# Sub-makes must not join the jobserver of a make check that runs this script.
clean_make() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make "$@"; }

# What OUTDIR is configured with: reused only when it is all the same.
STAMP=$OUTDIR/.build-version.args
want=$(printf '%q ' "${config_args[@]}" "--with-build-version=$VERSION")
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
    rm -f "$STAMP"
    : >"$LOG"
    configure="$SRC/configure"
    if [ -f "$SRC/config.status" ] && [ "$(cd "$SRC" && pwd)" != "$OUTDIR" ]; then
        # Other OUTDIRs inside the sources carry the lock file and are left out, as are
        # the caches of the tests, demo and packages (the e2e fixtures' releases, the
        # system tier's Debian rootfs with its device nodes, which an unprivileged
        # extraction cannot make); make distclean below drops the rest of the build.
        # The suite writes logs into the tree while it is copied: a file that changed as tar
        # read it (tar's exit 1) is a test's output, not a source; only exit 2 is a failure.
        { tar -C "$SRC" --exclude=./.git --exclude-tag-all=.build-version.lock \
            --exclude='./tests/e2e/fixture*' --exclude=./tests/system-rootfs \
            --exclude=./demo-cache --exclude=./bench-cache --exclude=./pkg --exclude=./ci-artifacts \
            --warning=no-file-changed -cf - . || [ $? -eq 1 ]; } |
            tar -C "$OUTDIR" -xf - || die "cannot copy $SRC into $OUTDIR"
        configure="$OUTDIR/configure"
    fi
    # A configured tree (the copy's in-place build, or OUTDIR's earlier one, maybe for
    # another host) is cleaned first: make would take its objects as up to date. The
    # copy's Makefiles name the sources' absolute paths (rm -rf SRC/pkg): OUTDIR's instead.
    if [ -f "$OUTDIR/Makefile" ]; then
        clean_make -C "$OUTDIR" distclean abs_top_builddir="$OUTDIR" abs_builddir="$OUTDIR" \
            abs_top_srcdir="$OUTDIR" abs_srcdir="$OUTDIR" >>"$LOG" 2>&1 ||
            { tail -n 40 "$LOG" >&2; die "make distclean failed in $OUTDIR (log: $LOG)"; }
    fi
    (cd "$OUTDIR" && "$configure" -q "${config_args[@]}" --with-build-version="$VERSION") \
        >>"$LOG" 2>&1 || { tail -n 40 "$LOG" >&2; die "configure failed in $OUTDIR (log: $LOG)"; }
    # Without MOLT_BUILD_HOST-gcc (or its pkg-config) configure quietly takes this host's.
    if [ -n "${MOLT_BUILD_HOST:-}" ]; then
        for tool in CC PKG_CONFIG; do
            found=$(sed -n "s/^$tool = //p" "$OUTDIR/Makefile")
            case "${found##*/}" in "$MOLT_BUILD_HOST"-*) ;;
            *) die "configure --host=$MOLT_BUILD_HOST took $tool '$found', not a $MOLT_BUILD_HOST- one: the build would be for this host" ;;
            esac
        done
    fi
    printf '%s' "$want" >"$STAMP"
fi
# A copy (the sources configured in place) is brought up to date with them on every run,
# not only when it is made, so that make rebuilds what changed as in a VPATH build: the
# files git would commit (tracked, or new and not ignored) are copied again with their
# times, the in-place build's outputs never. Without git (a release tarball) the copy stays.
if [ -f "$SRC/config.status" ] && [ "$(cd "$SRC" && pwd)" != "$OUTDIR" ] &&
   git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    { git -C "$SRC" ls-files -z --cached --others --exclude-standard |
        tar -C "$SRC" --null --ignore-failed-read -T - -cf - 2>/dev/null || [ $? -eq 1 ]; } |
        tar -C "$OUTDIR" -xf - || die "cannot bring $OUTDIR up to date with $SRC"
fi
clean_make -C "$OUTDIR" -j2 agent/molt-agent agent/molt-worker installer/molt-installer packaging/molt-pack \
    >>"$LOG" 2>&1 || { tail -n 40 "$LOG" >&2; die "make failed in $OUTDIR (log: $LOG)"; }
echo "$OUTDIR"
