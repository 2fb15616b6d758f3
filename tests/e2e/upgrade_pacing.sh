# upgrade_pacing.sh: how an agent paces itself towards the fleet's servers (issue 18). A
# download under agent.download_max_rate, or under a lower maxBytesPerSecond from the control
# plane, takes at least size/rate and still reports progress; a command asking for more than the
# host's cap gets the host's cap. After a start the first registration waits the delay the agent
# drew in [0, startup_jitter]; the trial start after a switch does not wait; a stop ends the wait
# at once. A rate-limited download whose connection drops resumes under the cap. Only lower
# bounds on time are asserted (a slow machine only adds to them).
set -u
. "$(dirname "$0")/lib/upgrade.sh"

# ms_of STAMP: milliseconds since the epoch of a log line's 2026-12-02T20:41:57.123Z stamp.
ms_of() {
    local s=$1
    echo $(( $(date -ud "${s%.*}" +%s) * 1000 + 10#$(echo "${s##*.}" | tr -d Z) ))
}
# stamp_of EVENT [PATTERN]: the stamp of the first agent log line with EVENT (and PATTERN).
stamp_of() { grep " $1 ${2:-}" "$WORK/agent.log" | head -n 1 | cut -d' ' -f1; }

# progress_while_downloading TASK SIZE T0_MS: polls the task until it leaves the download, then
# prints "ELAPSED_MS DISTINCT_PARTIAL_PROGRESS_VALUES" (elapsed since T0_MS).
progress_while_downloading() {
    local tid=$1 size=$2 t0=$3 seen='' stage done end=$((SECONDS + 120))
    while [ "$SECONDS" -lt "$end" ]; do
        cp_api GET "/collectors/upgrades/$tid" >/dev/null 2>&1 || { sleep 0.2; continue; }
        stage=$(printf '%s' "$CP_BODY" | cp_json upgrade.progress.stage 2>/dev/null)
        done=$(printf '%s' "$CP_BODY" | cp_json upgrade.progress.bytesDone 2>/dev/null)
        case $stage in
        ''|null|accepted|preflight) ;;
        downloading)
            case $done in ''|0|"$size") ;; *) seen="$seen $done" ;; esac ;;
        *) break ;;
        esac
        sleep 0.2
    done
    echo "$(( $(date +%s%3N) - t0 )) $(printf '%s\n' $seen | sort -u | grep -c .)"
}

tap_plan 21
env_start pacing
size=$(stat -c %s "$(pkg_of "$V2")")
size1=$(stat -c %s "$(pkg_of "$V1")")
# The host's cap: about 6 s for the package (the command's lower rate: 8 s). libcurl reads in
# bursts of up to 100 reads of its buffer (1 KiB at these rates) between checks of the rate, and
# starts its average again every 3 s: the bounds allow for 256 KiB read ahead.
cap=$(( size / 6 ))
[ "$cap" -ge 1024 ] || cap=1024
slow=$(( size1 / 8 ))
[ "$slow" -ge 1024 ] || slow=1024
agent_conf_write "$WORK" "$NAME" "$FIX/trusted" --heartbeat 1s --trial-timeout 20s \
    --log-level debug --startup-jitter 2s --download-max-rate "$cap" ||
    { echo "Bail out! agent configuration"; exit 1; }
publish "$V1" "$V2"

# 1. Start-up jitter on a plain start.
agent_start
wait_for 30 registered
ok $? "agent registered (collector $CID)"
line=$(grep " agent.startup_jitter " "$WORK/agent.log" | head -n 1)
delay=$(printf '%s' "$line" | sed -n 's/.* delay_ms=\([0-9]*\) jitter_ms=2000$/\1/p')
ok "$( [ -n "$delay" ] && [ "$delay" -ge 0 ] && [ "$delay" -le 2000 ]; echo $?)" \
    "the agent drew its start-up delay in [0, 2000] ms ($line)"
jit=$(ms_of "$(stamp_of agent.startup_jitter)")
reg=$(ms_of "$(stamp_of identity.registered)")
# Both stamps are the agent's own clock, cut to milliseconds: a tolerance of 5 ms for that.
ok "$( [ $((reg - jit)) -ge $((${delay:-0} - 5)) ]; echo $?)" \
    "its first registration went $((reg - jit)) ms after the delay was drawn, not before $delay ms"

# 2. The host's cap wins over a command asking for more.
t0=$(date +%s%3N)
tid=$(cp_create_task "$CID" "$V2" $(( cap * 4 )))
ok $? "task $tid to $V2 with maxBytesPerSecond $(( cap * 4 )) (4 times the host's cap $cap)"
read -r elapsed reports < <(progress_while_downloading "$tid" "$size" "$t0")
need=$(( (size - 262144) * 1000 / cap ))
ok "$( [ "$elapsed" -ge "$need" ]; echo $?)" \
    "the $size-byte download took $elapsed ms, at least (size - 256 KiB) / host cap = $need ms"
ok "$( [ "$reports" -ge 2 ]; echo $?)" \
    "$reports distinct progress reports reached the server during it"
