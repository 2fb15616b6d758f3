# shellcheck shell=bash
# pkgargs.sh: the command line shared by packaging/deb/mkdeb.sh and packaging/rpm/mkrpm.sh
# (sourced; both take the arguments `make deb` and `make rpm` pass, see packaging.mk).

PKG_PROG=$(basename "$0")

usage() {
    echo "Usage: $PKG_PROG --build-dir B --srcdir S --key KEY --out-dir DIR [--trusted DIR]"
}
die() { echo "$PKG_PROG: $*" >&2; exit 1; }

# pkg_args "$@": sets B (build dir), S (source dir), KEY, OUTDIR and TRUSTED; exits 0 after
# --help, 1 on a bad argument and 2 when a required one is missing.
# shellcheck disable=SC2034 # KEY and TRUSTED are the sourcing script's
pkg_args() {
    B='' S='' KEY='' OUTDIR='' TRUSTED=''
    while [ $# -gt 0 ]; do
        case "$1" in
        -h | --help) usage; exit 0 ;;
        --build-dir | --srcdir | --key | --out-dir | --trusted)
            [ $# -ge 2 ] || die "$1 needs a value"
            case "$1" in
            --build-dir) B=$2 ;; --srcdir) S=$2 ;; --key) KEY=$2 ;; --out-dir) OUTDIR=$2 ;;
            --trusted) TRUSTED=$2 ;;
            esac
            shift 2 ;;
        *) usage >&2; die "unknown argument: $1" ;;
        esac
    done
    [ -n "$B" ] && [ -n "$S" ] && [ -n "$OUTDIR" ] || { usage >&2; exit 2; }
}

# pkg_host: the --host build dir B was configured for (aarch64-linux-gnu), empty when native.
pkg_host() { sed -n 's/^host_alias = //p' "$B/Makefile" 2>/dev/null | head -n 1; }
