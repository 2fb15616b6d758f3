#!/usr/bin/env bash
# pkg_rpm.sh: `make rpm` builds the .rpm with rpmbuild (Debian's rpm package
# will do); rpm -qpl lists the files it ships, its scriptlets run install.sh
# and its requirements include the libraries of the agent inside the build.
. "$(dirname "$0")/lib/pkg.sh"
set -u

command -v rpmbuild >/dev/null 2>&1 || pkg_skip_all "rpmbuild is not installed (the rpm package)"
pkg_start rpm 10
pkg_needs_key rpm

RPM=$(pkg_make -C "$MOLT_TOP_BUILDDIR" -s rpm MOLT_SIGNING_KEY="$KEY" MOLT_PKG_OUT_DIR="$WORK/rpms" \
    2>"$WORK/make.err" | tail -n 1)
ok "$( [ -f "$RPM" ]; echo $?)" "make rpm builds $(basename "$RPM")"
[ -f "$RPM" ] || sed 's/^/#   /' "$WORK/make.err"

files=$(rpm -qpl "$RPM" 2>/dev/null)
want="/etc/molt/molt.conf /usr/lib/systemd/system/molt-agent.service /etc/init.d/molt-agent
/usr/lib/molt/install.sh /usr/lib/molt/molt-installer /usr/bin/molt-pack /usr/sbin/molt-agent
/usr/share/man/man8/molt-agent.8.gz /usr/share/man/man5/molt.conf.5.gz"
missing=''
for f in $want; do printf '%s\n' "$files" | grep -qx "$f" || missing="$missing $f"; done
is "$missing" "" "rpm -qpl lists the unit, init script, configuration, installer, man pages"
like "$files" "/usr/lib/molt/build/molt-$MOLT_BUILD_VERSION-linux-[a-z0-9_]+\.tar\.gz\.sig" \
    "and the signed build of $MOLT_BUILD_VERSION"
ok "$(printf '%s\n' "$files" | grep -q '^/opt'; echo $((! $?)))" "nothing under /opt"
is "$(rpm -qp --qf '%{VERSION}-%{RELEASE}' "$RPM" 2>/dev/null)" "$MOLT_BUILD_VERSION" \
    "Version-Release is the build version"
like "$(rpm -qp --scripts "$RPM" 2>/dev/null)" "/usr/lib/molt/install.sh --package" \
    "%post installs the build through install.sh"
requires=$(rpm -qp --requires "$RPM" 2>/dev/null)
like "$requires" "libarchive" "requires the agent's libraries"
ok "$(printf '%s\n' "$requires" | grep -Eq 'libmicrohttpd|libsystemd'; echo $((! $?)))" \
    "and not libmicrohttpd or libsystemd"
tap_done
