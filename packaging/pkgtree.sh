#!/usr/bin/env bash
# pkgtree.sh: lays out the file tree that the .deb and the .rpm ship, from a
# built build dir: the signed build package that the post-install step
# installs into the versioned layout (/opt/molt is never shipped: it belongs
# to molt-installer and to self-upgrades), the trusted public key(s), the
# bootstrap molt-installer and install.sh that verify and install it, the
# service files, configuration, man pages and molt-pack. Used by mkdeb.sh and
# mkrpm.sh (make deb, make rpm).
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: pkgtree.sh --build-dir B --srcdir S --key KEY --out DIR --unit-dir D [--trusted DIR]
  --build-dir B   configured and built tree (agent, installer, molt-pack)
  --srcdir S      the sources (packaging/, installer/install.sh)
  --key KEY       private key (molt-pack keygen) signing the embedded build
  --out DIR       the tree to lay out (must not exist)
  --unit-dir D    where the systemd unit goes (/lib/systemd/system, /usr/lib/systemd/system)
  --trusted DIR   more public keys (*.pub) to trust, e.g. the next key of a rotation
USAGE
}

die() { echo "pkgtree.sh: $*" >&2; exit 1; }

B='' S='' KEY='' OUT='' UNIT_DIR='' TRUSTED=''
while [ $# -gt 0 ]; do
    case "$1" in
    -h | --help) usage; exit 0 ;;
    --build-dir | --srcdir | --key | --out | --unit-dir | --trusted)
        [ $# -ge 2 ] || die "$1 needs a value"
        case "$1" in
        --build-dir) B=$2 ;; --srcdir) S=$2 ;; --key) KEY=$2 ;; --out) OUT=$2 ;;
        --unit-dir) UNIT_DIR=$2 ;; --trusted) TRUSTED=$2 ;;
        esac
        shift 2 ;;
    *) usage >&2; die "unknown argument: $1" ;;
    esac
done
[ -n "$B" ] && [ -n "$S" ] && [ -n "$OUT" ] && [ -n "$UNIT_DIR" ] || { usage >&2; exit 2; }
[ -n "$KEY" ] || die "no signing key: set MOLT_SIGNING_KEY=FILE (a private key from 'molt-pack keygen')"
[ -f "$KEY" ] || die "$KEY: no such signing key"
[ ! -e "$OUT" ] || die "$OUT exists"
PACK=$B/packaging/molt-pack
# A cross build (configure --host) packs its own programs, but its molt-pack runs here only
# under emulation: MOLT_PACK names one that runs (a native build's) to sign and verify with.
HOST=$(sed -n 's/^host_alias = //p' "$B/Makefile" 2>/dev/null | head -n 1)
RUNPACK=${MOLT_PACK:-$PACK}
release_arch=()
case "${HOST%%-*}" in
'') ;;
x86_64) release_arch=(--arch amd64) ;;
*) release_arch=(--arch "${HOST%%-*}") ;;
esac
VERSION=$(sed -n 's/^#define MOLT_VERSION "\(.*\)"$/\1/p' "$B/config.h")
[ -n "$VERSION" ] || die "$B/config.h: no MOLT_VERSION (is $B configured?)"
# Packages go to hosts, where MOLT_FAULT must do nothing: no test fault points in
# them. The packaging tests pack their test builds with MOLT_PKG_ALLOW_FAULT_POINTS=1.
if grep -qs '^#define MOLT_FAULT_POINTS 1$' "$B/config.h" && [ "${MOLT_PKG_ALLOW_FAULT_POINTS:-}" != 1 ]; then
    die "$B is configured --enable-fault-points (autogen.sh's default, for tests): packages must not have fault points; configure it with --disable-fault-points"
fi
for f in "$PACK" "$B/agent/molt-agent" "$B/installer/molt-installer"; do
    [ -x "$f" ] || die "$f is missing (run make first)"
done

umask 022
mkdir -p "$OUT"/usr/lib/molt/build "$OUT"/etc/molt/keys "$OUT"/etc/molt/molt.conf.d \
    "$OUT"/etc/init.d "$OUT$UNIT_DIR" "$OUT"/usr/bin "$OUT"/usr/sbin \
    "$OUT"/usr/share/man/man1 "$OUT"/usr/share/man/man5 "$OUT"/usr/share/man/man8

# The build the post-install step installs, signed as any upgrade is.
"$S/packaging/mkrelease.sh" --build-dir "$B" --version "$VERSION" --key "$KEY" \
    --molt-pack "$RUNPACK" "${release_arch[@]}" --out "$OUT/usr/lib/molt/build" >/dev/null
chmod 0644 "$OUT"/usr/lib/molt/build/*

# Trust the signing key's public half (and any extra keys).
keyid=$("$RUNPACK" keyid "$KEY")
openssl pkey -in "$KEY" -pubout -out "$OUT/etc/molt/keys/$keyid.pub"
if [ -n "$TRUSTED" ]; then
    cp "$TRUSTED"/*.pub "$OUT/etc/molt/keys/"
fi
chmod 0644 "$OUT"/etc/molt/keys/*.pub
"$RUNPACK" verify --quiet --keys "$OUT/etc/molt/keys" "${release_arch[@]}" \
    "$OUT"/usr/lib/molt/build/molt-*.tar.gz ||
    die "the embedded build does not verify with the keys shipped beside it"

# The bootstrap installer verifies the embedded build before anything from it runs.
install -m 0755 "$B/installer/molt-installer" "$OUT/usr/lib/molt/molt-installer"
install -m 0755 "$S/installer/install.sh" "$OUT/usr/lib/molt/install.sh"
install -m 0755 "$PACK" "$OUT/usr/bin/molt-pack"
STRIP=${HOST:+$HOST-}strip
if command -v "$STRIP" >/dev/null 2>&1; then
    "$STRIP" --strip-unneeded --remove-section=.comment --remove-section=.note \
        "$OUT/usr/lib/molt/molt-installer" "$OUT/usr/bin/molt-pack"
fi
# The commands operators type; they follow the versioned layout.
ln -s /opt/molt/current/bin/molt-agent "$OUT/usr/sbin/molt-agent"
ln -s /opt/molt/bin/molt-installer "$OUT/usr/sbin/molt-installer"

install -m 0644 "$S/packaging/systemd/molt-agent.service" "$OUT$UNIT_DIR/molt-agent.service"
install -m 0755 "$S/packaging/sysv/molt-agent.init" "$OUT/etc/init.d/molt-agent"
# Holds the access key once configured: never world-readable (postinst makes it root:molt).
install -m 0640 "$S/packaging/molt.conf" "$OUT/etc/molt/molt.conf"

for page in molt-pack.1 molt.conf.5 molt-agent.8 molt-installer.8; do
    gzip -9n <"$S/packaging/man/$page" >"$OUT/usr/share/man/man${page##*.}/$page.gz"
    chmod 0644 "$OUT/usr/share/man/man${page##*.}/$page.gz"
done
echo "$VERSION"
