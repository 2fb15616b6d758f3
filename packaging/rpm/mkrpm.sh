#!/usr/bin/env bash
# mkrpm.sh: builds the molt .rpm with rpmbuild (make rpm) from a built build
# dir, using the tree of packaging/pkgtree.sh (shared with the .deb) and
# packaging/rpm/molt.spec.in. rpmbuild may be RPM's own or Debian's rpm package.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../pkgargs.sh"
pkg_args "$@"
command -v rpmbuild >/dev/null || die "rpmbuild not found: install rpm (Debian) or rpm-build"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/molt-rpm.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
T=$WORK/tree
VERSION=$("$S/packaging/pkgtree.sh" --build-dir "$B" --srcdir "$S" --key "$KEY" --out "$T" \
    --unit-dir /usr/lib/systemd/system ${TRUSTED:+--trusted "$TRUSTED"})

# RPM's Version may not hold '-': 20.1-2749 is Version 20.1, Release 2749.
case "$VERSION" in
*-*) RPM_VERSION=${VERSION%-*} RPM_RELEASE=${VERSION##*-} ;;
*) RPM_VERSION=$VERSION RPM_RELEASE=1 ;;
esac
RPM_RELEASE=$(printf '%s' "$RPM_RELEASE" | tr -- '-' '_')
HOST=$(pkg_host)
if [ -n "$HOST" ]; then
    RPM_ARCH=${HOST%%-*}    # a cross build: the cpu of its --host (aarch64)
else
    case "$("$B/packaging/molt-pack" arch)" in
    amd64) RPM_ARCH=x86_64 ;;
    x86) RPM_ARCH=i686 ;;
    arm) RPM_ARCH=armv7hl ;;
    *) RPM_ARCH=$("$B/packaging/molt-pack" arch) ;;
    esac
fi

# The agent is packed inside the embedded build, where rpmbuild does not look.
rpmdeps=/usr/lib/rpm/rpmdeps
[ -x "$rpmdeps" ] || rpmdeps=$(command -v rpmdeps || echo /usr/lib/rpm/rpmdeps)
"$rpmdeps" --requires "$B/agent/molt-agent" 2>/dev/null | grep '\.so' | sort -u |
    sed 's/^/Requires:       /' >"$WORK/agent-requires" || true
sed -e "s/@RPM_VERSION@/$RPM_VERSION/" -e "s/@RPM_RELEASE@/$RPM_RELEASE/" \
    -e "s/@MOLT_VERSION@/$VERSION/" "$S/packaging/rpm/molt.spec.in" |
    awk -v reqs="$WORK/agent-requires" '
        $0 == "@AGENT_REQUIRES@" { while ((getline l < reqs) > 0) print l; next } { print }' \
    >"$WORK/molt.spec"
mkdir -p "$WORK/top"
rpmbuild -bb --quiet --target "$RPM_ARCH" --define "_topdir $WORK/top" \
    --define "molt_tree $T" --define "_rpmdir $WORK/out" "$WORK/molt.spec" >"$WORK/rpmbuild.log" 2>&1 ||
    { cat "$WORK/rpmbuild.log" >&2; die "rpmbuild failed"; }
mkdir -p "$OUTDIR"
rpm=$(find "$WORK/out" -name '*.rpm' | head -n 1)
[ -n "$rpm" ] || die "rpmbuild made no package"
cp "$rpm" "$OUTDIR/"
echo "$OUTDIR/$(basename "$rpm")"
