# upgrade_mirror.sh: the collector token goes only to the agent's own server.
# A command whose build URL names another host (a mirror, a CDN) is downloaded
# without it; one on the server's own host still carries it.
set -u
. "$(dirname "$0")/lib/upgrade.sh"

tap_plan 8
env_start mirror
publish "$V1" "$V2"
# The same control plane under the name localhost stands for a public mirror:
# the agent talks to https://127.0.0.1:PORT, builds are at https://localhost:PORT.
CP_EXTRA_ARGS+=(--mirror-host localhost)
cp_restart >/dev/null || { echo "Bail out! control plane restart"; exit 1; }
agent_start
wait_for 30 registered
ok $? "agent registered (collector $CID)"

mirror() { cp_stats | cp_json "mirror.$1"; }
tid=$(cp_create_task "$CID" "$V2")
cp_wait_task_status "$tid" 2 90
ok $? "task $tid to $V2 from the mirror ends 2 ($CP_TASK_MESSAGE)"
[ "$(mirror requests)" -ge 1 ]
ok $? "the package came from the mirror ($(mirror requests) requests)"
is "$(mirror withCredentials)" 0 "none of them carried the collector token"
like "$(grep "upgrade.download task=$tid " "$WORK/agent.log" | tail -n 1)" "build=$V2 auth=none " \
    "the agent logs that it sent no token"

# Back to builds on the server's own host: the download needs the token and gets it.
CP_EXTRA_ARGS=("${CP_EXTRA_ARGS[@]:0:${#CP_EXTRA_ARGS[@]}-2}")
cp_restart >/dev/null || { echo "Bail out! control plane restart"; exit 1; }
tid=$(cp_create_task "$CID" "$V1")
cp_wait_task_status "$tid" 2 90
ok $? "task $tid to $V1 from the server itself ends 2 ($CP_TASK_MESSAGE)"
like "$(grep "upgrade.download task=$tid " "$WORK/agent.log" | tail -n 1)" "build=$V1 auth=token " \
    "the agent sent the token to its own server"
is "$(mirror requests)" 0 "the mirror was not asked"
[ "$TAP_FAILED" -eq 0 ] || show_log 60
tap_done
