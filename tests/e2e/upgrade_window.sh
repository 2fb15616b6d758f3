# upgrade_window.sh: switch windows (issue 19). With [install] switch_window
# set, a task downloads, verifies and stages at once, then waits in the
# reported stage "waiting" (with the next window's start) and switches only
# when a window opens; a window that cannot open before the task's 30-minute
# deadline fails the task at once, before any download; the operator's
# `molt-agent upgrade --now` and a cancel end the wait; an agent SIGKILLed
# while waiting resumes the wait. The agent runs in a time zone of UTC+05:30:
# windows are in the host's local time.
set -u
. "$(dirname "$0")/lib/upgrade.sh"

tap_plan 28
env_start window
publish "$V1" "$V2"
export TZ='<+0530>-5:30'
mkdir -p "$MOLT_CONFIG.d"

hms() { date -d "@$1" +%H:%M:%S; }   # epoch seconds -> local HH:MM:SS (in $TZ)
# set_window SPEC: the agent's switch_window, through a drop-in and a reload.
set_window() {
    printf '[install]\nswitch_window = %s\n' "$1" >"$MOLT_CONFIG.d/window.conf"
    local p
    p=$(agent_pid) && kill -HUP "$p"
}
local_stage() { local_api GET /api/v1/agent/upgrade | "$PY" -c '
import json, sys
d = json.load(sys.stdin).get("data") or {}
print((d.get("additional_data") or {}).get("stage_name", ""))'; }
stage_is() { [ "$(local_stage 2>/dev/null)" = "$1" ]; }
# waiting_message TASK: the message of the task's last "waiting" report to the control plane.
waiting_message() {
    cp_task_events "$1" | "$PY" -c '
import json, sys
m = [e.get("message", "") for e in json.load(sys.stdin)["events"] if e.get("stage") == "waiting"]
print(m[-1] if m else "")'
}
# outcome_at TASK: when the installer recorded the task's outcome (epoch ms).
outcome_at() {
    "$PY" -c '
import json, sys
j = json.load(open(sys.argv[1]))
print(next((o["at"] for o in j.get("outcomes", []) if o.get("taskId") == sys.argv[2]), 0))' \
        "$STATE/journal.json" "$1"
}

agent_start
wait_for 30 registered || { echo "Bail out! agent did not register"; exit 1; }
is "$(running_version)" "$V1" "collector reports $V1"

# 1. The next window opens in two hours, after the task's 30-minute deadline:
# the task fails at once, before a byte is downloaded.
now=$(date +%s)
set_window "$(hms $((now + 7200)))-$(hms $((now + 10800)))"
sleep 1
tid=$(cp_create_task "$CID" "$V2")
start=$SECONDS
cp_wait_task_status "$tid" 3 30
ok $? "a window after the deadline ends task $tid 3"
ok "$([ $((SECONDS - start)) -le 15 ] && echo 0 || echo 1)" "at once ($((SECONDS - start)) s), not at the deadline"
like "$CP_TASK_MESSAGE" "^preflight: the next switch window opens [0-9-]+ [0-9:]+ \+0530, after the task's deadline [0-9-]+ [0-9:]+ \+0530 \(install.switch_window = " \
    "the reason names the window's opening, in local time, and the deadline ($CP_TASK_MESSAGE)"
stages=$(task_stages "$tid")
case " $stages " in *" downloading "*) r=1 ;; *) r=0 ;; esac
ok $r "nothing was downloaded (stages: $stages)"
is "$(current_link)" "$V1" "current -> versions/$V1"

# 2. A window that opens in 20 s: staged at once, waiting until it opens, then
# the switch and 2.
now=$(date +%s)
open=$((now + 20))
set_window "Mon-Sun $(hms $open)-$(hms $((open + 600)))"
sleep 1
tid=$(cp_create_task "$CID" "$V2")
wait_for 15 stage_is waiting
ok $? "the task waits in stage waiting (local API)"
"$ROOT/current/bin/molt-agent" status 2>/dev/null | grep -q "waiting for a switch window: the next opens"
ok $? "molt-agent status shows the wait and the next opening"
wait_for 10 eval '[ -n "$(waiting_message "$tid")" ]'
like "$(waiting_message "$tid")" "^waiting for a switch window: the next opens $(date -d "@$open" '+%Y-%m-%d %H:%M:%S') \+0530$" \
    "the control plane heard stage waiting with the window's start ($(waiting_message "$tid"))"
[ -d "$UPG/task-$tid/staged" ]
ok $? "the build is already staged"
sleep $((open - $(date +%s) - 2)) 2>/dev/null
is "$(current_link):$(local_stage)" "$V1:waiting" "2 s before the window opens: still $V1, waiting"
cp_wait_task_status "$tid" 2 90
ok $? "task $tid ends 2 once the window opened ($CP_TASK_MESSAGE)"
at=$(outcome_at "$tid")
ok "$([ "$at" -ge $((open * 1000)) ] && echo 0 || echo 1)" "the commit came after the opening ($at >= ${open}000)"
is "$(task_stages "$tid")" "accepted preflight downloading verifying staging waiting switching restarting health-check committed" \
    "stages in order, waiting between staging and switching"
wait_for 30 version_is "$V2"
ok $? "collector reports $V2"

# 3. The operator on the host: upgrade --now switches a waiting task at once.
now=$(date +%s)
set_window "$(hms $((now + 1200)))-$(hms $((now + 1800)))"
sleep 1
tid=$(cp_create_task "$CID" "$V1")
wait_for 30 stage_is waiting
ok $? "task $tid waits for a window in 20 minutes"
out=$("$ROOT/current/bin/molt-agent" upgrade --now 2>&1)
like "$out" "^task $tid: switch asked" "molt-agent upgrade --now is accepted ($out)"
cp_wait_task_status "$tid" 2 90
ok $? "task $tid ends 2 without waiting for the window ($CP_TASK_MESSAGE)"
grep -q "upgrade.window task=$tid result=operator --now" "$WORK/agent.log"
ok $? "the agent logs that the operator skipped the window"
wait_for 30 version_is "$V1"
ok $? "collector reports $V1"
out=$("$ROOT/current/bin/molt-agent" upgrade --now 999 2>&1)
like "$out" "task 999: no such task" "upgrade --now for a task that does not run is refused ($out)"

# 4. SIGKILL while waiting: the restarted agent waits again (no switch, no
# second download), and a cancel then ends the task 3 at stage waiting.
tid=$(cp_create_task "$CID" "$V2")
wait_for 30 stage_is waiting
ok $? "task $tid waits"
kill -KILL "$(agent_pid)"
sleep 1
wait_for 30 stage_is waiting
ok $? "after SIGKILL the restarted agent waits again"
is "$(current_link):$(switches "$tid")" "$V1:0" "nothing was switched"
out=$("$ROOT/current/bin/molt-agent" cancel 2>&1)
like "$out" "^task $tid: cancel asked" "cancel during the wait is accepted"
cp_wait_task_status "$tid" 3 30
ok $? "task $tid ends 3"
is "$CP_TASK_MESSAGE" "waiting: cancelled" "at stage waiting"
[ ! -e "$UPG/task-$tid" ]
ok $? "its staged build is removed"
[ "$TAP_FAILED" -eq 0 ] || show_log 80
tap_done
