# cp_curl.sh: the seed documents' sample curl sessions, run against the reference control plane
# over HTTPS with only the host changed (the throwaway CA is given through CURL_CA_BUNDLE), and
# checked for the documented status codes and shapes. The collector side is played by curl too.
set -u
. "$(dirname "$0")/lib/tap.sh"
. "$(dirname "$0")/lib/cp.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/molt-cp-curl.XXXXXX")
cleanup() { cp_stop; rm -rf "$WORK"; }
trap cleanup EXIT

tap_plan 33

cp_start "$WORK"
ok $? "control plane started over HTTPS ($CP_URL)"
like "$CP_URL" '^https://127\.0\.0\.1:[0-9]+$' "base URL is https on 127.0.0.1"
export CURL_CA_BUNDLE="$CP_CA"
HOST=${CP_URL#https://}
ID=$CP_ACCESS_ID
KEY=$CP_ACCESS_KEY

# Builds named as in the samples: targets 19.115-37 ... 20.1-2749 (latest), task to 19.152-1.
for v in 19.115-37 19.152-1 20.1-2749; do cp_fake_build "$v" >/dev/null; done

# check JSON_FILE PYTHON_EXPR: the expression, over `d` (the parsed body), must hold.
check() {
    "$CP_PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2"
}
# split FILE: `curl -i` output into FILE.status (code) and FILE.body
split() {
    "$CP_PY" - "$1" <<'EOF'
import sys
raw = open(sys.argv[1], "rb").read()
head, _, body = raw.partition(b"\r\n\r\n")
open(sys.argv[1] + ".status", "w").write(head.split(b" ")[1].decode())
open(sys.argv[1] + ".headers", "wb").write(head)
open(sys.argv[1] + ".body", "wb").write(body)
EOF
}

# The collector: register and heartbeat, as docs/protocol.md says.
curl -sS -u "$ID:$KEY" -H "Content-Type: application/json" -X POST -o "$WORK/reg.json" \
    -d '{"name":"dev-host-1","hostName":"dev-host-1","machineId":"4c4c4544003957108052b4c04f4e4d31","ephemeral":false,"collectorVersion":"19.162-12","osName":"Linux","osVersion":"3.13.0-92-generic","osArch":"amd64","osTime":1234,"timeZone":"UTC"}' \
    "https://$HOST/api/v1/collector/register"
check "$WORK/reg.json" 'isinstance(d["collectorId"], int) and len(d["token"]) >= 32'
ok $? "a collector registers"
CID=$(cp_json collectorId <"$WORK/reg.json")
TOKEN=$(cp_json token <"$WORK/reg.json")
beat() { # [TASK_JSON] [VERSION]
    curl -sS -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" -X POST \
        -d "{\"collectorVersion\":\"${2:-19.162-12}\",\"osName\":\"Linux\",\"osVersion\":\"3.13.0-92-generic\",\"osArch\":\"amd64\",\"osTime\":5000,\"uptimeMs\":9000,\"hostName\":\"dev-host-1\",\"timeZone\":\"UTC\",\"task\":${1:-null}}" \
        "https://$HOST/api/v1/collector/heartbeat"
}
beat >"$WORK/hb.json"
check "$WORK/hb.json" 'd["command"] is None and d["heartbeatIntervalMs"] == 15000'
ok $? "it heartbeats"

# The samples are run as printed, with only the host (and the credentials) filled in; where a
# sample prints no status line, -s -o FILE -w '%{http_code}' are added to capture it.

# --- List Collectors (sample: limit=10)
code=$(curl -u "$ID:$KEY" -X GET "https://$HOST/api/v1/collectors?limit=10" -s -o "$WORK/list.json" -w '%{http_code}')
is "$code" 200 "list collectors: 200"
check "$WORK/list.json" 'len(d["collectors"]) == 1 and all(k in d["collectors"][0] for k in ("id","name","collectorType","alive","links","collectorVersion","ephemeral","description","osName","osArch","osVersion","category"))'
ok $? "list collectors: documented shape and fields"
check "$WORK/list.json" 'd["collectors"][0]["links"] == [{"rel": "sources", "href": "/v1/collectors/%d/sources" % d["collectors"][0]["id"]}]'
ok $? "list collectors: links as documented"

# --- Get Collector by ID
code=$(curl -u "$ID:$KEY" -X GET "https://$HOST/api/v1/collectors/$CID" -s -o "$WORK/byid.json" -w '%{http_code}')
is "$code" 200 "get by id: 200"
check "$WORK/byid.json" 'd["collector"]["id"] == '"$CID"' and d["collector"]["name"] == "dev-host-1" and d["collector"]["collectorType"] == "Installable" and d["collector"]["collectorVersion"] == "19.162-12" and d["collector"]["osVersion"] == "3.13.0-92-generic" and d["collector"]["alive"] is True and isinstance(d["collector"]["lastSeenAlive"], int)'
ok $? "get by id: the sample's fields"

# --- Get Collector by Name
code=$(curl -u "$ID:$KEY" -X GET "https://$HOST/api/v1/collectors/name/dev-host-1" -s -o "$WORK/byname.json" -w '%{http_code}')
is "$code" 200 "get by name: 200"
check "$WORK/byname.json" 'd["collector"]["id"] == '"$CID"
ok $? "get by name: same collector"
code=$(curl -u "$ID:$KEY" -X GET "https://$HOST/api/v1/collectors/name/nobody" -s -o "$WORK/noname.json" -w '%{http_code}')
is "$code" 404 "get by unknown name: 404"
check "$WORK/noname.json" 'd["status"] == 404 and d["id"] and d["code"] and d["message"]'
ok $? "errors carry the legacy body"

# --- Update a Collector: GET -v for the ETag, then PUT -T with If-Match
curl -v -u "$ID:$KEY" -X GET "https://$HOST/api/v1/collectors/$CID" -s -o "$WORK/get.json" 2>"$WORK/get.trace"
ETAG=$(sed -n 's/^< [Ee][Tt]ag: *\(.*\)\r$/\1/p' "$WORK/get.trace")
like "$ETAG" '^"[0-9a-f]+"$' "GET -v shows an ETag header"
"$CP_PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); d["collector"]["ephemeral"]=True; json.dump(d, open(sys.argv[2],"w"))' "$WORK/get.json" "$WORK/updated_collector.json"
curl -u "$ID:$KEY" -X PUT -H "Content-Type: application/json" -H "If-Match: $ETAG" -T "$WORK/updated_collector.json" "https://$HOST/api/v1/collectors/$CID" -s -o "$WORK/put.json"
check "$WORK/put.json" 'd["collector"]["ephemeral"] is True'
ok $? "PUT with If-Match updates the collector"
code=$(curl -u "$ID:$KEY" -X PUT -H "Content-Type: application/json" -H "If-Match: $ETAG" -T "$WORK/updated_collector.json" "https://$HOST/api/v1/collectors/$CID" -s -o /dev/null -w '%{http_code}')
is "$code" 412 "PUT with a stale ETag: 412"

# --- List Offline Collectors (sample: aliveBeforeDays=10)
code=$(curl -u "$ID:$KEY" -X GET "https://$HOST/api/v1/collectors/offline?aliveBeforeDays=10" -s -o "$WORK/offline.json" -w '%{http_code}')
is "$code" 200 "list offline collectors: 200"
check "$WORK/offline.json" 'd == {"collectors": []}'
ok $? "list offline collectors: none offline"

# --- Get available builds
curl -i -u "$ID:$KEY" -X GET https://$HOST/api/v1/collectors/upgrades/targets >"$WORK/targets" 2>/dev/null
split "$WORK/targets"
is "$(cat "$WORK/targets.status")" 200 "targets: 200"
check "$WORK/targets.body" 'd["targets"][0] == {"version": "19.115-37", "latest": False} and d["targets"][-1] == {"version": "20.1-2749", "latest": True} and sum(t["latest"] for t in d["targets"]) == 1'
ok $? "targets: the sample's shape, one latest"

# --- Get upgradable Collectors
curl -i -u "$ID:$KEY" -X GET https://$HOST/api/v1/collectors/upgrades/collectors >"$WORK/upg" 2>/dev/null
split "$WORK/upg"
is "$(cat "$WORK/upg.status")" 200 "upgradable collectors: 200"
check "$WORK/upg.body" '[c["id"] for c in d["collectors"]] == ['"$CID"'] and all(k in d["collectors"][0] for k in ("id","name","hostName","timeZone","links","ephemeral","sourceSyncMode","collectorType","collectorVersion","osVersion","osName","osArch","lastSeenAlive","alive"))'
ok $? "upgradable collectors: the sample's shape"

# --- Create an upgrade or downgrade task (sample: toVersion 19.152-1)
curl -i -u "$ID:$KEY" -H "Content-Type: application/json" -X POST -d '{"collectorId":'"$CID"',"toVersion":"19.152-1"}' \
https://$HOST/api/v1/collectors/upgrades >"$WORK/create" 2>/dev/null
split "$WORK/create"
is "$(cat "$WORK/create.status")" 202 "create task: 202"
check "$WORK/create.body" 'isinstance(d["id"], str) and d["link"] == {"rel": "self", "href": "/v1/collectors/upgrades/" + d["id"]}'
ok $? "create task: {id, link} as documented"
TID=$(cp_json id <"$WORK/create.body")
code=$(curl -s -o "$WORK/busy.json" -w '%{http_code}' -u "$ID:$KEY" -H "Content-Type: application/json" -X POST -d '{"collectorId":'"$CID"'}' "https://$HOST/api/v1/collectors/upgrades")
check "$WORK/busy.json" 'd["code"] == "collector.in.upgrading"'
ok $? "a second task: 400 collector.in.upgrading ($code)"

# --- Get upgrade task status
status_of() {
    curl -i -u "$ID:$KEY" -X GET https://$HOST/api/v1/collectors/upgrades/$TID >"$WORK/st" 2>/dev/null
    split "$WORK/st"
}
status_of
is "$(cat "$WORK/st.status")" 200 "task status: 200"
check "$WORK/st.body" 'set(d["upgrade"]) >= {"id","collectorId","toVersion","requestTime","status","message"} and d["upgrade"]["id"] == '"$TID"' and d["upgrade"]["collectorId"] == '"$CID"' and d["upgrade"]["toVersion"] == "19.152-1" and d["upgrade"]["status"] == 0'
ok $? "task status: the sample's shape, 0 not started"

# The collector picks it up (1), reports progress (6) and success (2).
beat >"$WORK/hb2.json"
check "$WORK/hb2.json" 'd["command"]["type"] == "upgrade" and d["command"]["taskId"] == "'"$TID"'" and d["command"]["build"]["version"] == "19.152-1"'
ok $? "the heartbeat reply carries the command"
status_of
check "$WORK/st.body" 'd["upgrade"]["status"] == 1'
ok $? "task status 1: pending"
beat '{"taskId":"'"$TID"'","status":6,"stage":"downloading","stageIndex":3,"stageCount":9,"bytesDone":1,"bytesTotal":4096,"version":"19.162-12","buildVersion":"19.152-1","message":""}' >/dev/null
status_of
check "$WORK/st.body" 'd["upgrade"]["status"] == 6'
ok $? "task status 6: progressing"
curl -sS -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" -X POST -o "$WORK/rep.json" \
    -d '{"taskId":"'"$TID"'","status":2,"stage":"committed","stageIndex":9,"stageCount":9,"bytesDone":0,"bytesTotal":0,"version":"19.152-1","buildVersion":"19.152-1","message":""}' \
    "https://$HOST/api/v1/collector/reports"
check "$WORK/rep.json" 'd == {"accepted": True, "taskStatus": 2}'
ok $? "the final report is acknowledged"
cp_wait_task_status "$TID" 2 10
ok $? "task status 2: succeeded"

# --- Delete Collector by ID: 200, no body
code=$(curl -u "$ID:$KEY" -X DELETE "https://$HOST/api/v1/collectors/$CID" -s -o "$WORK/del" -w '%{http_code}')
is "$code:$(wc -c <"$WORK/del" | tr -d ' ')" "200:0" "delete collector: 200 and no body"

tap_done
