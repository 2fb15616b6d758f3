# agent_basic.sh: a real molt-agent against the reference control plane over
# HTTPS: registration, the collector's fields in the management API, heartbeat
# cadence with long-poll, the local API and `molt-agent status`, a restart that
# keeps the identity.
set -u
. "$(dirname "$0")/lib/agent.sh"

tap_plan 44
cp_start "$W" --heartbeat-interval 300ms || { echo "Bail out! control plane"; exit 1; }
agent_up basic "category = e2e" "description = basic test"
ok $? "the agent registers and the server lists it by name"
is "$(identity_id basic)" "$cid" "identity.json holds the collector id"
is "$(stat -c %a "$W/basic/state/identity.json")" 600 "identity.json is private (0600)"
if grep -q "$CP_ACCESS_KEY" "$W/basic/agent.log" ||
    grep -q "$(json_get token <"$W/basic/state/identity.json")" "$W/basic/agent.log"; then
    ok 1 "no secret in the log"
else
    ok 0 "no secret in the log"
fi

# The management API's view, as the seed documents name the fields.
wait_for 10 seen_after "$cid" 0
c=$(collector "$cid")
is "$(printf '%s' "$c" | cp_json collector.osName)" Linux "osName is Linux"
is "$(printf '%s' "$c" | cp_json collector.osVersion)" "$(uname -r)" "osVersion is the kernel release"
case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64 | arm64) arch=aarch64 ;; *) arch=$(uname -m) ;; esac
is "$(printf '%s' "$c" | cp_json collector.osArch)" "$arch" "osArch is named as the documents do"
is "$(printf '%s' "$c" | cp_json collector.collectorVersion)" "$MOLT_BUILD_VERSION" \
    "collectorVersion is the build version"
is "$(printf '%s' "$c" | cp_json collector.alive)" true "alive"
is "$(printf '%s' "$c" | cp_json collector.category)" e2e "category from the configuration"
t1=$(printf '%s' "$c" | cp_json collector.lastSeenAlive)
os1=$(printf '%s' "$c" | cp_json collector.osTime)
like "$os1" '^[0-9]+$' "osTime is a number of milliseconds"

# Cadence: lastSeenAlive and osTime move on; the server sees heartbeats at its pace.
wait_for 10 seen_after "$cid" "$t1"
ok $? "lastSeenAlive advances"
os2=$(collector_field "$cid" osTime)
[ "$os2" -gt "$os1" ]
ok $? "osTime grows ($os1 -> $os2)"
cp__admin DELETE /admin/stats >/dev/null
sleep 3
n=$(heartbeats_by_status 200)
[ "$n" -ge 3 ] && [ "$n" -le 60 ]
ok $? "heartbeats follow the 300ms interval, no busy loop ($n in about 3 s)"

# The local API on the Unix socket, in the obshell envelope.
sock="$W/basic/run/agent.sock"
is "$(stat -c %a "$sock")" 660 "the socket is mode 0660"
body=$(agent_api basic /api/v1/agent)
is "$(printf '%s' "$body" | json_get successful)" true "GET /api/v1/agent succeeds"
is "$(printf '%s' "$body" | json_get data.collectorId)" "$cid" "it shows the collector id"
is "$(printf '%s' "$body" | json_get data.version)" "$MOLT_BUILD_VERSION" "and the version"
is "$(printf '%s' "$body" | json_get data.server)" "$CP_URL" "and the server"
is "$(printf '%s' "$body" | json_get data.longPoll)" true "long-poll is in use"
[ "$(printf '%s' "$body" | json_get data.lastHeartbeatTime)" -gt 0 ] &&
    [ "$(printf '%s' "$body" | json_get data.nextHeartbeatTime)" -gt 0 ]
ok $? "last and next heartbeat times are set"
like "$(printf '%s' "$body" | json_get traceId)" '^[0-9a-f]{16}$' "the envelope has a traceId"
body=$(agent_api basic /api/v1/nope)
is "$(printf '%s|%s|%s' "$(printf '%s' "$body" | json_get successful)" \
    "$(printf '%s' "$body" | json_get status)" "$(printf '%s' "$body" | json_get error.code)")" \
    "false|404|not.found" "unknown paths answer 404 in the envelope"
