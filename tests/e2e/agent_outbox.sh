# agent_outbox.sh: final task reports go through the outbox: written before they
# are sent, kept while the server cannot take them (also across an agent
# restart), deleted once acknowledged (200) or clearly refused (409). The core
# answers a downgrade command itself when agent.allow_downgrade is off, which
# gives a real final report without the upgrade pipeline.
set -u
. "$(dirname "$0")/lib/agent.sh"

tap_plan 17
cp_start "$W" --heartbeat-interval 300ms || { echo "Bail out! control plane"; exit 1; }
cp_fake_build 19.0-1 >/dev/null
agent_up outbox "allow_downgrade = false"
ok $? "the agent registers"
box="$W/outbox/state/outbox"

# reports_by_status STATUS: /reports calls the server answered with STATUS.
reports_by_status() {
    cp_stats | "$CP_PY" -c '
import json, sys
e = json.load(sys.stdin)["endpoints"].get("POST /api/v1/collector/reports", {})
print(e.get("statuses", {}).get(sys.argv[1], 0))' "$1"
}
reports_failed() { [ "$(reports_by_status 500)" -ge 2 ]; }
task_status() { cp_api GET "/collectors/upgrades/$1" | cp_json upgrade.status; }

# The server cannot take reports: the answer waits in the outbox.
cp_fault '{"type":"error","status":500,"path":"/api/v1/collector/reports","count":null}' >/dev/null
tid=$(cp_create_task "$cid" 19.0-1)
ok $? "a downgrade task is created ($tid)"
wait_for 20 test -f "$box/$tid.json"
ok $? "the refusal is written to the outbox"
is "$(json_get status <"$box/$tid.json")" 3 "as a final 3"
like "$(json_get message <"$box/$tid.json")" "downgrade .* not allowed" "saying why"
wait_for 30 reports_failed
ok $? "sending it is retried while the server answers 500"
is "$(task_status "$tid")" 1 "the server still has the task pending"

# An agent restart keeps the entry; once the server is healthy it is delivered.
agent_stop "$pid"
test -f "$box/$tid.json"
ok $? "the entry survives the agent's stop"
cp_faults_reset
agent_start outbox
pid=$AGENT_PID
wait_for 30 cp_wait_task_status "$tid" 3 1
ok $? "after the restart the report reaches the server"
like "$(cp_api GET "/collectors/upgrades/$tid" | cp_json upgrade.message)" "downgrade" \
    "the task carries the agent's reason"
wait_for 10 test ! -e "$box/$tid.json"
ok $? "the acknowledged entry is deleted"

# A task cancelled meanwhile: the server already has it as failed and says so.
cp_fault '{"type":"error","status":503,"retryAfter":1,"path":"/api/v1/collector/reports","count":null}' \
    >/dev/null
tid2=$(cp_create_task "$cid" 19.0-1)
wait_for 20 test -f "$box/$tid2.json"
ok $? "a second refusal waits in the outbox"
cp_api DELETE "/collectors/upgrades/$tid2" >/dev/null
is "$(cp_last_status)" 200 "the task is cancelled through the management API"
cp_faults_reset
wait_for 30 test ! -e "$box/$tid2.json"
ok $? "the entry is deleted once the server answers"
is "$(cp_api GET "/collectors/upgrades/$tid2" | cp_json upgrade.message)" cancelled \
    "the task stays cancelled"

# An entry for a task the server does not know (404 task.unknown): logged and deleted.
agent_stop "$pid"
printf '%s' '{"taskId":"99999","status":2,"stage":"committed","stageIndex":9,"stageCount":9,"bytesDone":0,"bytesTotal":0,"version":"20.1-2749","buildVersion":"20.1-2749","message":""}' \
    >"$box/99999.json"
agent_start outbox
wait_for 30 test ! -e "$box/99999.json"
ok $? "an entry for an unknown task is deleted after the server's 404"
wait_for 10 log_has outbox 'report.refused task=99999 http=404'
ok $? "and the refusal is logged"
tap_done
