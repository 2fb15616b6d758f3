#!/usr/bin/env bash
# pkg_deb.sh: `make deb` builds the .deb (and refuses without a signing key);
# lintian reports no errors; installed with dpkg --root into a scratch root
# with its own database (maintainer scripts run chrootless, with DPKG_ROOT,
# and work on the paths under it; nothing is started), it creates the molt
# user, the directories and modes, and installs its signed build into the
# versioned layout, where the installed molt-agent --version runs. The
# coexistence rule: after a self-upgrade to 20.2 (done with molt-installer
# as the agent does it), reinstalling the 20.1 .deb keeps 20.2; a newer .deb
# is switched to through molt-installer. Remove takes every version; purge
# also the state and configuration. No fault points in packages: make deb
# refuses a test build (--enable-fault-points), and a release build's .deb
# installs with every install fault point named in MOLT_FAULT.
. "$(dirname "$0")/lib/pkg.sh"
set -u

command -v dpkg-deb >/dev/null 2>&1 && command -v dpkg-shlibdeps >/dev/null 2>&1 ||
    pkg_skip_all "dpkg-deb and dpkg-shlibdeps (dpkg-dev) are not installed: not a Debian system"
pkg_start deb 38

# ---- building ---------------------------------------------------------------------------

pkg_needs_key deb

B1=$(pkg_build_dir "$V1") && B2=$(pkg_build_dir "$V2") && B3=$(pkg_build_dir "$V3") ||
    { echo "Bail out! builds"; exit 1; }
deb_of() { pkg_deb_of "$1" "$WORK/debs"; }
D1=$(deb_of "$B1")
ok "$( [ -f "$D1" ]; echo $?)" "make deb builds $(basename "$D1")"
[ -f "$D1" ] || sed 's/^/#   /' "$WORK/make.err"
D2=$(deb_of "$B2")
D3=$(deb_of "$B3")
ok "$( { [ -f "$D2" ] && [ -f "$D3" ]; }; echo $?)" "and the .debs of $V2 and $V3"

info=$(dpkg-deb -f "$D1" Package Version Architecture Depends)
like "$info" "Version: $V1" "control: version $V1"
like "$info" "Depends: .*libarchive" "Depends covers the agent's libraries (inside the embedded build)"
ok "$(printf '%s\n' "$info" | grep -Eq 'libmicrohttpd|libsystemd'; echo $((! $?)))" \
    "and not libmicrohttpd or libsystemd (the local API and sd_notify are molt's own)"
contents=$(dpkg-deb -c "$D1")
like "$contents" "usr/lib/molt/build/molt-$V1-linux-.*\.tar\.gz\.sig" "it carries the signed build"
ok "$(printf '%s\n' "$contents" | grep -q ' \./opt/'; echo $((! $?)))" \
    "and nothing under /opt (the versioned layout is molt-installer's)"

if command -v lintian >/dev/null 2>&1; then
    lint=$(lintian --fail-on error "$D1" 2>&1)
    ok $? "lintian reports no errors"
    printf '%s\n' "$lint" | grep -E '^[EW]:' | sed 's/^/# lintian: /'
    is "$(printf '%s\n' "$lint" | grep -cE '^[EW]: ')" 0 "and no warnings (molt.conf's 0640 is overridden, with the reason)"
else
    ok 0 "lintian reports no errors # SKIP lintian is not installed"
    ok 0 "lintian reports no warnings # SKIP lintian is not installed"
fi

# ---- no fault points in packages ----------------------------------------------------------

fault_text='action=kill'    # lib/fault.c's log line: in the binaries only with fault points
if tap_have_fault_points; then
    out=$(MOLT_PKG_ALLOW_FAULT_POINTS='' pkg_make -C "$MOLT_TOP_BUILDDIR" -s deb MOLT_SIGNING_KEY="$KEY" \
        MOLT_PKG_OUT_DIR="$WORK/refused" 2>&1)
    ok $((! $?)) "make deb refuses a build configured --enable-fault-points"
    like "$out" "packages must not have fault points; configure it with --disable-fault-points" "saying why"
    ok "$(grep -qa "$fault_text" "$MOLT_TOP_BUILDDIR/agent/molt-agent"; echo $?)" \
        "(the test build's agent has fault points)"
else
    tap_skip 3 "this build has no fault points"
