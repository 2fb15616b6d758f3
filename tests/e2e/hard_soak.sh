# hard_soak.sh: the soak run behind `make soak SOAK_MINUTES=N` (not part of
# make check). An agent heartbeating every 100 ms against the reference control
# plane, with random faults injected through its fault API, first idling
# (heartbeat faults only), then upgrading and rolling back over and over (V1 <->
# V2, and VX, whose agent exits at start, so the launcher rolls it back) with
# download faults. It fails when
#   - a task does not end (2 or 3) within SOAK_TASK_TIMEOUT seconds (stuck), or
#     ends otherwise than it should (lost: a good build must end 2 unless its
#     download was corrupted, VX must end 3 rolled back);
#   - the resident memory or the open descriptors of the long-lived agent (the
#     idle phase) or of the supervisor (the whole run) grow: the median of the
#     last quarter of samples against the first quarter (RSS: more than 10 %
#     + 2 MiB, room for one buffered 1 MiB reply; descriptors: any);
#   - the install is not consistent at the end.
# Prints TAP and a summary; samples go to $SOAK_OUT (default: soak-<time>/ in
# the build dir), kept on failure.
set -u
. "$(dirname "$0")/lib/hard.sh"

MINUTES=${SOAK_MINUTES:-10}
TASK_TIMEOUT=${SOAK_TASK_TIMEOUT:-180}
case $MINUTES in '' | *[!0-9]*) echo "Bail out! SOAK_MINUTES must be a whole number"; exit 1 ;; esac
[ "$MINUTES" -ge 1 ] || MINUTES=1
OUT=${SOAK_OUT:-$MOLT_TOP_BUILDDIR/soak-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
START=$SECONDS
END=$((START + MINUTES * 60))
IDLE_END=$((START + MINUTES * 60 * 2 / 5))

HB=100ms
env_start soak
conf_set server low_speed_timeout 2s
publish "$V1" "$V2" "$VX"
restart_with
wait_for 30 registered || { echo "Bail out! agent did not register"; exit 1; }
tap_plan 9

supervisor_pid() { pgrep -o -f "$ROOT/bin/molt-installer launch --supervise"; }
rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$1/status" 2>/dev/null; }
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
# sample FILE PID: appends "seconds rss_kb fds" for PID.
sample() {
    local r f
    r=$(rss_kb "$2") f=$(fds "$2")
    [ -n "$r" ] && [ "$f" -gt 0 ] && echo "$((SECONDS - START)) $r $f" >>"$1"
}
# grows FILE: 0 when the series in FILE grew (last quarter against first quarter).
grows() {
    "$PY" - "$1" <<'EOF'
import statistics, sys
rows = [tuple(int(x) for x in l.split()) for l in open(sys.argv[1]) if l.strip()]
if len(rows) < 8:
    print("too few samples (%d)" % len(rows)); sys.exit(1)
q = max(2, len(rows) // 4)
first, last = rows[:q], rows[-q:]
r0, r1 = statistics.median(r[1] for r in first), statistics.median(r[1] for r in last)
f0, f1 = statistics.median(r[2] for r in first), statistics.median(r[2] for r in last)
# A reply at the cap (128 KiB; the "huge" fault is refused at it) can leave a step of about that
# size in the heap: allowed once over, a steady growth is not.
grew = r1 > r0 * 1.10 + 2048 or f1 > f0
print("rss %d -> %d kB, fds %d -> %d, %d samples" % (r0, r1, f0, f1, len(rows)))
sys.exit(0 if grew else 1)
EOF
}

HB_FAULTS=(
    '{"type": "error", "status": 500, "path": "/api/v1/collector/heartbeat", "count": 5}'
    '{"type": "error", "status": 503, "retryAfter": 1, "path": "/api/v1/collector/heartbeat", "count": 3}'
    '{"type": "error", "status": 429, "retryAfter": 1, "path": "/api/v1/collector/", "count": 2}'
    '{"type": "malformed", "kind": "garbage", "count": 2}'
    '{"type": "malformed", "kind": "truncated", "count": 2}'
    '{"type": "malformed", "kind": "types", "count": 2}'
    '{"type": "malformed", "kind": "absurd", "count": 2}'
    '{"type": "malformed", "kind": "huge", "count": 1}'
    '{"type": "malformed", "kind": "deep", "count": 2}'
    '{"type": "malformed", "kind": "empty", "count": 2}'
    '{"type": "drop", "reset": true, "path": "/api/v1/collector/heartbeat", "count": 2}'
    '{"type": "drop", "reset": false, "afterBytes": 20, "path": "/api/v1/collector/heartbeat", "count": 2}'
    '{"type": "delay", "ms": 300, "count": 5}'
    '{"type": "token", "count": 1}'
)
random_hb_fault() { cp_fault "${HB_FAULTS[RANDOM % ${#HB_FAULTS[@]}]}" >/dev/null; }

# download_fault SIZE: arms a random download fault; prints its kind.
download_fault() {
    local size=$1 r
    r=$(rand_between 1 $((size - 1)))
    case $((RANDOM % 7)) in
    0) echo none ;;
    1) cp_fault "{\"type\": \"drop\", \"reset\": true, \"afterBytes\": $((r / 3 + 1)), \"count\": $((RANDOM % 3 + 1))}" >/dev/null && echo drop ;;
    2) cp_fault "{\"type\": \"stall\", \"afterBytes\": $r, \"seconds\": 8, \"count\": 1}" >/dev/null && echo stall ;;
    3) cp_fault '{"type": "error", "status": 503, "path": "/builds/", "count": 2}' >/dev/null && echo 503 ;;
    4) cp_fault '{"type": "throttle", "bytesPerSecond": 262144}' >/dev/null && echo throttle ;;
    5) cp_fault "{\"type\": \"corrupt\", \"offset\": $r}" >/dev/null && echo corrupt ;;
    6) cp_fault '{"type": "error", "status": 429, "retryAfter": 1, "path": "/builds/", "count": 1}' >/dev/null && echo 429 ;;
    esac
}

