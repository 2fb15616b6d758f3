# upgrade_proxy.sh: an upgrade through the proxy of https_proxy, as an agent in
# a network that reaches its control plane only through one would make it
# (issue 20). The agent pins the proxy (from the environment: server.proxy is
# unset) beside the task's hosts; the sandboxed worker, which opens no socket
# of its own, gets its connection to the proxy from the agent and tunnels the
# download through it; the upgrade and the way back end 2.
set -u
. "$(dirname "$0")/lib/upgrade.sh"

tap_plan 6
env_start proxy
publish "$V1" "$V2"

"$PY" "$MOLT_TOP_SRCDIR/tests/e2e/lib/connect_proxy.py" "$WORK/proxy.log" >"$WORK/proxy.port" &
PROXY_PID=$!
proxy_cleanup() { kill "$PROXY_PID" 2>/dev/null; env_cleanup; }
trap proxy_cleanup EXIT
wait_for 10 test -s "$WORK/proxy.port" || { echo "Bail out! proxy"; exit 1; }
pport=$(head -n 1 "$WORK/proxy.port")
https_proxy=http://127.0.0.1:$pport no_proxy='' NO_PROXY='' HTTPS_PROXY='' all_proxy='' ALL_PROXY=''
export https_proxy no_proxy NO_PROXY HTTPS_PROXY all_proxy ALL_PROXY

agent_start
wait_for 30 registered
ok $? "agent registered through https_proxy (collector $CID)"

: >"$WORK/proxy.log"
tid=$(cp_create_task "$CID" "$V2")
cp_wait_task_status "$tid" 2 90
ok $? "the upgrade to $V2 through the proxy ends 2 ($CP_TASK_MESSAGE)"
like "$(grep 'worker.sandbox' "$WORK/agent.log" | head -n 1)" 'ports=2 connections=agent' \
    "the worker's hosts: the control plane's and the proxy's, its connections the agent's"
connects=$(grep "upgrade.connect task=$tid " "$WORK/agent.log")
like "$connects" "address=127.0.0.1 port=$pport result=\"ok\"" \
    "the agent connected the worker to the proxy"
! printf '%s\n' "$connects" | grep -v " port=$pport " | grep -q .
ok $? "and to nothing else (the download went through it)"

tid=$(cp_create_task "$CID" "$V1")
cp_wait_task_status "$tid" 2 90
ok $? "and back to $V1 through the proxy"

agent_stop
