#!/usr/bin/env bash
# fig-e2e.sh: end to end, task created -> 2, with a BENCH_E2E_MIB (20) MiB package and the
# shortest health window (heartbeat interval BENCH_E2E_HB_MS, 100 ms, the shortest the agent
# accepts: the new version commits on its first acknowledged heartbeat); and the switch
# downtime, the last heartbeat of the old version -> the first of the new in the control
# plane's heartbeat log. BENCH_E2E_RUNS (5) upgrades, alternately V1 -> V2 and V2 -> V1
# (a downgrade), medians reported.
. "$(dirname "$0")/lib.sh"

N=${BENCH_E2E_RUNS:-5}
MIB=${BENCH_E2E_MIB:-20}
HB_MS=${BENCH_E2E_HB_MS:-100}
OUT=$BENCH_WORK/e2e-runs

bench_keys || die "keys"
trap env_end EXIT
p1=$(release "$BENCH_CACHE/rel/v1-pad$MIB" "$V1" "" --pad-mib "$MIB") || die "release $V1"
p2=$(release "$BENCH_CACHE/rel/v2-pad$MIB" "$V2" "" --pad-mib "$MIB") || die "release $V2"
env_new e2e
one_agent bench-e2e
publish "$p1" "$p2"
mkdir -p "$OUT"
from=$V1
for ((i = 1; i <= N; i++)); do
    if [ "$from" = "$V1" ]; then to=$V2; else to=$V1; fi
    say "e2e: run $i of $N, $from -> $to ($(file_mib "$p2") MiB)"
    BPY upgrade --collector "$CID" --old "$from" --to "$to" --timeout 120 \
        --log "$A/agent.log" >"$OUT/$i.json"
    wait_version bench-e2e "$to" 30 || { say "e2e: $to does not heartbeat"; break; }
    sleep 1 # let the new agent finish its garbage collection before the next task
    from=$to
done
BPY e2e --dir "$OUT" --runs "$N" --interval-ms "$HB_MS" --mib "$MIB" --results "$BENCH_RESULTS"