fi
BR=$(MOLT_BUILD_CONFIGURE_ARG=--disable-fault-points \
    "$MOLT_TOP_SRCDIR/tests/e2e/build-version.sh" "$V1" "$FIX/build-release-$V1" 2>"$WORK/release.err") &&
    DR=$(MOLT_PKG_ALLOW_FAULT_POINTS='' pkg_deb_of "$BR" "$WORK/release-debs")
ok "$( [ -f "${DR:-}" ]; echo $?)" "a release build (--disable-fault-points) makes its .deb"
[ -f "${DR:-}" ] || sed 's/^/#   /' "$WORK/release.err" "$WORK/make.err"
dpkg-deb -x "${DR:-/dev/null}" "$WORK/release" 2>/dev/null
MOLT_FAULT=install.after_move,install.after_installer,install.after_flip,fs.write.before_rename \
    MOLT_INSTALL_ROOT="$WORK/release-root" MOLT_AGENT_STATE_DIR="$WORK/release-state" \
    "$WORK/release/usr/lib/molt/molt-installer" install "$WORK/release/usr/lib/molt/build/molt-$V1-"*.tar.gz \
    --keys "$WORK/release/etc/molt/keys" >"$WORK/release.out" 2>&1
ok $? "its molt-installer ignores MOLT_FAULT: install passes every install fault point"
[ -x "$WORK/release-root/current/bin/molt-agent" ] && \
    ! grep -qa "$fault_text" "$WORK/release-root/current/bin/molt-agent" \
        "$WORK/release/usr/lib/molt/molt-installer"
ok $? "and neither it nor the agent it installed has fault points compiled in"

# ---- a scratch root with its own dpkg database ---------------------------------------------

R=$WORK/root
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/log" "$R/etc"
: >"$R/var/lib/dpkg/status"
: >"$R/var/lib/dpkg/available"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\n' >"$R/etc/group"
# Chrootless scripts (DPKG_ROOT); the libraries are the host's, not in this database.
DPKG=(dpkg --root="$R" --force-script-chrootless --force-depends --force-downgrade)
dpkg_do() { OUT=$("${DPKG[@]}" "$@" 2>&1); RC=$?; }
show() { printf '%s\n' "$OUT" | tail -n 12 | sed 's/^/#   /'; }

