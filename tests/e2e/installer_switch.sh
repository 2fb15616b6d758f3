# installer_switch.sh: the happy path under launch --supervise: the running
# agent applies a staged build and exits 75, the new one starts on trial and
# commits; a second upgrade; a manual rollback; gc; stopping the supervisor.
set -u
. "$(dirname "$0")/lib/installer.sh"

tap_plan 40

new_case switch
install_by_hand 1.0 steady
stage 2.0 healthy 12
start_supervisor
wait_for 10 has_event_like '^start 1\.0 '
ok $? "the supervisor starts the installed version"

# The handshake: the agent runs apply, which returns 0, and exits 75.
request_apply "$UPG/stage-2.0" --task 12 --build-version 2.0
wait_for 10 state_is committed
ok $? "the new version commits its trial"
is "$(link_of current)" "2.0" "current names the new version"
is "$(link_of previous)" "1.0" "previous names the old one"
is "$(outcome 12)" "committed|2.0|" "the journal records task 12 as committed"
has_event 'apply-ok 1.0'
ok $? "the old agent's apply returned 0"
grep -q 'switched to 2.0 (task 12)' "$T/apply.out"
ok $? "apply says what it did"
has_event 'commit-ok 2.0'
ok $? "the new agent's commit returned 0"
is "$(count_events '^start 2\.0 ')" "1" "the new version started once (exit 75 restarts at once)"
is "$(stable_build)" "2.0" "bin/molt-installer is now the committed version's copy"
[ ! -e "$UPG/stage-2.0" ]
ok $? "the staged build was moved, not copied"
is "$(jfield starts)" "1" "the journal counted one trial start"
msg=$(consistent)
ok $? "the install is consistent $msg"

out=$(inst status)
like "$out" "current: +2\.0" "status shows current"
like "$out" "previous: +1\.0" "status shows previous"
like "$out" "task 12: 1\.0 -> 2\.0: committed 2\.0" "status shows the outcome"
json=$(inst status --json)
is "$("$PY" -c 'import json,sys; j=json.loads(sys.argv[1]); print(j["current"], j["previous"], j["journal"]["state"], " ".join(j["versions"]))' "$json")" \
    "2.0 1.0 committed 1.0 2.0" "status --json"

# A second upgrade, and its restarts.
stage 3.0 healthy 13
request_apply "$UPG/stage-3.0" --task 13 --build-version 3.0
wait_for 10 state_is committed
wait_for 10 has_event 'commit-ok 3.0'
is "$(link_of current) $(link_of previous)" "3.0 2.0" "a second upgrade: current 3.0, previous 2.0"
is "$(outcome 13)" "committed|3.0|" "task 13 committed"
is "$(outcome 12)" "committed|2.0|" "task 12's outcome is kept"

# The same task and version never switch twice; nor does the current version.
stage 3.0b healthy 13
inst apply "$UPG/stage-3.0b" --task 14 --build-version 3.0 >/dev/null 2>"$T/err"
is "$?" "3" "applying the running version again is refused (exit 3)"
like "$(cat "$T/err")" "already the current version" "and says why"
inst apply "$UPG/stage-3.0b" --task 12 --build-version 2.0 >/dev/null 2>"$T/err"
is "$?" "3" "a task cannot switch to the same version twice"
like "$(cat "$T/err")" "task 12 already switched to 2.0 \(committed\)" "and says why"

# A manual rollback from the committed state swaps current and previous, and
# the supervisor restarts the agent of the version that is current now.
inst rollback --reason "operator test" >"$T/out" 2>&1
is "$?" "0" "manual rollback succeeds"
is "$(link_of current) $(link_of previous)" "2.0 3.0" "rollback: current 2.0, previous 3.0"
is "$(outcome '')" "rolled-back|3.0|manual rollback: operator test" "the manual rollback is recorded"
wait_for 10 sh -c "[ \"\$(grep '^start ' '$EVENTS' | tail -n 1 | cut -d' ' -f2)\" = 2.0 ]"
ok $? "the supervisor restarts the agent of the version rolled back to"
is "$(stable_build)" "2.0" "the stable installer follows current"
msg=$(consistent)
ok $? "consistent after the manual rollback $msg"

# gc keeps current and previous, and the upgrade-dir entries named --keep.
mkdir -p "$UPG/task-99/part" "$UPG/stale-task" "$ROOT/versions/.discard-x-1-2/bin"
echo junk >"$UPG/stale-file"
touch "$STATE/journal.json.tmp.AbCdEf"
inst gc --keep task-99 >"$T/out" 2>&1
is "$?" "0" "gc succeeds"
[ ! -e "$ROOT/versions/1.0" ]
ok $? "gc removed a version that is neither current nor previous"
[ -x "$ROOT/versions/2.0/bin/molt-agent" ] && [ -x "$ROOT/versions/3.0/bin/molt-agent" ]
ok $? "gc kept current and previous"
[ ! -e "$UPG/stale-task" ] && [ ! -e "$UPG/stale-file" ] && [ ! -e "$UPG/stage-3.0b" ]
ok $? "gc removed stale staging"
[ -d "$UPG/task-99/part" ]
ok $? "gc kept the entry named with --keep"
[ ! -e "$ROOT/versions/.discard-x-1-2" ] && [ ! -e "$STATE/journal.json.tmp.AbCdEf" ]
ok $? "gc removed leftovers of interrupted writes"
like "$(cat "$T/out")" "removed .*/versions/1.0" "gc lists what it removed"

# Stopping: SIGTERM goes to the agent, the supervisor exits 0.
agent_pid=$(grep '^start 2\.0 ' "$EVENTS" | tail -n 1 | cut -d' ' -f3)
stop_supervisor
is "$SUP_STATUS" "0" "the supervisor exits 0 on SIGTERM"
kill -0 "$agent_pid" 2>/dev/null
is "$?" "1" "and the agent is stopped with it"
like "$(cat "$T/supervisor.log")" "installer.agent_exit version=2.0 .*killed by signal 15" \
    "the supervisor forwarded SIGTERM"

tap_done
