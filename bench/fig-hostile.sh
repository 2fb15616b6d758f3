#!/usr/bin/env bash
# fig-hostile.sh: RSS of one molt-agent after a hostile burst of heartbeat replies
# (BENCH_HOSTILE, 200, at the heartbeat reply's 128 KiB cap, the costliest valid reply to
# parse, and as many a byte over it, alternating) against its idle RSS just before, at
# 100 ms heartbeats without long-poll. Goal: back within 1 MiB of idle.
. "$(dirname "$0")/lib.sh"

N=${BENCH_HOSTILE:-200}
HB_MS=100

bench_keys || die "keys"
env_new hostile --no-long-poll
trap env_end EXIT
one_agent bench-hostile
say "hostile: agent pid $AGENT_PID, collector $CID; $N replies at the cap and $N over"
BPY hostile --pid "$AGENT_PID" --count "$N" --timeout $((N * 2 / 5 + 120)) \
    --results "$BENCH_RESULTS"
