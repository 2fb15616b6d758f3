# installer_powercut.sh: the power-cut matrix of molt-installer. The install
# root, state dir and upgrade dir live on molt-powercutfs. For every fault point
# of apply, launch, commit and rollback, and in the middle of the journal's
# atomic writes (fs.write.*), the process is SIGKILLed there (MOLT_FAULT), then
# the power is cut: every process of the case is killed and what was not synced
# is lost. The host "reboots" (remount, the service starts `launch --supervise`)
# and must settle with nobody's help: current names one complete version whose
# manifest files are there, previous is complete or absent, the journal parses,
# is at rest and agrees with the links, the task has its outcome, the stable
# installer is current's. Variant "twice" cuts power again once it has
# settled: what recovery wrote must have been durable too.
# make check runs a sample (MOLT_POWERCUT_FULL unset); make check-powercut all.
set -u
. "$MOLT_TOP_SRCDIR/tests/e2e/lib/installer.sh"
. "$MOLT_TOP_SRCDIR/tests/powercut/pcfs_lib.sh"
pcfs_need
tap_need_fault_points
trap 'kill_case; pcfs_cut; cleanup' EXIT

# scenario:fault point:expected state:expected current (as in installer_crash.sh;
# "any" when the cut may undo the step that was in progress; a manual rollback
# cut in its first journal write never happened, and the trial goes on).
ALL="
apply:fs.write.before_rename:any:1.0
apply:fs.write.before_dir_sync:any:1.0
apply:apply.after_journal_switching:rolled-back:1.0
apply:apply.after_move:rolled-back:1.0
apply:apply.after_previous:rolled-back:1.0
apply:apply.after_flip:rolled-back:1.0
apply:apply.after_journal_trial:committed:2.0
launch:launch.after_count_start:committed:2.0
exec:launch.before_exec:committed:2.0
deadline:launch.after_deadline_kill:rolled-back:1.0
commit:fs.write.before_dir_sync:committed:2.0
commit:commit.after_journal:committed:2.0
commit:commit.after_installer:committed:2.0
manual:fs.write.before_dir_sync:committed:2.0
manual:rollback.after_journal:rolled-back:1.0
manual:rollback.after_flip:rolled-back:1.0
manual:rollback.after_previous:rolled-back:1.0
manual:rollback.after_journal_done:rolled-back:1.0
auto:rollback.after_journal:rolled-back:1.0
auto:rollback.after_flip:rolled-back:1.0
auto:rollback.after_previous:rolled-back:1.0
auto:rollback.after_journal_done:rolled-back:1.0
"
SAMPLE="apply:fs.write.before_dir_sync apply:apply.after_move apply:apply.after_journal_trial
commit:commit.after_journal manual:rollback.after_flip auto:rollback.after_previous"
VARIANTS="once twice"
[ -n "${MOLT_POWERCUT_FULL:-}" ] || VARIANTS=once
CASES=$(echo "$ALL" | while IFS=: read -r s p st c; do
    [ -n "$s" ] || continue
    if [ -n "${MOLT_POWERCUT_FULL:-}" ] || echo " $SAMPLE " | tr '\n' ' ' | grep -q " $s:$p "; then
        echo "$s:$p:$st:$c"
    fi
done)
n_cases=$(echo "$CASES" | grep -c .)
n_var=$(echo "$VARIANTS" | wc -w)
tap_plan $((n_cases * n_var * 5))
tap_diag "matrix: $n_cases fault points x $n_var cut variants ($VARIANTS)"

# power_cut: all processes die, unsynced state is lost; the host boots again.
power_cut() {
    kill_case
    wait 2>/dev/null
    pcfs_reboot || return 1
}

