#!/bin/sh
# The one set-up step: install what the build needs (as root on Debian/Ubuntu or
# Fedora/RHEL), then generate and run configure with the given arguments.
set -eu
cd "$(dirname "$0")"

# Besides the libraries: the tools the tests drive (curl, openssl, python3, pgrep, flock),
# the packaging checks (rpmbuild, lintian, systemd-analyze, man) and the hardening checks
# CI runs: make lint (cppcheck, clang-tidy, scan-build), make valgrind, and make fuzz
# (clang's libFuzzer runtime, only recommended by clang, so named here); make check-system
# (systemd-nspawn and debootstrap: a booted Debian 12 container).
DEB_PKGS="build-essential autoconf automake libtool pkg-config make gcc clang openssl python3 zstd
 curl procps util-linux rpm lintian systemd man-db
 cppcheck clang-tidy clang-tools valgrind libclang-rt-dev
 systemd-container debootstrap
 libcurl4-openssl-dev libjson-c-dev libarchive-dev libzstd-dev libssl-dev libcmocka-dev libseccomp-dev
 libfuse3-dev fuse3"
RPM_PKGS="gcc make autoconf automake libtool pkgconf-pkg-config clang openssl python3 zstd
 curl procps-ng util-linux rpm-build systemd shadow-utils
 cppcheck clang-tools-extra clang-analyzer valgrind compiler-rt
 systemd-container debootstrap
 libcurl-devel json-c-devel libarchive-devel libzstd-devel openssl-devel libcmocka-devel libseccomp-devel
 fuse3-devel fuse3"

# ./autogen.sh --arm64-deps [configure args] (or MOLT_ARM64_DEPS=1) also installs
# the aarch64 cross toolchain, the libraries' :arm64 -dev packages (Debian
# multiarch; they co-install with the amd64 ones) and qemu-user-static, for
# ./configure --host=aarch64-linux-gnu and make check-arm64. Debian/Ubuntu only.
ARM64_DEB_PKGS="gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static pkgconf:arm64
 libcurl4-openssl-dev:arm64 libjson-c-dev:arm64 libarchive-dev:arm64 libzstd-dev:arm64 libssl-dev:arm64
 libcmocka-dev:arm64 libseccomp-dev:arm64"
if [ "${1:-}" = --arm64-deps ]; then
    MOLT_ARM64_DEPS=1
    shift
fi
if [ "${MOLT_ARM64_DEPS:-}" = 1 ]; then
    command -v dpkg >/dev/null 2>&1 ||
        { echo "autogen.sh: --arm64-deps needs Debian/Ubuntu (dpkg multiarch)" >&2; exit 1; }
    DEB_PKGS="$DEB_PKGS $ARM64_DEB_PKGS"
fi

missing_deb() {
    for p in $DEB_PKGS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || printf '%s ' "$p"
    done
}

missing_rpm() {
    for p in $RPM_PKGS; do
        rpm -q --whatprovides "$p" >/dev/null 2>&1 || printf '%s ' "$p"
    done
}

install_deps() {
    if command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
        need=$(missing_deb)
        [ -z "$need" ] && return 0
        if [ "$(id -u)" -ne 0 ]; then
            echo "autogen.sh: missing build dependencies; run as root:" >&2
            echo "  apt-get install -y $need" >&2
            exit 1
        fi
        echo "autogen.sh: installing $need"
        export DEBIAN_FRONTEND=noninteractive
        if [ "${MOLT_ARM64_DEPS:-}" = 1 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
            dpkg --add-architecture arm64
        fi
        apt-get update -qq </dev/null
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $need </dev/null
    elif command -v dnf >/dev/null 2>&1 && command -v rpm >/dev/null 2>&1; then
        need=$(missing_rpm)
        [ -z "$need" ] && return 0
        if [ "$(id -u)" -ne 0 ]; then
            echo "autogen.sh: missing build dependencies; run as root:" >&2
            echo "  dnf install -y $need" >&2
            exit 1
        fi
        # shellcheck disable=SC2086
        dnf install -y $need </dev/null
    else
        echo "autogen.sh: unknown system; install the equivalents of: $DEB_PKGS" >&2
        exit 1
    fi
}

[ "${MOLT_SKIP_DEPS:-}" = 1 ] || install_deps
autoreconf -fi
# A tree set up here is a development tree: its make check runs the crash and
# failure tests, which need the MOLT_FAULT fault points. configure leaves them
# out by default, as release and package builds must; --disable-fault-points
# here does the same.
case " $* " in
*" --enable-fault-points"* | *" --disable-fault-points "*) ;;
*) set -- --enable-fault-points "$@" ;;
esac
exec ./configure "$@"
