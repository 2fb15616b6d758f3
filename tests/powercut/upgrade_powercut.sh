# upgrade_powercut.sh: power cuts during a real upgrade (agent, installer,
# signed packages, the reference control plane over HTTPS on loopback). The
# install root, state dir and upgrade dir are on molt-powercutfs. At each
# fault point of the agent's pipeline and of the installer steps it runs, the
# process reaching it is frozen there (MOLT_FAULT_ACTION=stop), then power is
# cut: every process of the service is killed and what was not synced is lost.
# After the reboot the service starts again and the task must end 2 or 3 with
# one final status, and the install be consistent.
# make check runs a sample (MOLT_POWERCUT_FULL unset); make check-powercut all.
set -u
. "$MOLT_TOP_SRCDIR/tests/e2e/lib/upgrade.sh"
. "$MOLT_TOP_SRCDIR/tests/powercut/pcfs_lib.sh"
pcfs_need

POINTS="upgrade.after_staging apply.after_flip upgrade.before_commit"
[ -z "${MOLT_POWERCUT_FULL:-}" ] || POINTS="upgrade.after_download upgrade.after_staging
apply.after_move apply.after_flip apply.after_journal_trial upgrade.after_switch
launch.after_count_start upgrade.before_commit commit.after_journal upgrade.after_commit"
n=0
for p in $POINTS; do n=$((n + 1)); done
tap_plan $((n * 5))
env_start powercut
trap '[ -z "$AGENT_PID" ] || kill -KILL "$AGENT_PID"; kill_case; pcfs_cut; env_cleanup' EXIT
publish "$V1" "$V2"

# The installed host moves onto the power-cut file system, durable as it is.
mkdir -p "$WORK/durable" "$WORK/mnt" "$UPG" "$STATE"
mv "$ROOT" "$STATE" "$UPG" "$WORK/durable/"
PCFS_LOG=$WORK/pcfs.log
pcfs_mount_at "$WORK/durable" "$WORK/live" "$WORK/mnt" || { echo "Bail out! mount"; exit 1; }
sed -i -e "s|$WORK/root|$WORK/mnt/root|g" -e "s|$WORK/state|$WORK/mnt/state|g" \
    -e "s|$WORK/upgrade|$WORK/mnt/upgrade|g" "$MOLT_CONFIG"
ROOT=$WORK/mnt/root STATE=$WORK/mnt/state UPG=$WORK/mnt/upgrade
MOLT_PC_CASE=$WORK/service
export MOLT_PC_CASE

# power_cut: the service and everything it started die; unsynced state is lost.
power_cut() {
    # The service loop first (a fork of this shell, without MOLT_PC_CASE in
    # its /proc environ), then everything it started.
    [ -z "$AGENT_PID" ] || kill -KILL "$AGENT_PID" 2>/dev/null
    kill_case
    wait "$AGENT_PID" 2>/dev/null
    AGENT_PID=
    pcfs_reboot
}

journal_at_rest() {
    case $("$ROOT/bin/molt-installer" status --json 2>/dev/null | cp_json journal.state) in
    idle | committed | rolled-back) return 0 ;;
    esac
    return 1
}

# one_final TASK: the control plane heard one final status, and it was the last.
one_final() {
    local s
    s=$(task_statuses "$1")
    case " $s " in
    *" 2 "*" 3 "* | *" 3 "*" 2 "*) return 1 ;;
    esac
    case $s in
    *2 | *3) return 0 ;;
    esac
    return 1
}

complete_current() {
    local v
    v=$(current_link)
    [ -x "$ROOT/versions/$v/bin/molt-agent" ] && [ -x "$ROOT/versions/$v/bin/molt-installer" ] &&
        cmp -s "$ROOT/bin/molt-installer" "$ROOT/versions/$v/bin/molt-installer"
}

agent_start
wait_for 30 registered || { echo "Bail out! agent did not register"; show_log; exit 1; }
cur=$V1
for p in $POINTS; do
    wait_for 30 version_is "$cur"
    power_cut
    export MOLT_FAULT=$p MOLT_FAULT_ONCE_DIR="$WORK/once/$p" MOLT_FAULT_ACTION=stop
    mkdir -p "$MOLT_FAULT_ONCE_DIR"
    agent_start
    unset MOLT_FAULT MOLT_FAULT_ONCE_DIR MOLT_FAULT_ACTION
    wait_for 30 version_is "$cur"
    [ "$cur" = "$V1" ] && want=$V2 || want=$V1
    tid=$(cp_create_task "$CID" "$want")
    wait_for 90 test -e "$WORK/once/$p/$p"
    ok $? "$p: task $tid reached the point"
    sleep 0.3 # the process is frozen there; the cut comes now
    power_cut
    agent_start
    cp_wait_task_status "$tid" 2 120 || [ "$CP_TASK_STATUS" = 3 ]
    ok $? "$p: task $tid ends 2 or 3 (${CP_TASK_STATUS:-?}: $CP_TASK_MESSAGE)"
    one_final "$tid"
    ok $? "$p: one final status reported ($(task_statuses "$tid"))"
    [ "$CP_TASK_STATUS" = 2 ] && cur=$want
    wait_for 30 version_is "$cur" && [ "$(current_link)" = "$cur" ] && wait_for 10 journal_at_rest
    ok $? "$p: consistent: current -> $(current_link), collector reports $(running_version), journal at rest"
    complete_current
    ok $? "$p: current is complete and the stable installer is its copy"
done
tap_done
