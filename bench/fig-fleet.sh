#!/usr/bin/env bash
# fig-fleet.sh: BENCH_FLEET (200) agents, each with its own install root, state directory,
# configuration, machine id and name, upgraded from V1 to V2 in one wave (every task created
# at once through the management API): the share that succeeds, the wall time from the first
# task created to the last task 2, and the control plane's requests per second meanwhile.
# Heartbeat interval BENCH_FLEET_HB_MS (5000 ms), long-poll on.
#
# The wave is made once for each of BENCH_FLEET_WAVES ("full delta"), each time on a fresh
# control plane and fresh roots: "full" publishes V2's package only, "delta" publishes it with
# a delta from V1 beside it (molt-pack delta, the name the control plane offers as build.delta,
# docs/upgrades.md section 10). Both report the bytes the control plane served (/admin/stats:
# all replies, and per file under /builds/) and the delta wave how many agents rebuilt V2 from
# the delta (their logs' upgrade.delta lines; fallbacks to the full package are counted too).
#
# Install roots: one `molt-installer install` makes a template; every agent's root is a
# `cp -al` of it (hardlinks: a version directory is never modified once installed, and
# the installer replaces files by rename), its state directory a copy of the template's
# journal. BENCH_FLEET_INSTALL=install runs molt-installer install for every root instead.
# The time per root of both ways is measured (in the first wave) and reported.
. "$(dirname "$0")/lib.sh"

N=${BENCH_FLEET:-200}
HB_MS=${BENCH_FLEET_HB_MS:-5000}
HOW=${BENCH_FLEET_INSTALL:-cp-al}
WAVES=${BENCH_FLEET_WAVES:-full delta}
PACK=$MOLT_TOP_BUILDDIR/packaging/molt-pack

bench_keys || die "keys"
p1=$(release "$BENCH_CACHE/rel/v1" "$V1") || die "release $V1"
p2=$(release "$BENCH_CACHE/rel/v2" "$V2") || die "release $V2"
# The delta, named as the control plane looks for it (molt-<base>-to-<version>-<os>-<arch>),
# remade whenever either package is newer.
plat=$(basename "$p2")
plat=${plat#molt-"$V2"-}
plat=${plat%%.tar.*}
delta=$BENCH_CACHE/rel/delta/molt-$V1-to-$V2-$plat.delta
if [ ! -s "$delta" ] || [ "$p1" -nt "$delta" ] || [ "$p2" -nt "$delta" ]; then
    mkdir -p "$(dirname "$delta")"
    "$PACK" delta --quiet --from "$p1" "$p2" -o "$delta" || die "delta $V1 -> $V2"
fi
trap env_end EXIT

# prepare_roots: the template and N roots under $E; sets prep_ms, other_ms, install_ms,
# roots_mib. The other way of making roots is timed on 3 roots when TIME_OTHER=1.
prepare_roots() {
    local T=$E/template d i
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
            { cp -al "$T/root" "$d/root" && cp -a "$T/state/." "$d/state/"; } ||
                die "copy of root $i"
        fi
        echo "bench-fleet-$i" >>"$E/names"
    done
    prep_ms=$(($(now_ms) - t0))
    roots_mib=$(du -sm "$E/agents" | cut -f1)
    [ "$TIME_OTHER" = 1 ] || return 0
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
}

# fleet_wave KIND: full | delta, on a fresh control plane and fresh roots.
fleet_wave() {
    local kind=$1 i per_root inst cpal base=()
    env_new "fleet-$kind"
    publish "$p2" || die "publish $V2"
    if [ "$kind" = delta ]; then
        ln -f "$delta" "$CP_BUILDS/" 2>/dev/null || cp "$delta" "$CP_BUILDS/" || die "delta"
    fi
    prepare_roots

    say "fleet: starting $N agents"
    t0=$(now_ms)
    for ((i = 1; i <= N; i++)); do
        agent_start "$E/agents/$i"
        SUP_PIDS+=("$SUP_PID")
        ((i % 20 == 0)) && sleep 0.2 # a burst of 200 TLS handshakes is not what this measures
    done
    start_ms=$(($(now_ms) - t0))

    say "fleet: wave of $N upgrades $V1 -> $V2 ($kind)"
    per_root=$((prep_ms / N))
    inst=$other_ms cpal=$per_root
    [ "$HOW" = install ] && inst=$per_root cpal=$other_ms
    [ -s "$BENCH_WORK/fleet-full.json" ] && [ "$kind" = delta ] &&
        base=(--baseline "$BENCH_WORK/fleet-full.json")
    BPY wave --names "$E/names" --old "$V1" --to "$V2" --timeout $((N * 3 + 300)) \
        --cp-pid "$CP_PID" --kind "$kind" --logs "$E/agents" --save "$BENCH_WORK/fleet-$kind.json" \
        ${base[@]+"${base[@]}"} --results "$BENCH_RESULTS" --setup "{\"rootsBy\": \"$HOW\",
        \"installMsPerRoot\": $inst, \"cpAlMsPerRoot\": $cpal, \"prepareRootsS\":
        $((prep_ms / 1000)), \"startAgentsS\": $((start_ms / 1000)), \"heartbeatIntervalMs\":
        $HB_MS, \"rootsDiskMiB\": $roots_mib, \"packageBytes\": $(stat -c %s "$p2"),
        \"deltaBytes\": $([ "$kind" = delta ] && stat -c %s "$delta" || echo null)}"
    env_end
}

TIME_OTHER=1
for kind in $WAVES; do
    case "$kind" in
    full | delta) ;;
    *) die "BENCH_FLEET_WAVES: no wave '$kind' (full delta)" ;;
    esac
    fleet_wave "$kind"
    TIME_OTHER=0
done
