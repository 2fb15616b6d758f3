#!/usr/bin/env bash
# fig-download.sh: download + verify + stage of a BENCH_DL_MIB (256) MiB package against
# `curl -o pkg URL && sha256sum pkg && tar -xf pkg -C dir` on the same file from the same
# control plane; peak RSS (VmHWM) of the agent while it upgrades with BENCH_RSS_SMALL_MIB (64)
# and BENCH_RSS_BIG_MIB (1024) MiB packages, and the upgrade worker's own peak (ru_maxrss,
# from the agent's `upgrade.worker` log line) at both sizes. Each size is a real upgrade from
# V1 to V2 in a fresh install root; its package is made for the run and deleted after it.
. "$(dirname "$0")/lib.sh"

DL=${BENCH_DL_MIB:-256}
SMALL=${BENCH_RSS_SMALL_MIB:-64}
BIG=${BENCH_RSS_BIG_MIB:-1024}
RUNS=$BENCH_WORK/download-runs
mkdir -p "$RUNS"

# baseline PKG OUT: the shell pipeline the agent's stages are compared with (wall and CPU).
baseline() {
    local url d=$BENCH_WORK/baseline
    url="$CP_URL/builds/$(basename "$1")"
    rm -rf "$d" && mkdir -p "$d/x"
    /usr/bin/time -f '%e %U %S' -o "$d/time" bash -c '
        t0=$(date +%s%3N)
        curl -sS --fail --cacert "$1" --netrc-file "$2" -o "$3/pkg" "$4" || exit 1
        t1=$(date +%s%3N)
        sha256sum "$3/pkg" >/dev/null || exit 1
        t2=$(date +%s%3N)
        tar -xf "$3/pkg" -C "$3/x" || exit 1
        t3=$(date +%s%3N)
        echo "$((t1 - t0)) $((t2 - t1)) $((t3 - t2))" >"$3/phases"' \
        _ "$CP_CA" "$CP_DIR/netrc" "$d" "$url" || { rm -rf "$d"; return 1; }
    echo "$(cat "$d/time") $(cat "$d/phases")" >>"$2"
    rm -rf "$d"
}

one_size() { # MIB
    local mib=$1 out=$RUNS/$1 rel=$BENCH_WORK/rel-$1 pkg watcher i
    mkdir -p "$out"
    local avail need=$((mib * 9 / 2 + 512))
    avail=$(df -Pm "$BENCH_WORK" | awk 'NR == 2 {print $4}')
    if [ "${avail:-0}" -lt "$need" ]; then
        say "download: skipping $mib MiB: $need MiB of free space needed, ${avail:-?} MiB free"
        echo "{\"error\": \"skipped: $need MiB of free space needed, $avail MiB free\"}" \
            >"$out/upgrade.json"
        return 0
    fi
    say "download: making a $mib MiB release of $V2"
    pkg=$(release "$rel" "$V2" "" --pad-mib "$mib") || die "release of $mib MiB"
    stat -c %s "$pkg" >"$out/bytes"
    env_new "dl-$mib"
    one_agent "bench-dl-$mib"
    publish "$pkg"
    if [ "$mib" = "$DL" ]; then
        say "download: baseline (curl, sha256sum, tar) on $(file_mib "$pkg") MiB"
        baseline "$pkg" "$out/baseline" || say "baseline failed"
    fi
    BPY proc --pid "$AGENT_PID" >"$out/idle.json"
    BPY watch-hwm --pid "$AGENT_PID" --timeout 1800 --ready "$out/watching" >"$out/hwm.json" &
    watcher=$!
    for ((i = 0; i < 200; i++)); do [ -e "$out/watching" ] && break; sleep 0.05; done
    say "download: upgrade with the $mib MiB package"
    BPY upgrade --collector "$CID" --old "$V1" --to "$V2" --timeout 1200 \
        --log "$A/agent.log" >"$out/upgrade.json"
    # The old agent exits at the switch, which ends the watcher.
    wait "$watcher"
    # For the worker's peak (its `upgrade.worker ... maxrss_kib=` line).
    cp "$A/agent.log" "$out/agent.log" 2>/dev/null || true
    if [ "$mib" = "$DL" ]; then
        say "download: baseline again"
        baseline "$pkg" "$out/baseline" || say "baseline failed"
    fi
    env_end
    rm -rf "$rel"
}

bench_keys || die "keys"
trap env_end EXIT
for s in $(printf '%s\n' "$SMALL" "$DL" "$BIG" | sort -n -u); do
    one_size "$s"
done
BPY sizes --dir "$RUNS" --dl "$DL" --small "$SMALL" --big "$BIG" --results "$BENCH_RESULTS"
