# hard_state.sh: corrupt and unwritable local state. With a corrupt journal,
# identity, outbox entries and upgrade.json at once, the service starts, says
# what it found in one log line each, sets each aside or rebuilds it, and
# upgrades afterwards. A state directory that turns unwritable during a task,
# and one that is unwritable at start (exit 1, naming the directory).
set -u
. "$(dirname "$0")/lib/hard.sh"

tap_plan 28
env_start state
publish "$V1" "$V2"
restart_with
wait_for 30 registered || { echo "Bail out! agent did not register"; exit 1; }
cid_before=$CID
agent_stop

# Everything corrupt at once.
printf '{"format": 1, "state": "trial", "taskId": ' >"$STATE/journal.json"
head -c 300 /dev/urandom >"$STATE/identity.json"
mkdir -p "$STATE/outbox"
printf 'not json' >"$STATE/outbox/77.json"
head -c 70000 /dev/zero | tr '\0' ' ' >"$STATE/outbox/78.json"   # larger than any report
mkdir "$STATE/outbox/79.json"                                    # not a file
printf '{"taskId":"80","status":3,"stage":"accepted","stageIndex":1,"stageCount":9,"bytesDone":0,"bytesTotal":0,"version":"%s","buildVersion":"%s","message":"accepted: test"}' \
    "$V1" "$V2" >"$STATE/outbox/80.json"                          # valid, for a task the server never had
printf '{"taskId": "81", "toVersion": 7}' >"$STATE/upgrade.json"
log_mark
restart_with
wait_for 30 version_is "$V1"
ok $? "the service starts and the agent heartbeats"

ls "$STATE"/journal.json.corrupt-* >/dev/null 2>&1
ok $? "the corrupt journal is kept aside for diagnosis"
log_since 'installer.journal_corrupt .*action="no trial assumed, current kept as it is"'
ok $? "the installer says so and what it did"
[ "$(current_link)" = "$V1" ] && "$ROOT/bin/molt-installer" status --json | cp_json journal.state | grep -qx idle
ok $? "current is kept, the journal is idle again"

log_since 'identity.unusable error=".*identity.json.*" action=register'
ok $? "the corrupt identity is named in the log"
wait_for 20 log_since 'registered collector='
ok $? "the agent registers again"
is "$(collector_field id)" "$cid_before" "as the same collector (same machine id and name)"
json_ok() { "$PY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$1" 2>/dev/null; }
json_ok "$STATE/identity.json"
ok $? "identity.json is valid again"

for n in 77 78 79; do
    wait_for 20 test -e "$STATE/outbox/$n.json.bad"
    ok $? "outbox entry $n.json moved aside to $n.json.bad"
done
log_since "outbox.bad file=$STATE/outbox/78.json error=\".*larger than"
ok $? "the log says why the large entry was refused"
wait_for 20 test ! -e "$STATE/outbox/80.json"
ok $? "the valid entry behind them was still sent (and refused by the server: unknown task)"
log_since 'report.refused task=80 http=404'
ok $? "the server's answer is logged"

log_since 'upgrade.state error=".*upgrade.json.*" action=discard'
ok $? "the unreadable upgrade state is discarded with a log line"
[ ! -e "$STATE/upgrade.json" ]
ok $? "upgrade.json is gone"

tid=$(cp_create_task "$CID" "$V2")
task_ends "$tid" 2 90
ok $? "after all that, task $tid ends 2 ($CP_TASK_MESSAGE)"
consistent "$V2"
ok $? "consistent at $V2"

# The state directory turns unwritable while the agent runs. (1) Its outbox
# still takes files: the task ends 3 at once with the precise reason. (2) The
# outbox cannot be written either: the agent says so, touches nothing, keeps
# the final report in memory and sends it all the same; once the directory
# is writable again the agent takes new tasks as before.
ro_on() { # DIR: 0 when DIR was made unwritable
    if [ "$(id -u)" != 0 ]; then chmod 0555 "$1"; else chattr +i "$1" 2>/dev/null; fi
}
ro_off() { if [ "$(id -u)" != 0 ]; then chmod 0755 "$1"; else chattr -i "$1" 2>/dev/null; fi; }
alive() { [ "$(collector_field alive 2>/dev/null)" = true ]; }
trap 'ro_off "$STATE/outbox"; ro_off "$STATE"; ro_off "$WORK/ro-state"; env_cleanup' EXIT
mkdir -p "$STATE/outbox"
if ro_on "$STATE"; then
    log_mark
    tid=$(cp_create_task "$CID" "$V1")
    task_ends "$tid" 3 30
    ok $? "state dir unwritable during a task: task $tid ends 3"
    like "$CP_TASK_MESSAGE" "^accepted: save upgrade state: .*$STATE/upgrade.json.*(Permission denied|Operation not permitted)" \
        "with the precise reason ($CP_TASK_MESSAGE)"
    consistent "$V2"
    ok $? "nothing was switched: consistent at $V2"

    ro_on "$STATE/outbox"
    log_mark
    tid=$(cp_create_task "$CID" "$V1")
    wait_for 20 log_since "report.unsaved task=$tid error=\".*outbox.*(Permission denied|Operation not permitted).* kept=memory"
    ok $? "outbox unwritable too: the agent says its final report is kept in memory"
    task_ends "$tid" 3 30
    ok $? "the task is reported 3 all the same, before any server timeout"
    like "$CP_TASK_MESSAGE" "^accepted: save upgrade state: .*(Permission denied|Operation not permitted)" \
        "with its reason, not the server's timeout ($CP_TASK_MESSAGE)"
    ro_off "$STATE/outbox"
    ro_off "$STATE"
    wait_for 30 alive && consistent "$V2"
    ok $? "nothing was switched: consistent at $V2"
    tid=$(cp_create_task "$CID" "$V1")
    task_ends "$tid" 2 90
    ok $? "the agent takes the next task, which ends 2 ($CP_TASK_MESSAGE)"
else
    for i in 1 2 3 4 5 6 7 8; do ok 0 "unwritable state dir during a task # SKIP cannot make a directory unwritable here"; done
fi

# A state directory the agent cannot write: it refuses to start, saying which.
agent_stop
RO=$WORK/ro-state
mkdir -p "$RO"
how=
ro_on "$RO" && how=$([ "$(id -u)" != 0 ] && echo "mode 0555" || echo "chattr +i")
if [ -n "$how" ]; then
    timeout 20 env MOLT_AGENT_STATE_DIR="$RO" "$ROOT/current/bin/molt-agent" run \
        >"$WORK/ro.out" 2>&1
    rc=$?
    is "$rc" 1 "with an unwritable state dir ($how) the agent exits 1"
    like "$(cat "$WORK/ro.out")" "$RO.*(Permission denied|Operation not permitted|Read-only)" \
        "and names the directory and the cause"
    ro_off "$RO"
else
    ok 0 "unwritable state dir # SKIP no way to make a directory unwritable (root without chattr)"
    ok 0 "unwritable state dir message # SKIP as above"
fi

[ "$TAP_FAILED" -eq 0 ] || show_log 80
tap_done
