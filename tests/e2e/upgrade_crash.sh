# upgrade_crash.sh: the agent and the installer killed (SIGKILL) at every named
# point of an upgrade, and during the download: after the restart the task still
# ends 2 or 3, with at most one switch, and the install is consistent
# (acceptance 5 of the self-upgrade issue). Each point fires once
# (MOLT_FAULT_ONCE_DIR), as a crash followed by recovery would.
set -u
. "$(dirname "$0")/lib/upgrade.sh"
tap_need_fault_points

POINTS="upgrade.after_download upgrade.after_staging apply.after_move apply.after_flip
apply.after_journal_trial upgrade.after_switch launch.after_count_start upgrade.before_commit
commit.after_journal upgrade.after_commit"
n=0
for p in $POINTS; do n=$((n + 1)); done
tap_plan $((n * 4 + 4))
env_start crash
publish "$V1" "$V2"

# restart_with_fault POINT: the supervisor (and so every agent and installer it
# starts) gets the fault in its environment.
restart_with_fault() {
    agent_stop
    export MOLT_FAULT=$1 MOLT_FAULT_ONCE_DIR="$WORK/once/$1"
    mkdir -p "$MOLT_FAULT_ONCE_DIR"
    agent_start
    unset MOLT_FAULT MOLT_FAULT_ONCE_DIR
}

journal_at_rest() {
    case $("$ROOT/bin/molt-installer" status --json 2>/dev/null | cp_json journal.state) in
    idle | committed | rolled-back) return 0 ;;
    esac
    return 1
}

agent_start
wait_for 30 registered || { echo "Bail out! agent did not register"; exit 1; }
cur=$V1
for p in $POINTS; do
    restart_with_fault "$p"
    wait_for 30 version_is "$cur"
    [ "$cur" = "$V1" ] && want=$V2 || want=$V1
    tid=$(cp_create_task "$CID" "$want")
    cp_wait_task_status "$tid" 2 90 || [ "$CP_TASK_STATUS" = 3 ]
    ok $? "$p: task $tid ends 2 or 3 (${CP_TASK_STATUS:-?}: $CP_TASK_MESSAGE)"
    [ -e "$WORK/once/$p/$p" ]
    ok $? "$p: the process was killed there"
    n=$(switches "$tid")
    [ "$n" -le 1 ] && { [ "$CP_TASK_STATUS" != 2 ] || [ "$n" -eq 1 ]; }
    ok $? "$p: at most one switch, one if it succeeded ($n)"
    [ "$CP_TASK_STATUS" = 2 ] && cur=$want
    wait_for 30 version_is "$cur" && [ "$(current_link)" = "$cur" ] && wait_for 10 journal_at_rest
    ok $? "$p: consistent: current -> $(current_link), collector reports $(running_version), journal at rest"
done

# Killed in the middle of a download: the restarted agent resumes the partial file.
agent_stop
agent_start
wait_for 30 version_is "$cur"
start_partial_download "$cur"
pid=$(agent_pid)
kill -KILL "$pid"
ok $? "agent (pid $pid) killed with $(stat -c %s "$UPG/task-$tid/package") of $size bytes downloaded"
cp_faults_reset
cp_wait_task_status "$tid" 2 90
ok $? "the task still ends 2 ($CP_TASK_MESSAGE)"
line=$(grep "upgrade.download task=$tid " "$WORK/agent.log" | tail -n 1)
got=$(printf '%s' "$line" | sed -n 's/.* bytes=\([0-9]*\) .*/\1/p')
[ -n "$got" ] && [ "$got" -lt "$size" ] && printf '%s' "$line" | grep -q "restarts=0"
ok $? "the restarted agent resumed: it fetched $got of $size bytes"
is "$(switches "$tid")" 1 "exactly one switch"
[ "$TAP_FAILED" -eq 0 ] || show_log 80
tap_done
