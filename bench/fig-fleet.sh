#!/usr/bin/env bash
# fig-fleet.sh: BENCH_FLEET (200) agents, each with its own install root, state directory,
# configuration, machine id and name, upgraded from V1 to V2 in one wave (every task created
# at once through the management API): the share that succeeds, the wall time from the first
# task created to the last task 2, and the control plane's requests per second meanwhile.
# Heartbeat interval BENCH_FLEET_HB_MS (5000 ms), long-poll on.
#
# Install roots: one `molt-installer install` makes a template; every agent's root is a
# `cp -al` of it (hardlinks: a version directory is never modified once installed, and
# the installer replaces files by rename), its state directory a copy of the template's
# journal. BENCH_FLEET_INSTALL=install runs molt-installer install for every root instead.
# The time per root of both ways is measured and reported.
. "$(dirname "$0")/lib.sh"

N=${BENCH_FLEET:-200}
HB_MS=${BENCH_FLEET_HB_MS:-5000}
HOW=${BENCH_FLEET_INSTALL:-cp-al}

bench_keys || die "keys"
p1=$(release "$BENCH_CACHE/rel/v1" "$V1") || die "release $V1"
p2=$(release "$BENCH_CACHE/rel/v2" "$V2") || die "release $V2"
env_new fleet
trap env_end EXIT
publish "$p2"

T=$E/template
root_conf "$T" template
t0=$(now_ms)
root_install "$T" "$p1" || die "install of the template"
install_ms=$(($(now_ms) - t0))

say "fleet: preparing $N install roots ($HOW; one install took $install_ms ms)"
: >"$E/names"
t0=$(now_ms)
for ((i = 1; i <= N; i++)); do
    d=$E/agents/$i
    root_conf "$d" "bench-fleet-$i"
    if [ "$HOW" = install ]; then
        root_install "$d" "$p1" || die "install of root $i"
    else
        { cp -al "$T/root" "$d/root" && cp -a "$T/state/." "$d/state/"; } || die "copy of root $i"
    fi
    echo "bench-fleet-$i" >>"$E/names"
done
prep_ms=$(($(now_ms) - t0))
# The other way, timed on a few roots, so the report can compare both.
t0=$(now_ms)
for ((i = 1; i <= 3; i++)); do
    d=$E/cmp/$i
    root_conf "$d" "cmp-$i"
    if [ "$HOW" = install ]; then
        cp -al "$T/root" "$d/root" && cp -a "$T/state/." "$d/state/"
    else
        root_install "$d" "$p1"
    fi
done
other_ms=$((($(now_ms) - t0) / 3))
rm -rf "$E/cmp"
roots_mib=$(du -sm "$E/agents" | cut -f1)

say "fleet: starting $N agents"
t0=$(now_ms)
for ((i = 1; i <= N; i++)); do
    agent_start "$E/agents/$i"
    SUP_PIDS+=("$SUP_PID")
    ((i % 20 == 0)) && sleep 0.2 # a burst of 200 TLS handshakes is not what this measures
done
start_ms=$(($(now_ms) - t0))

say "fleet: wave of $N upgrades $V1 -> $V2"
per_root=$((prep_ms / N))
if [ "$HOW" = install ]; then inst=$per_root cpal=$other_ms; else inst=$other_ms cpal=$per_root; fi
BPY wave --names "$E/names" --old "$V1" --to "$V2" --timeout $((N * 3 + 300)) --cp-pid "$CP_PID" \
    --results "$BENCH_RESULTS" --setup "{\"rootsBy\": \"$HOW\", \"installMsPerRoot\": $inst,
    \"cpAlMsPerRoot\": $cpal, \"prepareRootsS\": $((prep_ms / 1000)), \"startAgentsS\":
    $((start_ms / 1000)), \"heartbeatIntervalMs\": $HB_MS, \"rootsDiskMiB\": $roots_mib}"
