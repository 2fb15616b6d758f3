# lib/agent.sh: shared setup of the agent e2e tests: a throwaway work dir, the
# reference control plane over HTTPS on 127.0.0.1 (cp.sh), agent configurations,
# and bounded helpers to start, wait for and stop real molt-agent processes.
# Everything started here is killed on exit; a failing test prints agent log tails.
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/cp.sh"
. "$(dirname "${BASH_SOURCE[0]}")/wait.sh"

AGENT_BIN="$MOLT_TOP_BUILDDIR/agent/molt-agent"
# Loopback only: no proxy may stand between the agent and the test server.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
export no_proxy=127.0.0.1,localhost,::1 NO_PROXY=127.0.0.1,localhost,::1
unset MOLT_CONFIG MOLT_FAULT
W=$(mktemp -d "${TMPDIR:-/tmp}/molt-agent-e2e.XXXXXX") || exit 1
AGENT_PIDS=()
AGENT_NAMES=()

agent_cleanup() {
    local p n
    for p in ${AGENT_PIDS[@]+"${AGENT_PIDS[@]}"}; do
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    if [ "$TAP_FAILED" -gt 0 ]; then
        for n in ${AGENT_NAMES[@]+"${AGENT_NAMES[@]}"}; do
            tap_diag "---- tail of $n's log"
            tail -n 25 "$W/$n/agent.log" 2>/dev/null | sed 's/^/# /'
        done
    fi
    cp_stop
    [ -n "${AGENT_KEEP:-}" ] || rm -rf "$W"
}
trap agent_cleanup EXIT
trap 'exit 1' INT TERM

new_machine_id() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }

# agent_config NAME [LINE...]: $W/NAME/molt.conf for the running control plane; extra
# lines go to the [agent] section (after startup_jitter = 0, which one may override). Each agent
# gets its own state and run dirs and machine id.
agent_config() {
    local n=$1 d="$W/$1"
    shift
    mkdir -p "$d"
    [ -s "$d/machine-id" ] || new_machine_id >"$d/machine-id"
    {
        printf '[server]\nurl = %s\naccess_id = %s\naccess_key = %s\nca_file = %s\n' \
            "$CP_URL" "$CP_ACCESS_ID" "$CP_ACCESS_KEY" "$CP_CA"
        printf 'connect_timeout = 2s\n'
        printf '[agent]\nname = %s\nstate_dir = %s/state\nrun_dir = %s/run\n' "$n" "$d" "$d"
        printf 'machine_id_file = %s/machine-id\nbackoff_max = 2s\nlog_level = debug\n' "$d"
        printf 'startup_jitter = 0\n'    # the tests time what follows a start
        for l in "$@"; do printf '%s\n' "$l"; done
    } >"$d/molt.conf"
}

# agent_up NAME [LINE...]: agent_config NAME LINE..., agent_start NAME (pid is its pid), then
# waits up to 20 s for the server to know NAME; cid is its collector id. 0 once registered.
agent_up() {
    local n=$1 rc
    agent_config "$@"
    agent_start "$n"
    pid=$AGENT_PID
    wait_for 20 registered "$n"
    rc=$?
    cid=$(cp_collector_id "$n")
    return "$rc"
}

# agent_start NAME [ENV=VALUE...]: starts molt-agent run in the background; AGENT_PID.
agent_start() {
    local n=$1
    shift
    env "$@" "$AGENT_BIN" --config "$W/$n/molt.conf" run >>"$W/$n/agent.log" 2>&1 &
    AGENT_PID=$!
    AGENT_PIDS+=("$AGENT_PID")
    case " ${AGENT_NAMES[*]-} " in *" $n "*) ;; *) AGENT_NAMES+=("$n") ;; esac
}

# agent_wait_exit PID TIMEOUT_S: waits for PID to end; AGENT_RC is its exit code (or
# "running" when it did not end in time).
agent_wait_exit() {
    local pid=$1 end=$((SECONDS + $2))
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$SECONDS" -ge "$end" ]; then
            AGENT_RC=running
            return 1
        fi
        sleep 0.05
    done
    wait "$pid" 2>/dev/null
    AGENT_RC=$?
    return 0
}

# agent_stop PID: SIGTERM, then a bounded wait (SIGKILL after 10 s); AGENT_RC.
agent_stop() {
    kill -TERM "$1" 2>/dev/null
    agent_wait_exit "$1" 10 || { kill -KILL "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
}

# log_has NAME REGEX: the agent's log matches.
log_has() { grep -qE -- "$2" "$W/$1/agent.log"; }
# log_count NAME REGEX
log_count() { grep -cE -- "$2" "$W/$1/agent.log"; }

# collector ID: the management API's view of a collector (prints the JSON).
collector() { cp_api GET "/collectors/$1"; }
# collector_field ID FIELD
collector_field() { cp_api GET "/collectors/$1" | cp_json "collector.$2"; }
# registered NAME: true once the server knows a collector called NAME.
registered() { cp_collector_id "$1" >/dev/null; }
# seen_after ID MS: true once the collector's lastSeenAlive is later than MS.
seen_after() {
    local t
    t=$(collector_field "$1" lastSeenAlive) || return 1
    [ "$t" -gt "$2" ]
}
now_ms() { "$CP_PY" -c 'import time; print(int(time.time() * 1000))'; }
# heartbeat_again [TIMEOUT_S]: the server has seen collector $cid after now (within 30 s).
heartbeat_again() {
    local t
    t=$(now_ms)
    wait_for "${1:-30}" seen_after "$cid" "$t"
}
# heartbeats_by_status STATUS: heartbeats the server answered with STATUS since the last reset.
heartbeats_by_status() {
    cp_stats | "$CP_PY" -c '
import json, sys
e = json.load(sys.stdin)["endpoints"].get("POST /api/v1/collector/heartbeat", {})
print(e.get("statuses", {}).get(sys.argv[1], 0))' "$1"
}
# faults_left: armed faults not yet used up.
faults_left() { cp__admin GET /admin/faults | "$CP_PY" -c 'import json,sys; print(len(json.load(sys.stdin)["faults"]))'; }
no_faults_left() { [ "$(faults_left)" = 0 ]; }

# agent_api NAME PATH [curl args]: GET on the agent's Unix socket; prints the body.
agent_api() {
    local n=$1 p=$2
    shift 2
    curl -sS --max-time 10 --unix-socket "$W/$n/run/agent.sock" "$@" "http://localhost$p"
}

# json_get PATH: like cp_json, for any JSON on stdin.
json_get() { cp_json "$1"; }

# identity_id NAME: the collector id the agent stored.
identity_id() { json_get collectorId <"$W/$1/state/identity.json"; }
