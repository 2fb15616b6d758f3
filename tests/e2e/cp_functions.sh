# cp_functions.sh: the functions of tests/e2e/lib/cp.sh that other e2e tests rely on, under set -u:
# start, api, faults, the clock, restart (same data and port), SIGKILL, task helpers, and the
# certificates for TLS fault tests.
set -u
. "$(dirname "$0")/lib/tap.sh"
. "$(dirname "$0")/lib/cp.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/molt-cp-helpers.XXXXXX")
cleanup() { cp_stop; rm -rf "$WORK"; }
trap cleanup EXIT

tap_plan 25

cp_start "$WORK" --heartbeat-interval 1s
ok $? "cp_start with extra server arguments"
missing=""
for v in CP_URL CP_CA CP_ACCESS_ID CP_ACCESS_KEY CP_PID CP_DATA CP_BUILDS; do
    [ -n "${!v:-}" ] || missing="$missing $v"
done
is "$missing" "" "CP_URL, CP_CA, CP_ACCESS_ID, CP_ACCESS_KEY, CP_PID, CP_DATA, CP_BUILDS are set"
ps -o args= -p "$CP_PID" | grep -qF -- "$CP_ACCESS_KEY"
[ $? -ne 0 ]
ok $? "the access key is not on the server's command line"

cp_fake_build 20.1-2749 >/dev/null && cp_fake_build 20.2-100 20.1-0 >/dev/null
body=$(cp_api GET /collectors/upgrades/targets)
is "$(cp_last_status)" 200 "cp_api in \$(...): cp_last_status has the status"
is "$(printf '%s' "$body" | cp_json targets.1.version)" 20.2-100 "cp_json reads a dotted path"
cp_api GET /collectors/nope >/dev/null
is "$CP_HTTP_STATUS" 404 "cp_api called directly sets CP_HTTP_STATUS"
like "$CP_BODY" '"code":"InvalidCollector"' "and CP_BODY"

# A collector, played by curl.
reg=$(curl -sS --cacert "$CP_CA" -u "$CP_ACCESS_ID:$CP_ACCESS_KEY" -H "Content-Type: application/json" \
    -d '{"name":"web-1","machineId":"m-1","collectorVersion":"20.1-2749","osName":"Linux","osArch":"amd64"}' \
    "$CP_URL/api/v1/collector/register")
TOKEN=$(printf '%s' "$reg" | cp_json token)
beat() {
    curl -sS --cacert "$CP_CA" -o "$WORK/beat.json" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
        -H "Content-Type: application/json" -d '{"collectorVersion":"20.1-2749","task":null}' \
        "$CP_URL/api/v1/collector/heartbeat"
}
is "$(beat)" 200 "a heartbeat"
cid=$(cp_collector_id web-1)
like "$cid" '^[0-9]+$' "cp_collector_id"

cp_fault '{"type":"error","status":503,"count":2,"path":"/api/v1/collector/"}' >/dev/null
ok $? "cp_fault arms a fault"
is "$(beat)$(beat)$(beat)" 503503200 "it fires twice, then the heartbeat works"
cp_fault '{"type":"token","count":null}' >/dev/null
is "$(beat)" 401 "a token fault"
cp_faults_reset
is "$(beat)" 200 "cp_faults_reset disarms it"
cp_fault '{"type":"nonsense"}' >/dev/null 2>&1
ok $(($? == 0)) "cp_fault fails on a bad fault"

tid=$(cp_create_task "$cid" 20.2-100)
like "$tid" '^[0-9]+$' "cp_create_task prints the task id"
beat >/dev/null
cp_wait_task_status "$tid" 1 10
ok $? "cp_wait_task_status sees 1"
like "$(cp_task_events "$tid" | cp_json events.1.what)" '^delivered$' "cp_task_events"
cp_clock_advance $((31 * 60 * 1000))
cp_wait_task_status "$tid" 2 10 2>/dev/null
ok $(($? == 0)) "cp_wait_task_status fails early on another final status"
is "$CP_TASK_STATUS:$CP_TASK_MESSAGE" "3:timed out after 30 minutes" "... and says which"

port=$CP_PORT
cp_restart
is "$CP_PORT" "$port" "cp_restart keeps the port"
cp_api GET "/collectors/upgrades/$tid" >/dev/null
is "$CP_HTTP_STATUS:$(printf '%s' "$CP_BODY" | cp_json upgrade.status)" 200:3 "and the data"
cp_restart --kill
is "$(beat)" 200 "after SIGKILL and restart the token still works"

cp_restart_with_cert expired >/dev/null
curl -sS --cacert "$CP_CA" "$CP_URL/api/v1/collectors" >/dev/null 2>"$WORK/expired.err"
ok $(($? == 0)) "an expired certificate is refused ($(head -n 1 "$WORK/expired.err" | cut -c 1-70))"
cp_restart_with_cert wrong-host >/dev/null
curl -sS --cacert "$CP_CA" "$CP_URL/api/v1/collectors" >/dev/null 2>"$WORK/host.err"
ok $(($? == 0)) "a certificate for another host is refused ($(head -n 1 "$WORK/host.err" | cut -c 1-70))"
cp_restart_with_cert good >/dev/null
cp_api GET /collectors >/dev/null
is "$CP_HTTP_STATUS" 200 "back to a good certificate"

tap_done