# pc_case NAME KIND: a fresh power-cut file system holding 1.0 installed and
# 2.0 staged, all of it durable (as after an install and a finished download).
pc_case() {
    new_case "$1" 20s
    pcfs_cut
    mkdir -p "$T/durable" "$T/mnt"
    PCFS_LOG=$T/pcfs.log
    pcfs_mount_at "$T/durable" "$T/live" "$T/mnt" || return 1
    ROOT=$T/mnt/root STATE=$T/mnt/state UPG=$T/mnt/upgrade
    mkdir -p "$STATE" "$UPG"
    sed -i -e "s|^state_dir = .*|state_dir = $STATE|" -e "s|^upgrade_dir = .*|upgrade_dir = $UPG|" \
        -e "s|^root = .*|root = $ROOT|" "$MOLT_CONFIG"
    install_by_hand 1.0 steady
    stage 2.0 "$2" 12
    pcfs_sync_tree "$T/mnt"
}

# complete VERSION: every file of the version is there with its content.
complete() {
    local d=$ROOT/versions/$1
    [ -x "$d/bin/molt-agent" ] && grep -q "start $1" "$d/bin/molt-agent" &&
        [ "$(tail -n 1 "$d/bin/molt-installer" | sed -n 's/^#molt-test-build //p')" = "$1" ] &&
        cmp -s <(head -c "$(stat -c %s "$INSTALLER")" "$d/bin/molt-installer") "$INSTALLER"
}

# journal_agrees: the journal parses and its versions are the links' (or the
# cut undid its first write). Prints the disagreement.
journal_agrees() {
    [ ! -e "$STATE/journal.json" ] || pcfs_journal_agrees "$STATE/journal.json" "$ROOT"
}

journal_state() {
    if [ -e "$STATE/journal.json" ]; then jfield state; else echo "no journal: the cut undid its first write"; fi
}

settled_pc() { # STATE VERSION
    [ "$(link_of current)" = "$2" ] || return 1
    case $1 in
    any) resting || [ ! -e "$STATE/journal.json" ] ;;
    *) state_is "$1" ;;
    esac
}

check_settled() { # NAME STATE VERSION
    local name=$1 msg prev
    wait_for 15 settled_pc "$2" "$3"
    ok $? "$name: settles on $3, $2 (state $(jfield state), current $(link_of current))"
    msg=$(consistent)
    prev=$(link_of previous)
    complete "$(link_of current)" && { [ -z "$prev" ] || complete "$prev"; } || msg="$msg; a version is incomplete"
    [ -z "$msg" ]
    ok $? "$name: one complete current, previous complete or absent $msg"
    msg=$(journal_agrees)
    ok $? "$name: the journal parses and agrees with the links (${msg:-$(journal_state)})"
}

outcome_ok() { # WANT_STATE RESULT
    case $1:$2 in
    committed:"committed|2.0|"*|rolled-back:"rolled-back|2.0|"*) return 0 ;;
    any:none|any:"rolled-back|2.0|"*) return 0 ;;
    esac
    return 1
}

while IFS=: read -r scenario point want_state want_cur; do
    [ -n "$scenario" ] || continue
    kind=healthy timeout=20s
    case $scenario in
    deadline) kind=hang timeout=2s ;;
    auto) kind=exit ;;
    esac
    for variant in $VARIANTS; do
        name="$scenario:$point:$variant"
        MOLT_PC_CASE=$TOP/$scenario-$point-$variant
        export MOLT_PC_CASE
        pc_case "$scenario-$point-$variant" "$kind"
        sed -i "s|^trial_timeout = .*|trial_timeout = $timeout|" "$MOLT_CONFIG"
        status=$(crash "$scenario" "$point")
        grep -q "point=$point action=kill" "$T"/*.log "$T"/*.out 2>/dev/null
        ok $? "$name: killed at the fault point (status $status)"
        power_cut
        start_supervisor
        if [ "$variant" = twice ]; then
            wait_for 15 settled_pc "$want_state" "$want_cur"
            power_cut
            start_supervisor
        fi
        check_settled "$name" "$want_state" "$want_cur"
        res=$(outcome 12)
        [ -e "$STATE/journal.json" ] || res=none
        outcome_ok "$want_state" "$res"
        ok $? "$name: the task has its outcome ($res)"
        stop_supervisor
        kill_case
    done
done <<EOF2
$CASES
EOF2

tap_done
