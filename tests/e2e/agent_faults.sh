# agent_faults.sh: the agent survives a misbehaving or absent control plane:
# 500 and 429 storms, malformed and hostile replies, a control-plane restart, a
# rejected token (re-registration), a deleted collector, and a rejected token
# without registration credentials. After each, it heartbeats again.
set -u
. "$(dirname "$0")/lib/agent.sh"

tap_plan 33
cp_start "$W" --heartbeat-interval 300ms || { echo "Bail out! control plane"; exit 1; }
agent_up faults
ok $? "the agent registers"

# heartbeat_again [TIMEOUT_S]: replaces lib/agent.sh's; also checks that the agent still runs.
heartbeat_again() {
    local t
    t=$(now_ms)
    wait_for "${1:-30}" seen_after "$cid" "$t" && kill -0 "$pid" 2>/dev/null
}

# 500 storm: every heartbeat fails for a while; backoff (capped at 2 s here), then recovery.
cp__admin DELETE /admin/stats >/dev/null
cp_fault '{"type":"error","status":500,"path":"/api/v1/collector/heartbeat","count":6}' >/dev/null
wait_for 60 no_faults_left
ok $? "the agent keeps trying through a 500 storm"
heartbeat_again
ok $? "and heartbeats again once it is over"
is "$(heartbeats_by_status 500)" 6 "each 500 was one attempt (no retry storm)"
wait_for 5 log_has faults 'heartbeat.recovered after_failures=6'
ok $? "the log says it recovered after 6 failures"

# 429 storm with Retry-After: 2 s each time, longer than the backoff cap.
cp_fault '{"type":"error","status":429,"retryAfter":2,"path":"/api/v1/collector/heartbeat","count":3}' \
    >/dev/null
wait_for 60 no_faults_left
ok $? "the agent keeps trying through a 429 storm"
heartbeat_again
ok $? "and heartbeats again once it is over"
delays=$(grep 'heartbeat.failed.*HTTP 429' "$W/faults/agent.log" | sed 's/.*retry_in_ms=//')
is "$(printf '%s\n' "$delays" | grep -c .)" 3 "three 429s were seen"
is "$(printf '%s\n' "$delays" | awk '$1 < 2000' | wc -l)" 0 "each wait honoured Retry-After (>= 2000 ms)"

# Malformed and hostile replies: logged, ignored, heartbeating goes on.
for kind in garbage truncated types absurd huge deep empty; do
    cp_fault "{\"type\":\"malformed\",\"kind\":\"$kind\"}" >/dev/null
    wait_for 30 no_faults_left
    ok $? "a '$kind' heartbeat reply is consumed"
done
heartbeat_again
ok $? "the agent heartbeats after all of them"
log_has faults "reply of [0-9]+ bytes refused: larger than this endpoint's cap of 131072 bytes"
ok $? "the huge reply was refused as larger than the heartbeat cap (128 KiB)"
log_has faults 'heartbeat reply: JSON'
ok $? "malformed JSON is named in the log"
log_has faults 'heartbeatIntervalMs.*(expected integer|out of range)'
ok $? "mistyped and absurd intervals are named in the log"
is "$(collector_field "$cid" id)" "$cid" "the collector is unchanged"

# A control-plane restart: the agent resumes on its own.
old_url=$CP_URL
cp_restart
is "$CP_URL" "$old_url" "the control plane is back on the same URL"
heartbeat_again 60
ok $? "the agent resumes heartbeating after a control-plane restart"

# A rejected token: the agent registers again and gets the same collector back.
cp_fault "{\"type\":\"revoke\",\"collectorId\":$cid}" >/dev/null
wait_for 30 log_has faults 'token.rejected during=heartbeat action=register'
ok $? "a revoked token is noticed"
heartbeat_again
ok $? "the agent registers again and heartbeats"
is "$(identity_id faults)" "$cid" "with the same collector id"

# A deleted collector: the agent registers again (as a new collector: the server
# forgot the old one).
nreg=$(log_count faults ' identity.registered ')
cp_api DELETE "/collectors/$cid" >/dev/null
more_registrations() { [ "$(log_count faults ' identity.registered ')" -gt "$nreg" ]; }
wait_for 30 more_registrations
ok $? "after the collector was deleted the agent registers again"
cid=$(cp_collector_id faults)
is "$(identity_id faults)" "$cid" "and stores the new identity"
heartbeat_again
ok $? "and heartbeats"

# No credentials: the token is rejected and the agent cannot register; it keeps
# retrying with backoff and says why, and does not exit.
agent_stop "$pid"
agent_config faults
sed -i '/^access_id\|^access_key/d' "$W/faults/molt.conf"
agent_start faults
pid=$AGENT_PID
heartbeat_again
ok $? "without credentials the stored identity still works"
cp_fault "{\"type\":\"revoke\",\"collectorId\":$cid}" >/dev/null
wait_for 30 log_has faults 'token.rejected during=heartbeat reason="no registration credentials'
ok $? "a rejected token without credentials is explained in the log"
cp__admin DELETE /admin/stats >/dev/null
retried_401() { [ "$(heartbeats_by_status 401)" -ge 2 ]; }
wait_for 30 retried_401
ok $? "the agent keeps retrying"
kill -0 "$pid"
ok $? "and keeps running"
tap_done
