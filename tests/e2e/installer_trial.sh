# installer_trial.sh: builds that fail their trial are rolled back by the old
# version's installer: one that exits at once, one that never commits (the
# deadline, under --supervise and in exec mode through the watchdog), one that
# crash-loops; a manual rollback during a trial; a second task while one is on
# trial.
set -u
. "$(dirname "$0")/lib/installer.sh"

tap_plan 38

# upgrade_to CASE KIND TIMEOUT: 1.0 steady, supervised, applies a 2.0 of KIND for task 12.
upgrade_to() {
    new_case "$1" "$3"
    install_by_hand 1.0 steady
    stage 2.0 "$2" 12
    start_supervisor
    wait_for 10 has_event_like '^start 1\.0 '
    request_apply "$UPG/stage-2.0" --task 12 --build-version 2.0
}

back_on_old() { state_is rolled-back && [ "$(last_start)" = 1.0 ]; }

# --- a build that exits at once ---
upgrade_to exit exit 20s
wait_for 15 back_on_old
ok $? "exits at once: rolled back, the old version runs again"
is "$(outcome 12)" "rolled-back|2.0|2.0 exited 3 times during trial" \
    "the old agent can read why (task 12 rolled back: 2.0 exited 3 times during trial)"
is "$(count_events '^start 2\.0 ')" "3" "the new version was started trial_max_starts times"
is "$(link_of current)" "1.0" "current names the old version"
is "$(link_of previous)" "" "previous is as it was before the switch (none)"
is "$(stable_build)" "1.0" "the stable installer is still the old version's"
log="$STATE/trial-2.0.log"
like "$(head -n 1 "$log" 2>/dev/null)" "trial of 2\.0 for task 12: rolled back: 2\.0 exited 3 times" \
    "the failed version's log is kept, with the reason"
is "$(grep -c '2.0: fatal: cannot read the configuration' "$log")" "3" \
    "the log holds the agent's stderr from each start"
is "$(grep -c 'exited with status 1' "$log")" "3" "and how each start ended"
msg=$(consistent)
ok $? "consistent after the rollback $msg"
# Never a second switch for the same task and build.
stage 2.0 healthy 12
inst apply "$UPG/stage-2.0" --task 12 --build-version 2.0 >/dev/null 2>"$T/err"
is "$?" "3" "the rolled-back task cannot switch again"
like "$(cat "$T/err")" "task 12 already switched to 2\.0 \(rolled-back\)" "and says why"
inst commit --task 12 >/dev/null 2>"$T/err"
is "$?" "3" "a late commit of the rolled-back task is refused"
like "$(cat "$T/err")" "task 12 was rolled back: 2\.0 exited 3 times" "and says why"

# --- a build that never commits: the deadline ---
upgrade_to deadline hang 2s
wait_for 15 back_on_old
ok $? "never commits: rolled back at the deadline"
is "$(outcome 12)" "rolled-back|2.0|2.0 did not commit within 2 s of the switch" \
    "the reason names the deadline"
is "$(count_events '^start 2\.0 ')" "1" "the hanging version was started once"
like "$(cat "$T/supervisor.log")" "installer.trial_deadline task=12 version=2\.0" \
    "the supervisor stopped it at the deadline"
like "$(cat "$STATE/trial-2.0.log" 2>/dev/null)" "2\.0: waiting for the server" \
    "its last output is kept"

# --- a build that crash-loops ---
upgrade_to crash crash 20s
wait_for 15 back_on_old
ok $? "crash-loops: rolled back"
is "$(outcome 12)" "rolled-back|2.0|2.0 exited 3 times during trial" "the reason counts the exits"
is "$(grep -c 'killed by signal 11' "$STATE/trial-2.0.log")" "3" "each crash is in the trial log"
msg=$(consistent)
ok $? "consistent $msg"

# --- a manual rollback during a trial; a second task meanwhile ---
upgrade_to manual hang 60s
wait_for 10 has_event_like '^start 2\.0 '
ok $? "the new version runs on trial"
is "$(jfield state)" "trial" "the journal says trial"
stage 3.0 healthy 13
inst apply "$UPG/stage-3.0" --task 13 --build-version 3.0 >/dev/null 2>"$T/err"
is "$?" "3" "another task cannot switch during a trial"
like "$(cat "$T/err")" "another task is in progress: task 12 is trial" "and says why"
inst gc >/dev/null 2>"$T/err"
is "$?" "3" "gc waits until the trial ends"
inst rollback --reason "operator said so" >/dev/null 2>&1
is "$?" "0" "manual rollback during the trial"
is "$(outcome 12)" "rolled-back|2.0|manual rollback: operator said so" "recorded with its reason"
wait_for 10 back_on_old
ok $? "the supervisor notices and starts the old version"
is "$(link_of current)" "1.0" "current names the old version"
like "$(cat "$T/supervisor.log")" "installer.current_changed running=2\.0 current=1\.0" "the supervisor says why it restarted"

# --- exec mode (as under systemd): the watchdog enforces the deadline ---
new_case watchdog 2s
install_by_hand 1.0 steady
stage 2.0 hang 12
inst apply "$UPG/stage-2.0" --task 12 --build-version 2.0 >/dev/null 2>&1
"$ROOT/bin/molt-installer" launch >>"$T/launch.log" 2>&1 &
pid=$!
wait_for 10 has_event_like "^start 2\\.0 $pid\$"
ok $? "launch execs the new version in its own process"
{ wait "$pid"; } 2>/dev/null # no "Killed" job notice in the log
is "$?" "137" "at the deadline the watchdog kills the agent (SIGKILL)"
is "$(outcome 12)" "rolled-back|2.0|2.0 did not commit within 2 s of the switch" \
    "and rolls back first"
"$ROOT/bin/molt-installer" launch >>"$T/launch.log" 2>&1 &
pid=$!
wait_for 10 has_event_like "^start 1\\.0 $pid\$"
ok $? "the next launch (the service manager's restart) runs the old version"
kill -TERM "$pid"
wait "$pid"
msg=$(consistent)
ok $? "consistent $msg"

tap_done