like "$(grep "upgrade.rate task=$tid " "$WORK/agent.log")" \
    "max_bytes_per_second=$cap host_cap=$cap command=$(( cap * 4 ))" \
    "the agent logged the host's cap as the rate"
cp_wait_task_status "$tid" 2 90
ok $? "task $tid ends 2 ($CP_TASK_MESSAGE)"

# 3. The trial start after the switch did not wait.
like "$(grep " agent.startup_jitter " "$WORK/agent.log" | sed -n 2p)" \
    "delay_ms=0 jitter_ms=2000 reason=trial" "the new version's trial start skipped the jitter"
wait_for 20 version_is "$V2"
ok $? "collector reports $V2"

# 4. A command asking for less than the host's cap gets it.
t0=$(date +%s%3N)
tid=$(cp_create_task "$CID" "$V1" "$slow")
ok $? "task $tid to $V1 with maxBytesPerSecond $slow (under the host's cap $cap)"
read -r elapsed reports < <(progress_while_downloading "$tid" "$size1" "$t0")
need=$(( (size1 - 262144) * 1000 / slow ))
ok "$( [ "$elapsed" -ge "$need" ]; echo $?)" \
    "the $size1-byte download took $elapsed ms, at least (size - 256 KiB) / command rate = $need ms"
ok "$( [ "$reports" -ge 2 ]; echo $?)" \
    "$reports distinct progress reports reached the server during it"
like "$(grep "upgrade.rate task=$tid " "$WORK/agent.log")" \
    "max_bytes_per_second=$slow host_cap=$cap command=$slow" \
    "the agent logged the command's rate"
cp_wait_task_status "$tid" 2 90
ok $? "task $tid ends 2 ($CP_TASK_MESSAGE)"

# 4b. A rate-limited download that loses its connection twice resumes under the same cap: the
# bytes already on disk are not fetched again, the cap holds on every new connection, progress
# still reaches the server, and the task ends 2.
cp_fault "{\"type\": \"drop\", \"afterBytes\": $(( size / 3 )), \"count\": 2}" >/dev/null
t0=$(date +%s%3N)
tid=$(cp_create_task "$CID" "$V2")
ok $? "task $tid to $V2 at the host's cap $cap, the connection to be dropped twice"
read -r elapsed reports < <(progress_while_downloading "$tid" "$size" "$t0")
cp_wait_task_status "$tid" 2 90
ok $? "task $tid ends 2 after the drops ($CP_TASK_MESSAGE)"
cp_faults_reset
dl=$(grep -h "upgrade.download task=$tid " "$WORK/agent.log" | grep " file=package " | head -n 1)
attempts=$(printf '%s' "$dl" | sed -n 's/.* attempts=\([0-9]*\) .*/\1/p')
got=$(printf '%s' "$dl" | sed -n 's/.* bytes=\([0-9]*\) .*/\1/p')
ok "$( [ "${attempts:-0}" -ge 3 ] && [ -n "$got" ] && [ $((got * 2)) -lt $((size * 3)) ]; echo $?)" \
    "it took ${attempts:-?} connections and $got bytes for $size (resumed, < 1.5x: $dl)"
# libcurl may read up to 256 KiB ahead of the cap on each of those connections.
need=$(( (size - 262144 * ${attempts:-3}) * 1000 / cap ))
ok "$( [ "$elapsed" -ge "$need" ] && [ "$reports" -ge 2 ]; echo $?)" \
    "the download took $elapsed ms (at least $need ms at the cap) with $reports progress reports"
wait_for 20 version_is "$V2"
ok $? "collector reports $V2"

# 5. A stop ends a long start-up wait at once: an agent of its own (own state), jitter 1 h.
mkdir -p "$WORK/j/state" "$WORK/j/run"
sed -e "s|^state_dir = .*|state_dir = $WORK/j/state|" -e "s|^run_dir = .*|run_dir = $WORK/j/run|" \
    -e "s|^startup_jitter = .*|startup_jitter = 1h|" -e "s|^name = .*|name = $NAME-j|" \
    "$WORK/molt.conf" >"$WORK/j/molt.conf"
chmod 600 "$WORK/j/molt.conf"
MOLT_CONFIG=$WORK/j/molt.conf "$MOLT_TOP_BUILDDIR/agent/molt-agent" run >"$WORK/j/agent.log" 2>&1 &
jpid=$!
wait_for 20 grep -q " agent.startup_jitter " "$WORK/j/agent.log"
jline=$(grep " agent.startup_jitter " "$WORK/j/agent.log")
kill -TERM "$jpid"
stopped=1
for _ in $(seq 100); do kill -0 "$jpid" 2>/dev/null || { stopped=0; break; }; sleep 0.1; done
kill -KILL "$jpid" 2>/dev/null
wait "$jpid" 2>/dev/null
ok "$stopped" "SIGTERM ended the agent during its start-up wait ($jline)"
[ "$TAP_FAILED" -eq 0 ] || show_log 80
tap_done
