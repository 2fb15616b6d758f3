#!/usr/bin/env bash
# arm64.sh (make check-arm64): the aarch64 cross build under qemu-user-static.
# Its programs are aarch64 ELF files (checked before qemu runs them: a native
# build stops the test, naming its machine); its unit tests pass; the arm64
# agent registers with the reference control plane (on this host) as osArch
# aarch64, upgrades itself to another arm64 build through the management API,
# rolls back a broken one, and refuses an amd64 build with the reason;
# signatures made by the amd64 molt-pack verify with the arm64 one and the other
# way round. The control plane and the e2e helpers are the amd64 suite's
# (lib/upgrade.sh with MOLT_E2E_ARCH=aarch64).
#
# Emulation: binfmt_misc with qemu-aarch64 registered on the host when it is;
# else a private binfmt_misc in a user namespace of our own (Linux >= 6.7),
# which the host never sees. With neither, only what qemu-aarch64 can run
# directly (molt-pack) is tested and the rest reported as SKIP with the reason.
# Without the cross toolchain or qemu the whole test is a SKIP.
TRIPLET=aarch64-linux-gnu
PLAN=30
set -u
. "$(dirname "$0")/lib/tap.sh"

skip_all() { echo "1..0 # SKIP $*"; exit 0; }
QEMU=$(command -v qemu-aarch64-static || command -v qemu-aarch64) ||
    skip_all "no qemu-aarch64 (install qemu-user-static: ./autogen.sh --arm64-deps)"
command -v "$TRIPLET-gcc" >/dev/null ||
    skip_all "no $TRIPLET-gcc cross compiler (./autogen.sh --arm64-deps installs it)"
"$TRIPLET-pkg-config" --exists libcurl json-c libarchive libzstd libcrypto cmocka libseccomp 2>/dev/null ||
    skip_all "no arm64 -dev packages for $TRIPLET-pkg-config (./autogen.sh --arm64-deps installs them)"
# The arm64 loader and libc for qemu from the cross sysroot only when they are not installed
# multiarch (libc6:arm64, which the :arm64 -dev packages bring): its older libc mixed with the
# libraries built against libc6:arm64 makes emulated programs spin (test_http hung so).
[ -e /lib/ld-linux-aarch64.so.1 ] || [ ! -d "/usr/$TRIPLET" ] || export QEMU_LD_PREFIX="/usr/$TRIPLET"

binfmt_on() { grep -qsx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64; }

# Registers qemu for aarch64 ELF files in a binfmt_misc of this (new) user
# namespace; F: the emulator is opened now, so it works in any mount namespace.
private_binfmt() {
    local magic='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
    local mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null &&
        printf ':qemu-aarch64:M::%s:%s:%s:F' "$magic" "$mask" "$QEMU" \
            >/proc/sys/fs/binfmt_misc/register 2>/dev/null
}

if [ "${1:-}" = --in-namespace ]; then
    private_binfmt || { echo "Bail out! cannot register qemu in the private binfmt_misc"; exit 1; }
    EMULATION="binfmt_misc of a private user namespace"
elif binfmt_on; then
    EMULATION="the host's binfmt_misc"
elif unshare --user --map-current-user --mount \
    bash -c "$(declare -f private_binfmt); QEMU=$QEMU; private_binfmt" 2>/dev/null; then
    exec unshare --user --map-current-user --mount bash "$0" --in-namespace
else
    EMULATION=
fi

MOLT_E2E_ARCH=aarch64
. "$(dirname "$0")/lib/upgrade.sh"

# elf_machine FILE: the machine an ELF file is for (e_machine at offset 18, little-endian).
elf_machine() {
    local m
    [ "$(od -An -c -j1 -N3 "$1" 2>/dev/null | tr -d ' \n')" = ELF ] || { echo "not an ELF file"; return; }
    m=$(od -An -tx1 -j18 -N2 "$1" | tr -d ' \n')
    case "$m" in b700) echo aarch64 ;; 3e00) echo x86-64 ;; *) echo "e_machine 0x$m" ;; esac
}
is_arm64() { [ "$(elf_machine "$1")" = aarch64 ]; }

# need_arm64 WHAT BUILD_DIR: one test that BUILD_DIR's programs are aarch64 ELF files, naming
# the machine of each that is not; the rest would only fail under qemu ("Invalid ELF image"),
# so a native build stops the test here.
need_arm64() {
    local p bad=
    for p in agent/molt-agent installer/molt-installer packaging/molt-pack; do
        is_arm64 "$2/$p" || bad="$bad $p: $(elf_machine "$2/$p");"
    done
    ok "$([ -z "$bad" ]; echo $?)" "$1: molt-agent, molt-installer and molt-pack are aarch64 ELF files${bad:+ (not:$bad)}"
    [ -z "$bad" ] || { echo "Bail out! the cross build in $2 is not for aarch64:$bad see $2/build-version.log"; exit 1; }
}

