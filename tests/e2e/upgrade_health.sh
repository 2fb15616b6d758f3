# upgrade_health.sh: the trial's health check (issue 19). [install] health_command
# runs in the new agent after its first acknowledged heartbeat and must pass
# health_checks times before the commit: a failing check rolls back with its
# last output line in the task's reason (as the control plane records it), two
# passing checks commit, a hung check is killed (with what it started) at
# health_timeout and rolls back, and an agent SIGKILLed during the check
# still ends consistent.
set -u
. "$(dirname "$0")/lib/upgrade.sh"

tap_plan 22
TRIAL_TIMEOUT=20s env_start health
publish "$V1" "$V2"

# One script for every case; $WORK/health-mode says how it behaves, and each
# run leaves a line in $WORK/health-runs.
HEALTH=$WORK/health.sh
cat >"$HEALTH" <<SH
#!/bin/sh
echo "run \$1" >>"$WORK/health-runs"
case \$(cat "$WORK/health-mode") in
fail) echo "checking collector"; printf 'disk check: /data is full\033[31m\n' >&2; exit 1 ;;
hang) echo "checking collector"; sleep 3600 & echo \$! >"$WORK/health-child"; wait ;;
*) [ "\$(wc -l <"$WORK/health-runs")" -lt 2 ] || sleep 2; echo "collector healthy"; exit 0 ;;
esac
SH
chmod 755 "$HEALTH"
cat >>"$WORK/molt.conf" <<CONF
[install]
health_command = $HEALTH 'the collector'
health_checks = 2
health_interval = 1s
health_timeout = 4s
# the trial's check only: the watch's repeated check is upgrade_watch.sh's
watch_window = 0
CONF
status_shows() { "$ROOT/current/bin/molt-agent" status 2>/dev/null | grep -q "$1"; }
runs() { [ -e "$WORK/health-runs" ] && wc -l <"$WORK/health-runs" || echo 0; }

agent_start
wait_for 30 registered || { echo "Bail out! agent did not register"; exit 1; }
is "$(running_version)" "$V1" "collector reports $V1"

# 1. a check that fails: rollback, 3, its last output line in the reason
echo fail >"$WORK/health-mode"
tid=$(cp_create_task "$CID" "$V2")
cp_wait_task_status "$tid" 3 120
ok $? "a failing health check ends task $tid 3"
like "$CP_TASK_MESSAGE" \
    "^health-check: rolled back: health check 1/2 failed \(exit 1\): disk check: /data is full\?\[31m$" \
    "the reason carries the check's last line, control characters masked ($CP_TASK_MESSAGE)"
wait_for 30 version_is "$V1"
ok $? "the old version $V1 heartbeats again"
is "$(current_link)" "$V1" "current -> versions/$V1 again"
is "$(runs)" 1 "the check ran once (the first failure decides)"
grep -q 'upgrade.health_output.*line="checking collector"' "$WORK/agent.log"
ok $? "the check's output is kept in the agent's log"
like "$(cat "$STATE/trial-$V2.log" 2>/dev/null)" "rolled back: health check 1/2 failed" \
    "the trial log names the health check"

# 2. a check that passes twice: commit, 2
echo pass >"$WORK/health-mode"
: >"$WORK/health-runs"
tid=$(cp_create_task "$CID" "$V2")
wait_for 60 status_shows "health check: 1/2 passed"
ok $? "molt-agent status shows the checks passed so far"
cp_wait_task_status "$tid" 2 120
ok $? "two passing checks: task $tid ends 2 ($CP_TASK_MESSAGE)"
is "$(runs)" 2 "the check ran health_checks = 2 times"
grep -q "run the collector" "$WORK/health-runs"
ok $? "the quoted argument reached the command as one word (no shell)"
wait_for 30 version_is "$V2"
ok $? "collector reports $V2"

# 3. a check that hangs: killed at health_timeout, with its child, and 3
echo hang >"$WORK/health-mode"
: >"$WORK/health-runs"
tid=$(cp_create_task "$CID" "$V1")
cp_wait_task_status "$tid" 3 120
ok $? "a hung health check ends task $tid 3"
like "$CP_TASK_MESSAGE" "health check 1/2 failed \(timed out after 4000ms, killed\): checking collector" \
    "the reason says it timed out ($CP_TASK_MESSAGE)"
child=$(cat "$WORK/health-child" 2>/dev/null)
child_gone() { ! kill -0 "$child" 2>/dev/null; }
[ -n "$child" ] && wait_for 10 child_gone
ok $? "what the hung check started was killed with it (process group)"
wait_for 30 version_is "$V2"
ok $? "the old version $V2 heartbeats again"

# 4. SIGKILL of the new agent during the check: launch counts the next start,
# the restarted agent checks again and commits; one switch, consistent install.
if tap_have_fault_points; then
    echo pass >"$WORK/health-mode"
    : >"$WORK/health-runs"
    agent_stop
    export MOLT_FAULT=trial.health_check MOLT_FAULT_ONCE_DIR="$WORK/once"
    mkdir -p "$MOLT_FAULT_ONCE_DIR"
    agent_start
    unset MOLT_FAULT MOLT_FAULT_ONCE_DIR
    wait_for 30 version_is "$V2"
    tid=$(cp_create_task "$CID" "$V1")
    cp_wait_task_status "$tid" 2 120
    ok $? "killed during the health check: task $tid still ends 2 ($CP_TASK_MESSAGE)"
    [ -e "$WORK/once/trial.health_check" ]
    ok $? "the fault point fired"
    is "$(switches "$tid")" 1 "one switch for the task"
    is "$(current_link)" "$V1" "current -> versions/$V1"
else
    tap_skip 4 "$TAP_NO_FAULT_POINTS"
fi
# rollback --task ends only that task's trial: at rest it is refused, changing nothing
out=$("$ROOT/bin/molt-installer" rollback --task 999 --reason x 2>&1)
rc=$?
is "$rc:$out:$(current_link)" "3:molt-installer: rollback: no trial of task 999 in progress:$V1" \
    "rollback --task without that task's trial exits 3 and leaves current alone"
[ "$TAP_FAILED" -eq 0 ] || show_log 80
tap_done
