# upgrade_watch.sh: the watch window after a commit (issue 19). A build that
# commits and then crashes 30 s later (fault agent.watch_crash, in every start)
# is rolled back within [install] watch_window once it has used
# watch_max_starts starts: the old version heartbeats again, the task stays 2,
# and the control plane shows one rolled-back-after-commit event with the
# reason, sent once (also across a restart). The launcher SIGKILLed during the
# watch still ends consistent. A build that stays healthy past the window is
# kept: restarts after it are not counted. With health_command, the check is
# repeated during the watch and its failure rolls back the same way.
set -u
. "$(dirname "$0")/lib/upgrade.sh"
tap_need_fault_points

WINDOW=60 # s; the crash comes 30 s after the commit, the loop takes a few more
tap_plan 33
env_start watch
publish "$V1" "$V2"
cat >>"$WORK/molt.conf" <<CONF
[install]
watch_window = ${WINDOW}s
watch_max_starts = 3
CONF

journal() { # EXPR [ARG]: EXPR % ARG evaluated on the journal j
    "$PY" -c '
import json, sys
j = json.load(open(sys.argv[1]))
e = sys.argv[2] % int(sys.argv[3]) if len(sys.argv) > 3 else sys.argv[2]
print(eval(e))' "$STATE/journal.json" "$@" 2>/dev/null
}
# watch_events TASK: the task's rolled-back-after-commit events, one line each
watch_events() {
    cp_task_events "$1" | "$PY" -c '
import json, sys
for e in json.load(sys.stdin).get("events", []):
    if e.get("what") == "rolled-back-after-commit":
        print("%s %s %s %s %s|%s" % (e.get("source"), e.get("fromVersion"), e.get("toVersion"),
                                    e.get("repeats"), e.get("at"), e.get("message")))'
}
n_events() { watch_events "$1" | grep -c .; }
one_event() { [ "$(n_events "$1")" = 1 ]; }
task_status() { cp_api GET "/collectors/upgrades/$1" >/dev/null && printf '%s' "$CP_BODY" | cp_json upgrade.status; }
rolled_back_after_commit() { [ "$(journal 'j["state"] + str(j["outcomes"][0].get("afterCommit"))')" = "rolled-backTrue" ]; }
restarted() { local p; p=$(agent_pid) && [ "$p" != "$1" ]; }
supervisor_pid() { pgrep -o -f "$ROOT/bin/molt-installer launch --supervise"; }

# 1. a crash loop after the commit: rolled back within the window
export MOLT_FAULT=agent.watch_crash
agent_start
wait_for 30 registered || { echo "Bail out! agent did not register"; exit 1; }
tid=$(cp_create_task "$CID" "$V2")
cp_wait_task_status "$tid" 2 120
ok $? "task $tid commits $V2 and ends 2 ($CP_TASK_MESSAGE)"
committed_at=$SECONDS
is "$(journal 'j["state"]'):$(journal 'j["watchUntil"] - j["outcomes"][0]["at"]')" \
    "committed:$((WINDOW * 1000))" "the journal watches $V2 for watch_window after its commit"
wait_for $((WINDOW + 30)) rolled_back_after_commit
ok $? "rolled back, $((SECONDS - committed_at)) s after the commit"
is "$(journal 'j["outcomes"][0]["at"] - j["outcomes"][1]["at"] < %d' $((WINDOW * 1000)))" True \
    "within the watch window: the journal's rollback is less than ${WINDOW} s after the commit"
is "$(journal 'j["outcomes"][0]["reason"]')" \
    "watch: $V2 started 3 times within 1 min of its commit" "the journal's reason"
is "$(current_link):$(readlink "$ROOT/previous" | sed 's|^versions/||')" "$V1:" \
    "current -> $V1 again, previous as before the switch (none)"
is "$(grep -c 'fault.kill point=agent.watch_crash' "$WORK/agent.log")" 4 \
    "$V2 crashed in the commit's run and in each of its 3 starts"
wait_for 30 version_is "$V1"
ok $? "the collector reports $V1 again in the management API"
wait_for 30 one_event "$tid"
ok $? "the control plane recorded a rolled-back-after-commit event"
ev=$(watch_events "$tid")
like "$ev" "^collector $V2 $V1 1 [0-9]+\|watch: $V2 started 3 times within 1 min of its commit$" \
    "the event: from $V2 to $V1, once, with the reason ($ev)"
is "$(task_status "$tid")" 2 "the task stays 2"
like "$(head -n 1 "$STATE/trial-$V2.log" 2>/dev/null)" "^# watch of $V2 for task $tid: rolled back: watch:" \
    "the trial log keeps the crash loop's output"
ls "$STATE/outbox/events/"*.sent >/dev/null 2>&1 && ! ls "$STATE/outbox/events/"*.json >/dev/null 2>&1
ok $? "the outbox marked the event sent"
# a restart reads the same outcome again: nothing is sent twice
agent_stop
agent_start
wait_for 30 version_is "$V1"
sleep 3
is "$(watch_events "$tid" | cut -d' ' -f4)" 1 "after a restart the event is not sent again"

