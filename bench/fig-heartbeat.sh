#!/usr/bin/env bash
# fig-heartbeat.sh: idle RSS (VmRSS) and CPU per heartbeat (utime + stime from /proc/PID/stat)
# of one molt-agent over BENCH_HEARTBEATS heartbeats (1000) at a short interval (BENCH_HB_MS,
# 100 ms, the shortest the agent accepts), over one kept-alive HTTPS connection, long-poll on
# (BENCH_HB_LONGPOLL=0: off). Then the same memory of bench/curl_floor (libcurl alone, after
# one HTTPS request to the same control plane): the part of the idle figures that is molt's.
. "$(dirname "$0")/lib.sh"

N=${BENCH_HEARTBEATS:-1000}
HB_MS=${BENCH_HB_MS:-100}
LP=${BENCH_HB_LONGPOLL:-1}
args=()
[ "$LP" = 1 ] || args+=(--no-long-poll)

bench_keys || die "keys"
env_new heartbeat ${args[@]+"${args[@]}"}
trap env_end EXIT
one_agent bench-hb

# Baseline: the curl command line, holding one HTTPS download that the control plane stalls.
head -c 65536 /dev/zero >"$CP_BUILDS/bench.bin"
cp_fault '{"type": "stall", "seconds": 30, "path": "/builds/bench.bin"}' >/dev/null
curl -s --cacert "$CP_CA" --netrc-file "$CP_DIR/netrc" -o /dev/null --max-time 20 \
    "$CP_URL/builds/bench.bin" &
curl_pid=$!
sleep 2
curl_rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$curl_pid/status" 2>/dev/null)
kill "$curl_pid" 2>/dev/null
wait "$curl_pid" 2>/dev/null
cp_faults_reset
say "heartbeat: curl holding an HTTPS download: VmRSS ${curl_rss:-?} KiB"

say "heartbeat: agent pid $AGENT_PID, collector $CID; $N heartbeats every $HB_MS ms"
BPY heartbeats --pid "$AGENT_PID" --count "$N" --interval-ms "$HB_MS" --long-poll "$LP" \
    --timeout $((N * HB_MS * 3 / 1000 + 60)) --results "$BENCH_RESULTS" \
    --baseline-rss-kib "${curl_rss:-0}" --floor-exe "$MOLT_TOP_BUILDDIR/bench/curl_floor" \
    --floor-url "$CP_URL/" --floor-ca "$CP_CA"
