# hard_crash.sh: SIGKILL at the named fault points that upgrade_crash.sh
# leaves out, with the whole system running (agent, installer, launcher,
# control plane): every point of a rollback, as the launcher rolls back a
# build that cannot start, and the remaining points of an upgrade. After the
# service restarts, the task ends 2 or 3 (3 naming the rollback), with at most
# one switch, and the install is consistent. installer_crash.sh covers the same
# points with the installer alone.
set -u
. "$(dirname "$0")/lib/hard.sh"
tap_need_fault_points

ROLLBACK_POINTS="rollback.after_journal rollback.after_flip rollback.after_previous
rollback.after_journal_done"
UPGRADE_POINTS="apply.after_journal_switching apply.after_previous stage.before_rename
commit.after_installer"
n=0
for p in $ROLLBACK_POINTS $UPGRADE_POINTS; do n=$((n + 1)); done
tap_plan $((n * 4))
env_start crash2
publish "$V1" "$V2" "$VX"
restart_with
wait_for 30 registered || { echo "Bail out! agent did not register"; exit 1; }
cur=$V1

# kill_at POINT TARGET WANT_REGEX: a task to TARGET with POINT armed.
kill_at() {
    local p=$1 target=$2 want=$3 tid n
    restart_with MOLT_FAULT="$p"
    wait_for 30 version_is "$cur"
    tid=$(cp_create_task "$CID" "$target")
    cp_wait_task_status "$tid" 2 120 || [ "$CP_TASK_STATUS" = 3 ]
    like "$CP_TASK_STATUS: $CP_TASK_MESSAGE" "$want" "$p: task $tid to $target ends as it should (${CP_TASK_STATUS:-?}: $CP_TASK_MESSAGE)"
    fired "$p"
    ok $? "$p: the process was killed there"
    n=$(switches "$tid")
    [ "$n" -le 1 ] && { [ "$CP_TASK_STATUS" != 2 ] || [ "$n" -eq 1 ]; }
    ok $? "$p: at most one switch, one if it succeeded ($n)"
    [ "$CP_TASK_STATUS" = 2 ] && cur=$target
    consistent "$cur"
    ok $? "$p: consistent: current -> $(current_link), collector reports $(running_version), journal at rest"
}

# A build whose agent exits 3 at once: its trial fails after three starts and
# the launcher rolls back, dying at each point of the rollback in turn.
for p in $ROLLBACK_POINTS; do
    kill_at "$p" "$VX" "^3: health-check: rolled back: $VX exited 3 times during trial"
done
for p in $UPGRADE_POINTS; do
    [ "$cur" = "$V1" ] && want=$V2 || want=$V1
    kill_at "$p" "$want" "^(2: committed $want|3: .*)"
done

[ "$TAP_FAILED" -eq 0 ] || show_log 80
tap_done
