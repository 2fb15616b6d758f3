# installer_install.sh: install from signed build packages (molt-pack), with
# the same verification as upgrades: the good path, refusals that leave the
# root untouched, a crash at each install fault point, and apply of a staged
# package tree (version from its manifest.json, integrity re-checked).
set -u
. "$(dirname "$0")/lib/installer.sh"

PACK="$MOLT_TOP_BUILDDIR/packaging/molt-pack"
tap_plan 28

new_case install
ARCH=$("$PACK" arch)
"$PACK" keygen --out "$T/signing" >/dev/null 2>&1
mkdir -p "$T/keys" "$T/other-signing" "$T/other-keys"
cp "$T"/signing/*.pub "$T/keys/"
"$PACK" keygen --out "$T/other-signing" >/dev/null 2>&1
cp "$T"/other-signing/*.pub "$T/other-keys/"
KEYS=$T/keys

# package VERSION KIND [TASK]: a signed package of a hand-made tree.
package() {
    make_version "$T/tree-$1" "$1" "$2" "${3:-}"
    mkdir -p "$T/pkgs"
    "$PACK" build -q --version "$1" --arch "$ARCH" "$T/tree-$1" -o "$T/pkgs" >>"$T/pack.log" 2>&1 &&
        "$PACK" sign -q --key "$(ls "$T"/signing/*.key)" "$T/pkgs/molt-$1-linux-$ARCH.tar.gz" \
            >>"$T/pack.log" 2>&1
    PKG="$T/pkgs/molt-$1-linux-$ARCH.tar.gz"
}

package 1.0 steady
ok $? "molt-pack builds and signs a package"
P1=$PKG
package 2.0 healthy 12
P2=$PKG

# Refusals first, on the empty root: nothing may appear under it.
"$INSTALLER" install "$P1" --keys "$T/other-keys" >"$T/out" 2>&1
is "$?" "1" "a package signed with an untrusted key is refused"
like "$(cat "$T/out")" "signature" "and the reason names the signature"
cp "$P1" "$T/tampered.tar.gz"
cp "$P1.statement.json" "$T/tampered.tar.gz.statement.json"
cp "$P1.sig" "$T/tampered.tar.gz.sig"
printf 'x' | dd of="$T/tampered.tar.gz" bs=1 seek=100 conv=notrunc 2>/dev/null
"$INSTALLER" install "$T/tampered.tar.gz" --keys "$T/keys" >"$T/out" 2>&1
is "$?" "1" "a tampered package is refused"
like "$(cat "$T/out")" "sha256 mismatch" "with the precise reason"
[ ! -e "$ROOT/current" ] && [ -z "$(ls -A "$ROOT/versions" 2>/dev/null)" ]
ok $? "nothing was installed by the refused packages"

# The good path.
"$INSTALLER" install "$P1" --keys "$T/keys" >"$T/out" 2>&1
is "$?" "0" "install succeeds"
like "$(cat "$T/out")" "installed 1\.0 under $ROOT" "and says so"
is "$(link_of current)" "1.0" "current names the installed version"
[ -f "$ROOT/versions/1.0/manifest.json" ] && [ -x "$ROOT/versions/1.0/bin/molt-agent" ]
ok $? "the version directory holds the package's files and manifest"
is "$(stable_build)" "1.0" "bin/molt-installer is the version's copy"
is "$(jfield state)" "idle" "the journal is idle"
msg=$(consistent)
ok $? "consistent $msg"
"$INSTALLER" install "$P1" --keys "$T/keys" >"$T/out" 2>&1
is "$?" "0" "installing the same version again is a no-op"
"$INSTALLER" install "$P2" --keys "$T/keys" >"$T/out" 2>&1
is "$?" "3" "install onto an installed root is refused (upgrades go through apply)"
like "$(cat "$T/out")" "already has 1\.0 installed" "and says why"

# Apply a staged package tree: the agent would have staged it with
# molt_pkg_stage; here the tree install unpacked into a scratch root stands in.
"$INSTALLER" install "$P2" --keys "$T/keys" --root "$T/scratch" --state-dir "$T/scratch-state" \
    >/dev/null 2>&1
cp -a "$T/scratch/versions/2.0" "$UPG/bad-2.0"
echo "#" >>"$UPG/bad-2.0/bin/molt-agent"
inst apply "$UPG/bad-2.0" --task 12 >"$T/out" 2>&1
is "$?" "1" "a staged tree that differs from its manifest is refused"
like "$(cat "$T/out")" "bin/molt-agent" "naming the file"
is "$(link_of current) $(jfield state)" "1.0 idle" "nothing switched"
cp -a "$T/scratch/versions/2.0" "$UPG/stage-2.0"
inst apply "$UPG/stage-2.0" --task 12 --build-version 2.1 >"$T/out" 2>&1
is "$?" "1" "--build-version must agree with the manifest"
start_supervisor
wait_for 10 has_event_like '^start 1\.0 '
request_apply "$UPG/stage-2.0" --task 12
wait_for 10 state_is committed
ok $? "apply takes the version from manifest.json; the new version commits"
is "$(link_of current) $(link_of previous)" "2.0 1.0" "current and previous"
stop_supervisor

# A crash at each install fault point, then install again.
for point in install.after_move install.after_installer install.after_flip; do
    tap_have_fault_points || { tap_skip 2 "$point: $TAP_NO_FAULT_POINTS"; continue; }
    new_case "install-$point"
    MOLT_FAULT=$point "$INSTALLER" install "$P1" --keys "$KEYS" >"$T/out" 2>&1
    is "$?" "137" "$point: killed there"
    "$INSTALLER" install "$P1" --keys "$KEYS" >"$T/out" 2>&1
    rc=$?
    msg=$(consistent)
    ok $((rc + $?)) "$point: install again succeeds and is consistent $msg"
done

tap_done
