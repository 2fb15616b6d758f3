# agent_process.sh: the agent as a process: exit codes, the state-dir lock,
# SIGTERM while a heartbeat is held open, SIGINT, SIGHUP reloads (good, broken,
# a new server URL), a changed machine id (a cloned image becomes a new
# collector), and the service manager's notifications (READY, WATCHDOG, STOPPING; lib/notify.c).
set -u
. "$(dirname "$0")/lib/agent.sh"

tap_plan 28
cp_start "$W" --heartbeat-interval 300ms || { echo "Bail out! control plane"; exit 1; }

# Exit codes without a server.
"$AGENT_BIN" --config "$W/nonexistent.conf" run >"$W/out" 2>&1
is "$?" 1 "a missing configuration file exits 1"
like "$(cat "$W/out")" "nonexistent.conf" "and names the file"
"$AGENT_BIN" frobnicate >/dev/null 2>&1
is "$?" 2 "an unknown command exits 2"

agent_up proc "log_level = info"
ok $? "the agent registers"

# Two agents on one state dir: the second is refused.
"$AGENT_BIN" --config "$W/proc/molt.conf" run >"$W/second.out" 2>&1 &
second=$!
AGENT_PIDS+=("$second")
agent_wait_exit "$second" 10
is "$AGENT_RC" 3 "a second agent on the same state dir exits 3"
like "$(cat "$W/second.out")" "another molt-agent \\(pid $pid\\) holds $W/proc/state" \
    "and names the holder"
kill -0 "$pid"
ok $? "the first agent runs on"

# SIGHUP: a new log level takes effect.
agent_config proc
kill -HUP "$pid"
wait_for 10 log_has proc 'config.reloaded'
ok $? "SIGHUP reloads the configuration"
wait_for 10 log_has proc 'debug heartbeat.next '
ok $? "the new log level is in effect"
# A broken file is refused; the running configuration stays.
agent_config proc "bogus_key = 1"
kill -HUP "$pid"
wait_for 10 log_has proc "config.reload error=.*unknown key 'bogus_key'.*keep-running-configuration"
ok $? "a broken configuration is refused with its reason"
heartbeat_again
ok $? "and the agent heartbeats on"
# A new server URL (same server, by name): the agent registers again there.
agent_config proc
sed -i "s|^url = https://127.0.0.1:|url = https://localhost:|" "$W/proc/molt.conf"
nreg=$(log_count proc ' identity.registered ')
more_registrations() { [ "$(log_count proc ' identity.registered ')" -gt "$nreg" ]; }
kill -HUP "$pid"
wait_for 10 log_has proc 'identity.stale collector=[0-9]+ reason="server URL changed"'
ok $? "a changed server URL is noticed"
wait_for 10 more_registrations
ok $? "the agent registers again"
is "$(identity_id proc)" "$cid" "and gets its collector back"
like "$(json_get serverUrl <"$W/proc/state/identity.json")" '^https://localhost:' \
    "identity.json records the new URL"
heartbeat_again
ok $? "and heartbeats"

# SIGTERM while a heartbeat is held open by the server (30 s stall).
cp_fault '{"type":"stall","path":"/api/v1/collector/heartbeat","seconds":30,"count":1}' >/dev/null
wait_for 10 no_faults_left
ok $? "a heartbeat is being held open"
sleep 0.3
kill -TERM "$pid"
agent_wait_exit "$pid" 5
is "$AGENT_RC" 0 "SIGTERM ends it promptly with exit code 0"
log_has proc 'info agent.stopping exit_code=0'
ok $? "the log says it stopped"

# SIGINT works the same.
agent_start proc
pid=$AGENT_PID
heartbeat_again
kill -INT "$pid"
agent_wait_exit "$pid" 5
is "$AGENT_RC" 0 "SIGINT stops the agent with exit code 0"

# A cloned image: another machine id makes another collector, not an impersonation.
new_machine_id >"$W/proc/machine-id"
agent_start proc
pid=$AGENT_PID
wait_for 10 log_has proc 'identity.stale collector=[0-9]+ reason="machine id changed"'
ok $? "a different machine id is noticed"
new_id() { [ "$(identity_id proc)" != "$cid" ]; }
wait_for 20 new_id
ok $? "the agent registers as a new collector"
n=$(cp_api GET /collectors | "$CP_PY" -c 'import json,sys; print(len(json.load(sys.stdin)["collectors"]))')
is "$n" 2 "the server has the old and the new collector"
agent_stop "$pid"
"$AGENT_BIN" --config "$W/proc/molt.conf" status >"$W/out" 2>&1
is "$?" 1 "molt-agent status exits 1 when no agent runs"
like "$(cat "$W/out")" "cannot reach the agent at $W/proc/run/agent.sock" "and says so"

# sd_notify: READY, WATCHDOG at half of WATCHDOG_USEC, STOPPING.
"$CP_PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(30)
with open(sys.argv[2], "a") as f:
    while True:
        try:
            m = s.recv(4096).decode()
        except socket.timeout:
            break
        f.write(m.replace("\n", " ") + "\n")
        f.flush()
        if "STOPPING=1" in m:
            break' "$W/notify.sock" "$W/notify.log" &
listener=$!
AGENT_PIDS+=("$listener")
wait_for 5 test -S "$W/notify.sock"
agent_start proc NOTIFY_SOCKET="$W/notify.sock" WATCHDOG_USEC=400000
pid=$AGENT_PID
wait_for 10 grep -q READY=1 "$W/notify.log"
ok $? "READY=1 is sent to NOTIFY_SOCKET"
pings() { [ "$(grep -c WATCHDOG=1 "$W/notify.log")" -ge 3 ]; }
wait_for 10 pings
ok $? "WATCHDOG=1 keeps coming"
agent_stop "$pid"
wait_for 10 grep -q STOPPING=1 "$W/notify.log"
ok $? "STOPPING=1 is sent on stop"
tap_done
