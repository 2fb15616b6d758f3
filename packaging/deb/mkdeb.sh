#!/usr/bin/env bash
# mkdeb.sh: builds the molt .deb with dpkg-deb from a built build dir (make deb).
# No debian/ source package: the binaries come from the autotools build, and
# the tree is laid out by packaging/pkgtree.sh, shared with the .rpm.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../pkgargs.sh"
pkg_args "$@"
for tool in dpkg-deb dpkg-shlibdeps dpkg; do
    command -v "$tool" >/dev/null || die "$tool not found: install dpkg-dev"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/molt-deb.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
T=$WORK/molt
VERSION=$("$S/packaging/pkgtree.sh" --build-dir "$B" --srcdir "$S" --key "$KEY" --out "$T" \
    --unit-dir /lib/systemd/system ${TRUSTED:+--trusted "$TRUSTED"})
HOST=$(pkg_host)
if [ -n "$HOST" ]; then    # a cross build: the Debian arch of its --host (arm64 for aarch64)
    ARCH=$(dpkg-architecture -t "$HOST" -qDEB_HOST_ARCH 2>/dev/null) ||
        die "dpkg-architecture does not know the host $HOST"
    export DEB_HOST_ARCH=$ARCH    # for dpkg-shlibdeps: that arch's libraries
else
    ARCH=$(dpkg --print-architecture)
fi

# Debian's documentation files.
DOC=$T/usr/share/doc/molt
mkdir -p "$DOC"
install -m 0644 "$S/packaging/deb/copyright" "$DOC/copyright"
when=$(date -u -R ${SOURCE_DATE_EPOCH:+-d "@$SOURCE_DATE_EPOCH"})
printf 'molt (%s) unstable; urgency=medium\n\n  * Build %s of molt.\n\n -- %s  %s\n' \
    "$VERSION" "$VERSION" "molt developers <molt-dev@example.org>" "$when" | gzip -9n >"$DOC/changelog.Debian.gz"
chmod 0644 "$DOC/changelog.Debian.gz"
# molt.conf holds the access key: 0640 root:molt on purpose (postinst sets the group).
mkdir -p "$T/usr/share/lintian/overrides"
printf '%s\n' "# molt.conf holds the access key: 0640, group molt (set by postinst), never world-readable" \
    "molt: non-standard-file-perm 0640 != 0644 [etc/molt/molt.conf]" >"$T/usr/share/lintian/overrides/molt"
chmod 0644 "$T/usr/share/lintian/overrides/molt"

# Library dependencies of every program, the agent inside the embedded build included.
mkdir -p "$WORK/shlibs/debian"
printf 'Source: molt\n\nPackage: molt\nArchitecture: any\n' >"$WORK/shlibs/debian/control"
deps=$(cd "$WORK/shlibs" && dpkg-shlibdeps -O "$B/agent/molt-agent" "$B/installer/molt-installer" \
    "$B/packaging/molt-pack" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$deps" ] || die "dpkg-shlibdeps found no dependencies"
deps="$deps, passwd"

size=$(du -sk --apparent-size "$T" | cut -f1)
mkdir -p "$T/DEBIAN"
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/$deps/" \
    "$S/packaging/deb/control.in" >"$T/DEBIAN/control"
for s in preinst postinst prerm postrm; do
    install -m 0755 "$S/packaging/deb/$s" "$T/DEBIAN/$s"
done
(cd "$T" && find etc -type f | sed 's|^|/|' | sort) >"$T/DEBIAN/conffiles"
(cd "$T" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
    xargs -0 md5sum) >"$T/DEBIAN/md5sums"
chmod 0644 "$T/DEBIAN/control" "$T/DEBIAN/conffiles" "$T/DEBIAN/md5sums"

mkdir -p "$OUTDIR"
DEB=$OUTDIR/molt_${VERSION}_$ARCH.deb
dpkg-deb --root-owner-group -Zxz --build "$T" "$DEB" >/dev/null
echo "$DEB"