HOST_PACK=$MOLT_TOP_BUILDDIR/packaging/molt-pack
tap_plan "$PLAN"
tap_diag "emulation: ${EMULATION:-none (qemu-aarch64 invoked directly)}"

# -- the cross build of this tree (the fixture's V1) and what qemu runs without binfmt
mkdir -p "$FIX"
(flock 8; fix__build "$V1" >/dev/null) 8>"$FIX.lock"
ok $? "cross build for aarch64 (fixture build-$V1)"
B1=$FIX/build-$V1
need_arm64 "build-$V1" "$B1"
ARM_PACK() { "$QEMU" "$B1/packaging/molt-pack" "$@"; }
is "$(ARM_PACK arch)" aarch64 "the arm64 molt-pack says this host is aarch64 (qemu)"
is "$("$QEMU" "$B1/agent/molt-agent" --version)" "molt-agent $V1" "the arm64 agent runs under qemu"

# Signatures across arches: a key and a signature made by one molt-pack verify with the other.
X=$(mktemp -d "${TMPDIR:-/tmp}/molt-arm64-sig-XXXXXX")
mkdir -p "$X/tree/bin" "$X/out"
printf 'hello\n' >"$X/tree/bin/molt-agent"
cp "$X/tree/bin/molt-agent" "$X/tree/bin/molt-installer"
ARM_PACK keygen --out "$X/armkeys" >/dev/null && "$HOST_PACK" keygen --out "$X/hostkeys" >/dev/null
ARM_PACK build --quiet --version 1.0-1 --arch aarch64 "$X/tree" -o "$X/out" &&
    "$HOST_PACK" build --quiet --version 1.0-2 --arch amd64 "$X/tree" -o "$X/out"
