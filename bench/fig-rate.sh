#!/usr/bin/env bash
# fig-rate.sh: a BENCH_RATE_MIB (1024) MiB package downloaded by an agent whose
# agent.download_max_rate is BENCH_RATE (50M): the mean rate of its download stage (agent log:
# stage downloading -> stage verifying, the package's bytes) against the cap. A real upgrade
# from V1 to V2 in a fresh install root; the package is made for the run and deleted after it.
. "$(dirname "$0")/lib.sh"

MIB=${BENCH_RATE_MIB:-1024}
CAP=${BENCH_RATE:-50M}
OUT=$BENCH_WORK/rate-run
REL=$BENCH_WORK/rel-rate
mkdir -p "$OUT"

bench_keys || die "keys"
trap env_end EXIT
say "rate: making a $MIB MiB release of $V2"
pkg=$(release "$REL" "$V2" "" --pad-mib "$MIB") || die "release of $MIB MiB"
stat -c %s "$pkg" >"$OUT/bytes"
env_new rate
DOWNLOAD_MAX_RATE=$CAP one_agent bench-rate
publish "$pkg"
say "rate: upgrade with the $(file_mib "$pkg") MiB package at download_max_rate = $CAP"
BPY upgrade --collector "$CID" --old "$V1" --to "$V2" --timeout 1200 \
    --log "$A/agent.log" >"$OUT/upgrade.json"
env_end
rm -rf "$REL"
BPY rate --dir "$OUT" --cap "$CAP" --results "$BENCH_RESULTS"
