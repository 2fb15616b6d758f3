# lib/hard.sh: shared by the fault-matrix tests (tests/e2e/hard_*.sh), on top
# of lib/upgrade.sh (control plane over HTTPS on 127.0.0.1, an install root
# with V1, the agent run by `launch --supervise` under a restart loop).
# Helpers to restart the service with faults in its environment and to read
# what the agent logged since a mark.
. "$(dirname "${BASH_SOURCE[0]}")/upgrade.sh"

# Loopback only: no proxy may stand between the agent and the test servers.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
export no_proxy=127.0.0.1,localhost,::1 NO_PROXY=127.0.0.1,localhost,::1

# conf_set SECTION KEY VALUE: sets a key in the test's molt.conf (before the
# agent starts, or followed by a restart).
conf_set() {
    "$PY" - "$WORK/molt.conf" "$1" "$2" "$3" <<'EOF'
import sys
path, section, key, value = sys.argv[1:]
out, cur, done = [], None, False
for line in open(path).read().splitlines():
    s = line.strip()
    if s.startswith("["):
        if cur == section and not done:
            out.append(f"{key} = {value}")
            done = True
        cur = s[1:-1]
    elif cur == section and s.split("=")[0].strip() == key:
        if not done:
            out.append(f"{key} = {value}")
            done = True
        continue
    out.append(line)
if not done:
    if cur != section:
        out.append(f"[{section}]")
    out.append(f"{key} = {value}")
open(path, "w").write("\n".join(out) + "\n")
EOF
}

# restart_with [VAR=VALUE...]: stops the service and starts it again with
# these in the environment of the launcher, and so of every agent and
# installer process it starts. MOLT_FAULT points fire once each
# (MOLT_FAULT_ONCE_DIR, a fresh directory per restart).
RESTARTS=0
restart_with() {
    local kv
    agent_stop
    RESTARTS=$((RESTARTS + 1))
    mkdir -p "$WORK/once/$RESTARTS"
    export MOLT_FAULT_ONCE_DIR="$WORK/once/$RESTARTS"
    for kv in "$@"; do export "${kv?}"; done
    agent_start
    unset MOLT_FAULT_ONCE_DIR
    for kv in "$@"; do unset "${kv%%=*}"; done
}

# fired POINT: the fault point POINT fired since the last restart_with.
fired() { [ -e "$WORK/once/$RESTARTS/$1" ]; }

# log_mark: remembers the end of the agent log; log_since REGEX matches only
# lines written after the mark.
LOG_MARK=0
log_mark() { LOG_MARK=$(wc -l <"$WORK/agent.log" 2>/dev/null || echo 0); }
log_since() { tail -n +"$((LOG_MARK + 1))" "$WORK/agent.log" | grep -qE -- "$1"; }
log_since_line() { tail -n +"$((LOG_MARK + 1))" "$WORK/agent.log" | grep -E -- "$1" | tail -n 1; }
log_since_count() { tail -n +"$((LOG_MARK + 1))" "$WORK/agent.log" | grep -cE -- "$1"; }

# task_ends TID STATUS TIMEOUT_S: the task reached STATUS (another final status fails at once).
task_ends() { cp_wait_task_status "$1" "$2" "$3"; }

# consistent VERSION: current names VERSION, the collector reports it, the
# journal is at rest and the upgrade directory holds no task leftovers.
consistent() {
    local v=$1 state
    wait_for 30 version_is "$v" || return 1
    [ "$(current_link)" = "$v" ] || return 1
    state=$("$ROOT/bin/molt-installer" status --json 2>/dev/null | cp_json journal.state)
    case $state in idle | committed | rolled-back) ;; *) return 1 ;; esac
    wait_for 10 upgrade_dir_empty
}
upgrade_dir_empty() { [ -z "$(ls -A "$UPG" 2>/dev/null)" ]; }

# rand_between LO HI: a random integer in [LO, HI).
rand_between() { echo $(($1 + (RANDOM * 32768 + RANDOM) % ($2 - $1))); }

# package_size VERSION
package_size() { stat -c %s "$(pkg_of "$1")"; }

# no_faults_left: every armed control-plane fault has fired.
no_faults_left() {
    [ "$(cp__admin GET /admin/faults | cp_json faults | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 0 ]
}

# todo RC DESCRIPTION REASON: a check of a known gap (TAP "# TODO"): reported,
# counted as an expected failure while it fails, as XPASS once it is fixed.
todo() {
    TAP_N=$((TAP_N + 1))
    if [ "$1" -eq 0 ]; then echo "ok $TAP_N - $2 # TODO $3"; else echo "not ok $TAP_N - $2 # TODO $3"; fi
}