ok $? "keys and packages made by both molt-packs"
"$HOST_PACK" sign --quiet --key "$X"/hostkeys/*.key "$X/out/molt-1.0-1-linux-aarch64.tar.gz" &&
    ARM_PACK sign --quiet --key "$X"/armkeys/*.key "$X/out/molt-1.0-2-linux-amd64.tar.gz"
ok $? "amd64 molt-pack signs the arm64 package, arm64 molt-pack the amd64 one"
mkdir -p "$X/trust-host" "$X/trust-arm"
cp "$X"/hostkeys/*.pub "$X/trust-host/" && cp "$X"/armkeys/*.pub "$X/trust-arm/"
out=$(ARM_PACK verify --keys "$X/trust-host" --arch aarch64 "$X/out/molt-1.0-1-linux-aarch64.tar.gz" 2>&1)
ok $? "the arm64 molt-pack verifies the amd64-made signature ($out)"
out=$("$HOST_PACK" verify --keys "$X/trust-arm" --arch amd64 "$X/out/molt-1.0-2-linux-amd64.tar.gz" 2>&1)
ok $? "the amd64 molt-pack verifies the arm64-made signature ($out)"
out=$(ARM_PACK verify --keys "$X/trust-arm" --arch aarch64 "$X/out/molt-1.0-1-linux-aarch64.tar.gz" 2>&1)
like "$out" "no trusted key" "the arm64 molt-pack refuses a signature by a key it does not trust"
out=$(ARM_PACK verify --keys "$X/trust-host" "$X/out/molt-1.0-1-linux-aarch64.tar.gz" 2>&1)
ok $? "the arm64 molt-pack takes aarch64 as its own arch"
out=$(ARM_PACK verify --keys "$X/trust-arm" "$X/out/molt-1.0-2-linux-amd64.tar.gz" 2>&1)
like "$out" "built for amd64, host is aarch64" "and refuses the amd64 package for its host ($out)"

# Packages of the cross build, signed and verified by this host's molt-pack (no emulation needed).
"$MOLT_TOP_SRCDIR/packaging/mkrelease.sh" --build-dir "$B1" --version "$V1" --arch aarch64 \
    --keys "$X/hostkeys" --molt-pack "$HOST_PACK" --out "$X/rel" >/dev/null 2>"$X/rel.err"
rc=$?
ok $rc "mkrelease.sh --arch aarch64 signs a release of the cross build ($(ls "$X/rel" 2>/dev/null | grep -c .) files)"
[ "$rc" -eq 0 ] || sed 's/^/#   /' "$X/rel.err"
# B1 is a test build (fault points on, like the suite's): packed with the
# packaging tests' allowance (lib/pkg.sh), which releases never have.
(cd "$B1" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL MOLT_PKG_ALLOW_FAULT_POINTS=1 make deb rpm MOLT_SIGNING_KEY="$(ls "$X"/hostkeys/*.key)" \
    MOLT_PACK="$HOST_PACK" MOLT_PKG_OUT_DIR="$X/pkg" >"$X/pkg.log" 2>&1)
rc=$?
ok $rc "make deb rpm in the cross build"
[ "$rc" -eq 0 ] || tail -n 20 "$X/pkg.log" | sed 's/^/#   /'
is "$(dpkg-deb -f "$X/pkg/molt_${V1}_arm64.deb" Architecture 2>&1)" arm64 "the .deb is Architecture: arm64"
is "$(rpm -qp --qf '%{ARCH}' "$X/pkg/molt-${V1%-*}-${V1#*-}.aarch64.rpm" 2>/dev/null)" aarch64 "the .rpm is for aarch64"
if command -v lintian >/dev/null; then
    out=$(lintian --fail-on error "$X/pkg/molt_${V1}_arm64.deb" 2>&1)
    ok $? "lintian finds no error in the arm64 .deb $(echo "$out" | grep -v '^running' | tr '\n' ' ')"
else
    echo "ok $((TAP_N += 1)) # SKIP lintian not installed"
fi
rm -rf "$X"

if [ -z "$EMULATION" ]; then
    for i in $(seq $((TAP_N + 1)) "$PLAN"); do
        echo "ok $i # SKIP no binfmt_misc for aarch64 (host has none; no private one: needs Linux >= 6.7 user namespaces)"
    done
    exit 0
fi

# -- the unit tests of the cross build, under emulation (char is unsigned on aarch64); the
# list is make valgrind's: every unit test but test_sandbox (tests/hardening.mk says why)
(cd "$B1" && timeout 900 env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -j2 check 'TESTS=$(VALGRIND_UNIT_TESTS)' \
    >"$B1/unit-check.log" 2>&1)
ok $? "the unit tests pass on aarch64 ($(grep -E '^# (PASS|FAIL)' "$B1/unit-check.log" | tr '\n' ' '))"

# -- a mixed fleet's control plane: V2 released for aarch64 and for amd64
TRIAL_TIMEOUT=${TRIAL_TIMEOUT:-30s}
env_start arm64
publish "$V1" "$V2" "$VX" "$V2:releases-native"
need_arm64 "build-$V2" "$FIX/build-$V2"
is_arm64 "$ROOT/versions/$V1/bin/molt-agent"
ok $? "the arm64 installer installed the arm64 build $V1"
agent_start
wait_for 60 registered
ok $? "arm64 agent registered (collector $CID)"
is "$(collector_field osArch)" aarch64 "it reports osArch aarch64"

tid=$(cp_create_task "$CID" "$V2")
cp_wait_task_status "$tid" 2 180
ok $? "task $tid to $V2 ends 2 ($CP_TASK_MESSAGE)"
is "$(task_statuses "$tid")" "0 1 6 2" "status went 0 -> 1 -> 6 -> 2"
wait_for 30 version_is "$V2"
ok $? "the collector reports collectorVersion $V2"
is_arm64 "$ROOT/current/bin/molt-agent"
ok $? "current is the arm64 build of $V2, not the amd64 one of the same version"

tid=$(cp_create_task "$CID" "$VX")
cp_wait_task_status "$tid" 3 240
ok $? "broken arm64 build $VX ends 3"
like "$CP_TASK_MESSAGE" "rolled back: $VX exited" "the reason names the rollback ($CP_TASK_MESSAGE)"
wait_for 60 version_is "$V2"
ok $? "$V2 heartbeats again"

# An amd64-only version is not offered to this collector; an amd64 build given to it is refused.
cp_fake_build 20.9-1 "" amd64 >/dev/null
cp_create_task "$CID" 20.9-1 >/dev/null 2>"$WORK/refused.txt"
like "$(cat "$WORK/refused.txt")" "create task: 400" "the control plane refuses a task to an amd64-only version"
out=$("$ROOT/current/bin/molt-agent" upgrade --package "$(pkg_of "$V2" releases-native)" 2>&1)
like "$out" "built for amd64, host is aarch64" "the arm64 agent refuses the amd64 build: $out"
[ "$TAP_FAILED" -eq 0 ] || show_log 60
tap_done
