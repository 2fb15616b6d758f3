#!/usr/bin/env bash
# run.sh: runs libFuzzer harnesses one after the other, each for SECONDS (0:
# only replays its seed corpus, a regression check). `make fuzz` calls it.
#
#   run.sh --seconds N --seeds SRCDIR/tests/fuzz/corpus --work DIR FUZZER...
#
# Each fuzzer FUZZ_X reads the seeds in <seeds>/X and writes what it finds new
# into <work>/corpus/X (the source tree is never written); a crash leaves its
# input in <work>/artifacts/X-crash-* and makes the script fail. Extra
# libFuzzer options may come through FUZZ_FLAGS.
set -u
seconds=60 seeds= work=
while [ $# -gt 0 ]; do
    case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --) shift; break ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
    esac
done
[ -n "$seeds" ] && [ -n "$work" ] && [ $# -gt 0 ] ||
    { echo "usage: run.sh --seconds N --seeds DIR --work DIR FUZZER..." >&2; exit 2; }
case $seconds in '' | *[!0-9]*) echo "run.sh: --seconds: not a number: $seconds" >&2; exit 2 ;; esac

failed=0
for fuzzer in "$@"; do
    name=$(basename "$fuzzer")
    name=${name#fuzz_}
    corpus=$work/corpus/$name
    log=$work/$name.log
    mkdir -p "$corpus" "$work/artifacts"
    if [ "$seconds" -eq 0 ]; then
        how=-runs=0    # replay every seed and every input found before, once
    else
        how=-max_total_time=$seconds
    fi
    "$fuzzer" "$how" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 ${FUZZ_FLAGS:-} \
        -artifact_prefix="$work/artifacts/$name-" "$corpus" "$seeds/$name" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
    if [ "$rc" -eq 0 ]; then
        echo "fuzz $name: ok (${execs:-?} runs, ${cov:-cov: ?}, $(ls "$corpus" | wc -l) inputs found so far)"
    else
        failed=1
        echo "fuzz $name: FAILED (exit $rc); log $log, inputs: $(ls "$work/artifacts/$name-"* 2>/dev/null | tr '\n' ' ')"
        grep -m 20 -E 'ERROR|SUMMARY|fuzz harness|runtime error|#[0-9] ' "$log" | sed 's/^/    /'
    fi
done
exit "$failed"
