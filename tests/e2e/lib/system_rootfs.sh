#!/usr/bin/env bash
# system_rootfs.sh DIR: a Debian 12 rootfs booted by the system tier (tests/e2e/system_*.sh),
# made once with debootstrap from the archive apt uses here and reused while
# DIR/.molt-rootfs-ok exists. Minimal on purpose (minbase: no procps, no
# /bin/kill), as the images the package must work on, plus the libraries the
# .deb depends on, so that installing it needs no network. Serialised with
# flock so parallel runs build it once.
set -euo pipefail
DIR=${1:?usage: system_rootfs.sh DIR}
SUITE=${MOLT_SYSTEM_SUITE:-bookworm}

mirror() { # the first Debian archive URL apt is configured with
    local m
    m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
        2>/dev/null | grep -v '^ *#' | grep -oE 'https?://[^ ]+/debian/?' | grep -v security |
        head -n 1 || true)
    echo "${m:-http://deb.debian.org/debian}"
}

mkdir -p "$(dirname "$DIR")"
exec 9>"$DIR.lock"
flock 9
[ -e "$DIR/.molt-rootfs-ok" ] && exit 0
rm -rf "$DIR" "$DIR.tmp"
debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,ca-certificates,libcurl4,libjson-c5,libarchive13,libssl3,curl,passwd,sysvinit-utils \
    "$SUITE" "$DIR.tmp" "$(mirror)" >"$DIR.log" 2>&1 || { tail -n 20 "$DIR.log" >&2; exit 1; }
# The container's own apt and a machine id of its own.
rm -f "$DIR.tmp/etc/machine-id"
: >"$DIR.tmp/etc/machine-id"
mv "$DIR.tmp" "$DIR"
touch "$DIR/.molt-rootfs-ok"
