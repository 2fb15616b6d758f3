# cp_serve.sh: tests/controlplane/serve.sh, the README's one command for a
# reference control plane outside the tests: it makes a CA and credentials,
# prints what molt.conf needs, and those settings work (a real agent registers).
set -u
. "$(dirname "$0")/lib/agent.sh"

tap_plan 5
port=$("$CP_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$MOLT_TOP_SRCDIR/tests/controlplane/serve.sh" --dir "$W/cp" --listen "127.0.0.1:$port" \
    -- --heartbeat-interval 300ms >"$W/serve.out" 2>&1 &
spid=$!
AGENT_PIDS+=("$spid")
wait_for 30 grep -q "^cp: started" "$W/serve.out"
ok $? "serve.sh starts the server"
url=$(sed -n 's/^url  *//p' "$W/serve.out")
id=$(sed -n 's/^access id  *//p' "$W/serve.out")
key=$(sed -n 's/^access key  *\([^ ]*\).*/\1/p' "$W/serve.out")
ca=$(sed -n 's/^ca file  *//p' "$W/serve.out")
is "$url" "https://127.0.0.1:$port" "it prints the url"
ok "$( { [ -n "$id" ] && [ -n "$key" ] && [ -s "$ca" ]; }; echo $?)" \
    "the access id, the key and the CA file it made"
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$ca" -u "$id:$key" \
    "$url/api/v1/collectors")
is "$code" 200 "the management API answers with those credentials over verified TLS"
mkdir -p "$W/a"
printf '[server]\nurl = %s\naccess_id = %s\naccess_key = %s\nca_file = %s\n[agent]\nname = a\nstate_dir = %s\nrun_dir = %s\nmachine_id_file = %s\nstartup_jitter = 0\n' \
    "$url" "$id" "$key" "$ca" "$W/a/state" "$W/a/run" "$W/a/machine-id" >"$W/a/molt.conf"
new_machine_id >"$W/a/machine-id"
agent_start a
reg() { curl -sS --max-time 5 --cacert "$ca" -u "$id:$key" "$url/api/v1/collectors" | grep -q '"name": *"a"'; }
wait_for 20 reg
ok $? "an agent configured with what it printed registers"
tap_done
