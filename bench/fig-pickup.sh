#!/usr/bin/env bash
# fig-pickup.sh: command pickup latency, task created -> the agent's first report 6, median
# of BENCH_PICKUPS (20) tasks, with long-poll and without (server --no-long-poll), the
# heartbeat interval BENCH_PICKUP_HB_MS (1000 ms) in both cases. The tasks name a build
# signed by a key the agent does not trust, so each ends 3 at preflight within
# milliseconds and the next can follow at once; what happens after the first 6 is not
# part of this figure.
. "$(dirname "$0")/lib.sh"

N=${BENCH_PICKUPS:-20}
HB_MS=${BENCH_PICKUP_HB_MS:-1000}

bench_keys || die "keys"
trap env_end EXIT
pkg=$(release "$BENCH_CACHE/rel/v2-untrusted" "$V2" "$BENCH_CACHE/untrusted") ||
    die "release signed by the untrusted key"
for lp in 1 0; do
    args=()
    [ "$lp" = 1 ] || args+=(--no-long-poll)
    env_new "pickup-$lp" ${args[@]+"${args[@]}"}
    one_agent "bench-pickup-$lp"
    publish "$pkg"
    # The agent holds its heartbeats only from its second one, half an interval after the first.
    sleep "$(awk "BEGIN {print 2 * $HB_MS / 1000}")"
    say "pickup: $N tasks, long-poll=$lp, interval $HB_MS ms"
    BPY pickup --collector "$CID" --to "$V2" --count "$N" --interval-ms "$HB_MS" \
        --long-poll "$lp" --timeout $((N * (HB_MS * 3 / 1000 + 5) + 30)) \
        --results "$BENCH_RESULTS" >/dev/null
    env_end
done
