# install_powercut.sh: power cuts during the first install (`molt-installer
# install` of a signed package into an empty root on molt-powercutfs). At each
# point of the install (staging, the move into versions/, the stable
# installer's copy, the journal's first write, the current link) the installer
# is SIGKILLed and the power cut. After the reboot the root must hold either no
# version (no current) or one complete, manifest-valid version as current, and
# running install again (as a package's postinst retry would) must complete.
# Variant "twice" cuts power again once that rerun has finished: what it wrote
# must be durable. make check runs a sample; make check-powercut all of it.
set -u
. "$MOLT_TOP_SRCDIR/tests/e2e/lib/installer.sh"
. "$MOLT_TOP_SRCDIR/tests/powercut/pcfs_lib.sh"
pcfs_need
trap 'kill_case; pcfs_cut; cleanup' EXIT
PACK="$MOLT_TOP_BUILDDIR/packaging/molt-pack"

# scenario:point. "install" cuts a first install there; "rerun" first cuts
# one at install.after_installer (the stable installer's copy is durable), so
# that the rerun's first atomic write is the journal's, and cuts the rerun.
ALL="install:stage.before_rename install:install.after_move install:fs.write.before_rename
install:fs.write.before_dir_sync install:install.after_installer install:install.after_flip
rerun:fs.write.before_rename rerun:fs.write.before_dir_sync"
SAMPLE="install:install.after_move rerun:fs.write.before_dir_sync"
VARIANTS="once twice"
if [ -z "${MOLT_POWERCUT_FULL:-}" ]; then ALL=$SAMPLE VARIANTS=once; fi
n_cases=$(echo $ALL | wc -w)
n_var=$(echo $VARIANTS | wc -w)
tap_plan $((n_cases * n_var * 4))
tap_diag "matrix: $n_cases install points x $n_var cut variants ($VARIANTS)"

# A signed package of a hand-made 1.0, made once, off the power-cut mount.
new_case pkg
"$PACK" keygen --out "$T/signing" >/dev/null 2>&1
mkdir -p "$T/keys" "$T/pkgs"
cp "$T"/signing/*.pub "$T/keys/"
KEYS=$T/keys
make_version "$T/tree" 1.0 steady
ARCH=$("$PACK" arch)
PKG=$T/pkgs/molt-1.0-linux-$ARCH.tar.gz
"$PACK" build -q --version 1.0 --arch "$ARCH" "$T/tree" -o "$T/pkgs" >>"$T/pack.log" 2>&1 &&
    "$PACK" sign -q --key "$(ls "$T"/signing/*.key)" "$PKG" >>"$T/pack.log" 2>&1 ||
    { echo "Bail out! molt-pack: $(tail -n 3 "$T/pack.log")"; exit 1; }

# pc_empty NAME: a fresh, empty power-cut file system for the root and state.
pc_empty() {
    new_case "$1"
    pcfs_cut
    mkdir -p "$T/durable" "$T/mnt"
    PCFS_LOG=$T/pcfs.log
    pcfs_mount_at "$T/durable" "$T/live" "$T/mnt" || return 1
    ROOT=$T/mnt/root STATE=$T/mnt/state UPG=$T/mnt/upgrade
    sed -i -e "s|^state_dir = .*|state_dir = $STATE|" -e "s|^upgrade_dir = .*|upgrade_dir = $UPG|" \
        -e "s|^root = .*|root = $ROOT|" "$MOLT_CONFIG"
    mkdir -p "$STATE" "$UPG" && pcfs_fsync "$T/mnt"
}

install_1() { "$INSTALLER" install "$PKG" --keys "$KEYS" >>"$T/install.out" 2>&1; }

power_cut() {
    kill_case
    pcfs_reboot
}

# one_or_none: no current, or current names a complete, manifest-valid
# version and bin/molt-installer is its copy; the journal, if any, parses and
# is at rest. Prints what is wrong.
one_or_none() {
    local cur
    cur=$(link_of current)
    if [ -n "$cur" ]; then
        pcfs_manifest_valid "$ROOT/versions/$cur" || return 1
        cmp -s "$ROOT/bin/molt-installer" "$ROOT/versions/$cur/bin/molt-installer" ||
            { echo "bin/molt-installer is not $cur's"; return 1; }
    fi
    [ ! -e "$STATE/journal.json" ] || resting || { echo "journal: state '$(jfield state)'"; return 1; }
}

for c in $ALL; do
    scenario=${c%%:*} point=${c#*:}
    for variant in $VARIANTS; do
        name="$scenario:$point:$variant"
        MOLT_PC_CASE=$TOP/$scenario-$point-$variant
        export MOLT_PC_CASE
        pc_empty "$scenario-$point-$variant"
        if [ "$scenario" = rerun ]; then
            MOLT_FAULT=install.after_installer install_1
            power_cut
        fi
        MOLT_FAULT=$point install_1
        rc=$?
        power_cut
        grep -q "point=$point action=kill" "$T/install.out"
        ok $? "$name: killed at the point (status $rc)"
        msg=$(one_or_none)
        ok $? "$name: after the cut: ${msg:-current '$(link_of current)' (none or one complete version)}"
        install_1
        rc=$?
        after=
        if [ "$variant" = twice ]; then power_cut; after=", and survives a cut after it"; fi
        is "$rc $(link_of current)" "0 1.0" "$name: install again completes$after"
        msg=$(one_or_none)
        [ -z "$msg" ] && [ "$(link_of current)" = 1.0 ] && [ "$(jfield state)" = idle ]
        ok $? "$name: 1.0 complete, manifest-valid, journal idle ${msg:-(state $(jfield state))}"
        kill_case
    done
done

tap_done
