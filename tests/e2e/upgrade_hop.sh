# upgrade_hop.sh: a target that needs an intermediate build: two switches, one
# task, ending 2 (acceptance 8 of the self-upgrade issue).
set -u
. "$(dirname "$0")/lib/upgrade.sh"

tap_plan 6
env_start hop
publish "$V1" "$V2" "$V3"
agent_start
wait_for 30 registered
ok $? "agent registered (collector $CID)"

tid=$(cp_create_task "$CID" "$V3")
cp_wait_task_status "$tid" 2 150
ok $? "task $tid to $V3 ends 2 ($CP_TASK_MESSAGE)"
is "$(task_statuses "$tid")" "0 1 6 2" "one task: 0 -> 1 -> 6 (across both hops) -> 2"
n=$(cp_task_events "$tid" | "$PY" -c '
import json, sys
ev = json.load(sys.stdin)["events"]
print(len({e.get("buildVersion") for e in ev if e.get("stage") == "switching"}))')
is "$n" 2 "two switches: via $V2, then to $V3"
wait_for 20 version_is "$V3"
ok $? "collector reports $V3"
is "$(readlink "$ROOT/previous" | sed 's|^versions/||')" "$V2" "previous -> versions/$V2"
[ "$TAP_FAILED" -eq 0 ] || show_log 60
tap_done