body=$(agent_api basic /api/v1/agent -X POST -d '{}' -H 'Content-Type: application/json')
is "$(printf '%s' "$body" | json_get status)" 405 "a known path with another method answers 405"
# The HTTP layer's refusals come in the envelope too (agent/api_http.c).
head -c 70000 /dev/zero | tr '\0' x >"$W/big.json"
body=$(agent_api basic /api/v1/agent/upgrade -X POST --data-binary @"$W/big.json" \
    -H 'Content-Type: application/json')
is "$(printf '%s|%s' "$(printf '%s' "$body" | json_get status)" \
    "$(printf '%s' "$body" | json_get error.code)")" "413|request.too.large" \
    "a body over 64 KiB answers 413"
body=$(printf '{}' | agent_api basic /api/v1/agent/upgrade -X POST --data-binary @- \
    -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/json')
is "$(printf '%s|%s' "$(printf '%s' "$body" | json_get status)" \
    "$(printf '%s' "$body" | json_get error.code)")" "411|length.required" \
    "a chunked body is refused (411)"

# Peer check: make the socket world-writable so only SO_PEERCRED stands in the way.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    chmod 711 "$W" "$W/basic" "$W/basic/run"
    chmod 666 "$sock"
    body=$(setpriv --reuid 65534 --regid 65534 --clear-groups curl -sS --max-time 10 \
        --unix-socket "$sock" http://localhost/api/v1/agent 2>&1)
    is "$(printf '%s' "$body" | json_get status 2>/dev/null)" 403 "another user is refused (403)"
    chmod 660 "$sock"
else
    echo "ok $((TAP_N += 1)) # SKIP peer check needs root and setpriv"
fi

# molt-agent status: plain lines, and the raw JSON.
out=$("$AGENT_BIN" --config "$W/basic/molt.conf" status)
ok $? "molt-agent status exits 0"
like "$out" "collector id +$cid" "status shows the collector id"
like "$out" "last heartbeat +[0-9-]+ [0-9:]+ \([0-9]+s ago\)" "status shows the last heartbeat"
like "$out" "heartbeats +[1-9][0-9]* acknowledged, 0 failed since start" "status counts the heartbeats"
like "$out" "outbox +0 final reports waiting" "status shows the outbox depth"

# /metrics: the same facts in the Prometheus text format, through the socket.
m=$(curl -sS --max-time 10 --unix-socket "$sock" -D "$W/metrics.headers" http://localhost/metrics)
like "$(cat "$W/metrics.headers")" "Content-Type: text/plain; version=0.0.4" "GET /metrics is Prometheus text"
mval() { printf '%s\n' "$m" | sed -n "s/^$1 //p"; }
is "$(mval "molt_agent_info{version=\"$MOLT_BUILD_VERSION\"}")" 1 "the running version is a label"
[ "$(mval molt_heartbeats_sent_total)" -ge 3 ] && [ "$(mval molt_heartbeats_failed_total)" = 0 ]
ok $? "heartbeats sent ($(mval molt_heartbeats_sent_total)) and failed ($(mval molt_heartbeats_failed_total))"
"$CP_PY" -c 'import sys; sys.exit(not 0 <= float(sys.argv[1]) < 5)' "$(mval molt_heartbeat_last_ack_age_seconds)"
ok $? "seconds since the last acknowledged heartbeat: $(mval molt_heartbeat_last_ack_age_seconds)"
is "$(mval molt_outbox_depth)/$(mval molt_task_active)/$(mval molt_download_bytes_total)" "0/0/0" \
    "outbox depth, no task, nothing downloaded"
is "$(printf '%s\n' "$m" | grep -c '^# TYPE molt_')" "$(printf '%s\n' "$m" | grep -c '^molt_')" \
    "each sample has its TYPE line"
out=$("$AGENT_BIN" --config "$W/basic/molt.conf" status --json)
is "$(printf '%s' "$out" | json_get data.collectorId)" "$cid" "status --json prints the API's JSON"

# A restart keeps the identity: same collector, no second registration.
agent_stop "$pid"
is "$AGENT_RC" 0 "SIGTERM stops the agent with exit code 0"
[ ! -e "$sock" ]
ok $? "the socket is removed on stop"
t2=$(now_ms)
agent_start basic
wait_for 20 seen_after "$cid" "$t2"
ok $? "after a restart the same collector heartbeats again"
is "$(log_count basic ' identity.registered ')" 1 "it did not register again"
n=$(cp_api GET /collectors | "$CP_PY" -c 'import json,sys; print(len(json.load(sys.stdin)["collectors"]))')
is "$n" 1 "the server has one collector"
tap_done