# create_task VERSION: retries while the server still sees the last task open.
create_task() {
    local tid end=$((SECONDS + 30))
    while [ "$SECONDS" -lt "$end" ]; do
        tid=$(cp_create_task "$CID" "$1" 2>/dev/null) && [ -n "$tid" ] && { echo "$tid"; return 0; }
        sleep 0.5
    done
    return 1
}

SUP=$(supervisor_pid)
sample "$OUT/supervisor" "$SUP"

# Idle phase: one agent process, heartbeat faults only.
AGENT0=$(agent_pid)
while [ "$SECONDS" -lt "$IDLE_END" ]; do
    random_hb_fault
    for i in 1 2 3 4 5; do
        sleep 1
        sample "$OUT/agent-idle" "$AGENT0"
    done
    sample "$OUT/supervisor" "$SUP"
done
is "$(agent_pid)" "$AGENT0" "the agent ran the idle phase without restarting"
cp_faults_reset
fds_idle_end=$(fds "$AGENT0")

# Upgrade phase: tasks with download faults, heartbeat faults in between.
cur=$V1 tasks=0 bad=0 stuck=0 cycle=0
: >"$OUT/tasks"
while [ "$SECONDS" -lt "$END" ]; do
    cycle=$((cycle + 1))
    if [ $((cycle % 3)) -eq 0 ]; then target=$VX; else [ "$cur" = "$V1" ] && target=$V2 || target=$V1; fi
    kind=$(download_fault "$(package_size "$target")")
    tid=$(create_task "$target") || { echo "# could not create a task to $target"; stuck=$((stuck + 1)); break; }
    tasks=$((tasks + 1))
    if ! cp_wait_task_status "$tid" 2 "$TASK_TIMEOUT" 2>/dev/null && [ "$CP_TASK_STATUS" != 3 ]; then
        echo "# task $tid to $target ($kind) did not end within $TASK_TIMEOUT s: status ${CP_TASK_STATUS:-?}"
        stuck=$((stuck + 1))
        break
    fi
    echo "$tid $target $kind $CP_TASK_STATUS $CP_TASK_MESSAGE" >>"$OUT/tasks"
    cp_faults_reset
    # What each task must come to: a corrupted download fails verification;
    # otherwise VX is rolled back and a good build is installed.
    if [ "$kind" = corrupt ]; then
        expected='^3: verifying: sha256 mismatch'
    elif [ "$target" = "$VX" ]; then
        expected="^3: health-check: rolled back: $VX"
    else
        expected='^2: '
    fi
    if ! printf '%s: %s' "$CP_TASK_STATUS" "$CP_TASK_MESSAGE" | grep -qE "$expected"; then
        echo "# task $tid to $target ($kind) ended $CP_TASK_STATUS: $CP_TASK_MESSAGE"
        bad=$((bad + 1))
    fi
    [ "$CP_TASK_STATUS" = 2 ] && cur=$target
    wait_for 30 version_is "$cur"
    random_hb_fault
    sleep 2
    cp_faults_reset
    sample "$OUT/supervisor" "$SUP"
done

ok $((stuck > 0)) "no task stuck ($tasks tasks, $cycle cycles)"
ok $((bad > 0)) "no task lost or ended wrongly ($bad bad; outcomes in $OUT/tasks)"
[ "$tasks" -ge 3 ]
ok $? "at least three tasks ran ($tasks)"
consistent "$cur"
ok $? "consistent at the end: current -> $(current_link), collector reports $(running_version)"
is "$(supervisor_pid)" "$SUP" "one supervisor all along"
msg=$(grows "$OUT/agent-idle")
ok $((!$?)) "the idle agent's memory and descriptors do not grow ($msg)"
msg=$(grows "$OUT/supervisor")
ok $((!$?)) "the supervisor's memory and descriptors do not grow ($msg)"
fds_now=$(fds "$(agent_pid)")
[ "$fds_now" -le $((fds_idle_end + 2)) ]
ok $? "the agent after $tasks upgrades holds no more descriptors than the first ($fds_now vs $fds_idle_end)"

ended=$(awk '{n[$4]++} END {for (s in n) {printf "%s%d ended %s", sep, n[s], s; sep = ", "}}' "$OUT/tasks")
echo "# soak: $MINUTES min, $tasks tasks ($ended), $stuck stuck, $bad bad; samples in $OUT"
if [ "$TAP_FAILED" -eq 0 ] && [ -z "${SOAK_OUT:-}" ]; then rm -rf "$OUT"; else show_log 60; fi
tap_done