dpkg_do -i "$D1"
is "$RC" 0 "dpkg --root -i installs $V1"
[ "$RC" -eq 0 ] || show
MOLT_UID=$(awk -F: '$1 == "molt" { print $3 }' "$R/etc/passwd")
ok $((! ${#MOLT_UID})) "the system user molt exists ($MOLT_UID)"
modes=$(stat -c '%n %a %u' "$R/opt/molt" "$R/var/lib/molt" | sed "s|$R||g")
is "$modes" "$(printf '/opt/molt 755 %s\n/var/lib/molt 750 %s' "$MOLT_UID" "$MOLT_UID")" \
    "/opt/molt and /var/lib/molt (0750) belong to molt"
MOLT_GID=$(awk -F: '$1 == "molt" { print $4 }' "$R/etc/passwd")
is "$(stat -c '%a %u:%g' "$R/etc/molt/molt.conf")" "640 0:$MOLT_GID" "molt.conf is 0640 root:molt"
is "$("$R/opt/molt/current/bin/molt-agent" --version)" "molt-agent $V1" \
    "the installed molt-agent --version runs there"
is "$(readlink "$R/opt/molt/current")" "versions/$V1" "installed into the versioned layout"

# ---- coexistence --------------------------------------------------------------------------

# Self-upgrade to V2 as the agent does it: a verified, staged build, then
# apply and commit with the stable installer, as the service user.
as_molt() { setpriv --reuid="$MOLT_UID" --regid="$MOLT_GID" --clear-groups -- "$@"; }
mkdir -p "$WORK/rel" && cp "$(pkg_of "$V2")"* "$WORK/rel/"
S=$(as_molt mktemp -d "$R/opt/molt/upgrade/t-XXXXXX")
INST=$R/opt/molt/bin/molt-installer
{ as_molt "$INST" install "$WORK/rel/$(basename "$(pkg_of "$V2")")" --root "$S/r" \
    --state-dir "$S/s" --keys "$R/etc/molt/keys" &&
    as_molt "$INST" apply "$S/r/versions/$V2" --task 42 --root "$R/opt/molt" \
        --state-dir "$R/var/lib/molt" &&
    as_molt "$INST" commit --task 42 --root "$R/opt/molt" --state-dir "$R/var/lib/molt"; } \
    >"$WORK/self.log" 2>&1 || sed 's/^/#   /' "$WORK/self.log"
rm -rf "$S"
is "$(readlink "$R/opt/molt/current")" "versions/$V2" "self-upgrade to $V2 (apply, commit)"

dpkg_do -i "$D1"
ok "$( { [ "$RC" -eq 0 ] && [ "$(readlink "$R/opt/molt/current")" = "versions/$V2" ]; }; echo $?)" \
    "reinstalling the $V1 .deb keeps $V2 current"
like "$OUT" "keeping $V2: it is newer than this package's $V1" "and says so"

dpkg_do -i "$D2"
ok "$( { [ "$RC" -eq 0 ] && [ "$(readlink "$R/opt/molt/current")" = "versions/$V2" ]; }; echo $?)" \
    "the $V2 .deb: $V2 is already current"

# What a root-run molt-installer command leaves: a root-owned lock in the state dir.
rm -f "$R/var/lib/molt/installer.lock"
: >"$R/var/lib/molt/installer.lock"
chown 0:0 "$R/var/lib/molt/installer.lock"
dpkg_do -i "$D3"
is "$RC" 0 "the newer $V3 .deb installs (over a root-owned installer.lock)"
[ "$RC" -eq 0 ] || show
ok "$( { [ "$(readlink "$R/opt/molt/current")" = "versions/$V3" ] &&
    [ "$(readlink "$R/opt/molt/previous")" = "versions/$V2" ]; }; echo $?)" \
    "it was switched to through molt-installer: current $V3, previous $V2"
like "$(cat "$R/var/lib/molt/journal.json")" "\"toVersion\": *\"$V3\"" \
    "the journal records the switch to $V3"
ok "$(find "$R/opt/molt" "$R/var/lib/molt" ! -uid "$MOLT_UID" | grep -q .; echo $((! $?)))" \
    "everything in the layout still belongs to molt (it can upgrade itself)"

# ---- remove and purge --------------------------------------------------------------------

dpkg_do -r molt
ok "$( { [ "$RC" -eq 0 ] && [ ! -e "$R/opt/molt" ] && [ -f "$R/var/lib/molt/journal.json" ] &&
    [ -f "$R/etc/molt/molt.conf" ]; }; echo $?)" "remove: every version gone; state and configuration kept"
dpkg_do -P molt
ok "$( { [ "$RC" -eq 0 ] && [ ! -e "$R/var/lib/molt" ] && [ ! -e "$R/etc/molt" ]; }; echo $?)" \
    "purge: state and configuration gone"
status=$(dpkg --root="$R" -l molt 2>/dev/null | grep '^.. *molt ' || true)
is "$status" "" "the scratch database no longer knows molt"

# ---- install.sh first, then the .deb -----------------------------------------------------

mkdir -p "$WORK/keys" && cp "$(dirname "$KEY")"/*.pub "$WORK/keys/" 2>/dev/null ||
    openssl pkey -in "$KEY" -pubout -out "$WORK/keys/k.pub" 2>/dev/null
OUT=$("$MOLT_TOP_SRCDIR/installer/install.sh" --package "$(pkg_of "$V1")" --url https://cp.example.com \
    --access-id a1 --access-key k1 --keys "$WORK/keys" --prefix "$R" --user molt \
    --installer "$B1/installer/molt-installer" 2>&1)
is "$?" 0 "install.sh installs $V1 into the root"
[ -f "$R/etc/init.d/molt-agent" ] && [ -f "$R/etc/molt/molt.conf" ]
ok $? "with its configuration and service files"
dpkg_do -i "$D1" </dev/null
is "$RC" 0 "the .deb over install.sh installs without a terminal (no conffile prompt)"
[ "$RC" -eq 0 ] || show
like "$(cat "$R/etc/molt/molt.conf.d/00-install-sh.conf" 2>&1)" "url = https://cp.example.com" \
    "install.sh's configuration is kept as a drop-in"
dpkg_do -P molt
tap_done