# 2. the launcher SIGKILLed during the watch (after counting a start), and
# again by the harness: the loop still ends in one rollback, consistent.
agent_stop
export MOLT_FAULT=agent.watch_crash,launch.after_count_watch_start MOLT_FAULT_ONCE_DIR="$WORK/once"
mkdir -p "$MOLT_FAULT_ONCE_DIR"
agent_start
wait_for 30 version_is "$V1"
tid2=$(cp_create_task "$CID" "$V2")
cp_wait_task_status "$tid2" 2 120
ok $? "task $tid2 commits $V2 again ($CP_TASK_MESSAGE)"
watch_started() { [ "$(journal 'j.get("watchStarts", 0)')" -ge 2 ] 2>/dev/null || rolled_back_after_commit; }
wait_for 60 watch_started
pid=$(supervisor_pid)
[ -n "$pid" ] && kill -KILL "$pid"
ok $? "the launcher (pid ${pid:-?}) SIGKILLed during the watch"
wait_for $((WINDOW + 30)) rolled_back_after_commit
ok $? "rolled back all the same"
[ -e "$WORK/once/launch.after_count_watch_start" ]
ok $? "the launcher was also killed right after counting a watch start"
wait_for 30 version_is "$V1"
is "$(current_link):$(journal 'j["state"]')" "$V1:rolled-back" "consistent: current -> $V1, journal rolled-back"
wait_for 30 one_event "$tid2"
ok $? "one event for task $tid2 ($(watch_events "$tid2"))"
is "$(task_status "$tid2")" 2 "task $tid2 stays 2"
unset MOLT_FAULT MOLT_FAULT_ONCE_DIR

# 3. a build that stays healthy past the window is kept
agent_stop
agent_start
wait_for 30 version_is "$V1"
tid3=$(cp_create_task "$CID" "$V2")
cp_wait_task_status "$tid3" 2 120
ok $? "task $tid3 commits $V2 ($CP_TASK_MESSAGE)"
"$ROOT/bin/molt-installer" gc >/dev/null 2>&1
[ -x "$ROOT/versions/$V1/bin/molt-agent" ]
ok $? "during the watch gc keeps $V1, the way back"
like "$("$ROOT/bin/molt-installer" status 2>/dev/null | grep '^watch:')" "^watch: +0 of 3 starts, until " \
    "molt-installer status shows the watch"
# a stop and start of the service (a clean exit, its marker left) is no crash
for _ in 1 2 3 4; do
    agent_stop
    agent_start
    wait_for 30 agent_pid
done
is "$(journal 'j.get("watchStarts", 0)'):$(current_link)" "0:$V2" \
    "4 clean restarts during the watch are not counted"
sleep "$WINDOW"
# four crashes after the window: each start is the first after it, none counted
for _ in 1 2 3 4; do
    apid=$(agent_pid)
    [ -n "$apid" ] && kill -KILL "$apid"
    wait_for 20 restarted "$apid"
done
wait_for 30 version_is "$V2"
is "$(current_link):$(journal 'j["state"]'):$(journal '"watchUntil" in j')" "$V2:committed:False" \
    "$V2 kept after the window, its watch closed, 4 restarts after it not counted"
is "$(n_events "$tid3")" 0 "no event for task $tid3"

# 4. the health command, repeated during the watch, fails: rolled back too
agent_stop
HEALTH=$WORK/health.sh
cat >"$HEALTH" <<SH
#!/bin/sh
[ -e "$WORK/health-fail" ] && { echo "collector stalled: queue full"; exit 1; }
echo "collector healthy"
SH
chmod 755 "$HEALTH"
cat >>"$WORK/molt.conf" <<CONF
[install]
health_command = $HEALTH
health_interval = 1s
health_timeout = 3s
CONF
agent_start
wait_for 30 version_is "$V2"
tid4=$(cp_create_task "$CID" "$V1")
cp_wait_task_status "$tid4" 2 120
ok $? "task $tid4 commits $V1, its trial's health check passing ($CP_TASK_MESSAGE)"
: >"$WORK/health-fail"
wait_for "$WINDOW" rolled_back_after_commit
ok $? "the check failing during the watch rolls back"
want="watch: health check 1/1 failed (exit 1): collector stalled: queue full"
is "$(journal 'j["outcomes"][0]["reason"]')" "$want" "the reason names the check and its output"
wait_for 30 version_is "$V2"
ok $? "$V2 heartbeats again"
wait_for 30 one_event "$tid4"
is "$(watch_events "$tid4" | sed 's/ [0-9]*|/|/')" "collector $V1 $V2 1|$want" \
    "the event, once, with the check's reason"
is "$(task_status "$tid4")" 2 "task $tid4 stays 2"
[ "$TAP_FAILED" -eq 0 ] || show_log 80
tap_done
