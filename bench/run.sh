#!/usr/bin/env bash
# bench/run.sh [FIGURE...]: molt's benchmarks. Runs the figures (heartbeat, download, pickup,
# e2e, fleet; all by default), then prints one table where each figure stands beside its
# baseline or goal, all measured in this run on this machine, and writes the results as JSON.
# `make bench` runs it from a build directory; see bench/README.md for the options.
# Never part of `make check`, and never asserts anything about timing: a figure that misses
# its goal is reported as such, the exit status only says whether the figures could be measured.
set -u

here=$(cd "$(dirname "$0")" && pwd)
export MOLT_TOP_SRCDIR=${MOLT_TOP_SRCDIR:-$(dirname "$here")}
export MOLT_TOP_BUILDDIR=${MOLT_TOP_BUILDDIR:-$(pwd)}
export PYTHON3=${PYTHON3:-python3}
AGENT="$MOLT_TOP_BUILDDIR/agent/molt-agent"
[ -x "$AGENT" ] && [ -x "$MOLT_TOP_BUILDDIR/installer/molt-installer" ] ||
    { echo "bench: build first: $AGENT or molt-installer is missing" >&2; exit 2; }
if [ -z "${MOLT_BUILD_VERSION:-}" ]; then
    MOLT_BUILD_VERSION=$("$AGENT" --version | sed -n 's/^molt-agent //p')
fi
export MOLT_BUILD_VERSION

if [ -n "${BENCH_QUICK:-}" ]; then # a run of a few minutes, for trying things out
    : "${BENCH_HEARTBEATS:=200}" "${BENCH_DL_MIB:=64}" "${BENCH_RSS_SMALL_MIB:=16}"
    : "${BENCH_RSS_BIG_MIB:=128}" "${BENCH_PICKUPS:=10}" "${BENCH_E2E_RUNS:=3}" "${BENCH_FLEET:=50}"
    : "${BENCH_RATE_MIB:=256}"
fi
export BENCH_HEARTBEATS BENCH_DL_MIB BENCH_RSS_SMALL_MIB BENCH_RSS_BIG_MIB BENCH_PICKUPS \
    BENCH_E2E_RUNS BENCH_FLEET BENCH_RATE_MIB 2>/dev/null

export BENCH_CACHE=${BENCH_CACHE:-$MOLT_TOP_BUILDDIR/bench-cache}
OUT=${BENCH_OUT:-$MOLT_TOP_BUILDDIR/bench-results.json}
LOGS=${BENCH_LOGS:-$MOLT_TOP_BUILDDIR/bench-logs}
LIMIT=${BENCH_FIGURE_TIMEOUT:-3600}
mkdir -p "$BENCH_CACHE" "$LOGS" || exit 1
# Scratch space on the build's file system, not a tmpfs: the big packages would fill memory.
export BENCH_WORK
BENCH_WORK=$(mktemp -d "${BENCH_TMPDIR:-$MOLT_TOP_BUILDDIR}/bench-work.XXXXXX") || exit 1
export BENCH_RESULTS=$BENCH_WORK/results.jsonl
: >"$BENCH_RESULTS"

cleanup() {
    if [ -n "${BENCH_KEEP:-}" ]; then
        echo "bench: kept $BENCH_WORK" >&2
    else
        chmod -R u+w "$BENCH_WORK" 2>/dev/null
        rm -rf "$BENCH_WORK"
    fi
}
trap cleanup EXIT
TPID=
# The figures run in timeout's own process group, out of reach of the terminal's ^C: pass it on.
trap '[ -n "$TPID" ] && kill -TERM "$TPID" 2>/dev/null && wait "$TPID"; exit 130' INT TERM

figures=("$@")
[ ${#figures[@]} -gt 0 ] || figures=(heartbeat trust download rate pickup e2e fleet hostile delta channel)
failed=0
for f in "${figures[@]}"; do
    script="$here/fig-$f.sh"
    [ -f "$script" ] || { echo "bench: no figure '$f' (heartbeat trust download rate pickup e2e fleet hostile delta channel)" >&2;
                          exit 2; }
    before=$(wc -l <"$BENCH_RESULTS")
    echo "bench: $f ... (log: $LOGS/$f.log)" >&2
    t0=$SECONDS
    # timeout signals the figure's whole process group: its control plane and agents stop too.
    timeout --kill-after=30 "$LIMIT" bash "$script" >"$LOGS/$f.log" 2>&1 &
    TPID=$!
    wait "$TPID"
    rc=$?
    TPID=
    echo "bench: $f done in $((SECONDS - t0)) s (exit $rc)" >&2
    if [ "$rc" -ne 0 ]; then
        failed=1
        tail -n 15 "$LOGS/$f.log" | sed 's/^/    /' >&2
        if [ "$(wc -l <"$BENCH_RESULTS")" = "$before" ]; then
            why="figure script failed (exit $rc), see $LOGS/$f.log"
            [ "$rc" = 124 ] && why="timed out after $LIMIT s, see $LOGS/$f.log"
            "$PYTHON3" "$here/bench.py" record --results "$BENCH_RESULTS" "$("$PYTHON3" -c '
import json, sys
print(json.dumps({"id": sys.argv[1], "figure": sys.argv[1], "value": None, "unit": "",
                  "goal": None, "met": None, "missing": sys.argv[2]}))' "$f" "$why")"
        fi
    fi
done

config=$("$PYTHON3" -c '
import json, os
print(json.dumps({k: v for k, v in sorted(os.environ.items())
                  if k.startswith("BENCH_") and k not in ("BENCH_WORK", "BENCH_RESULTS")}
                 | {"version": os.environ["MOLT_BUILD_VERSION"]}))')
echo
"$PYTHON3" "$here/bench.py" table --results "$BENCH_RESULTS" --json "$OUT" --config "$config"
echo
echo "results: $OUT"
exit "$failed"
