#!/usr/bin/env bash
# demo_test.sh: runs `make demo`'s script (demo/demo.sh) non-interactively, twice (it must work
# when run again), and checks from its output what the demo promises: the upgrade's statuses
# 1 -> 6 -> 2, the broken build rolled back with status 3 and its reason, the old version
# heartbeating again, plain output without a terminal, and nothing left behind (files or
# processes).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
. "$MOLT_TOP_SRCDIR/tests/e2e/lib/tap.sh"

# The demo's own cache (BUILDDIR/demo-cache), as `make demo` uses it: sharing the upgrade tests'
# build of 20.2-100 would let one suite relink binaries the other is packing.
ESC=$'\e'

tap_plan 20
for run in 1 2; do
    out=$(bash "$MOLT_TOP_SRCDIR/demo/demo.sh" </dev/null 2>&1)
    rc=$?
    is "$rc" 0 "run $run: the demo exits 0"
    like "$out" "status 0 -> 1 -> 6 -> 2  succeeded" \
        "run $run: the upgrade to 20.2-100 went 1 -> 6 -> 2 (task events)"
    like "$out" "6 progressing +accepted" "run $run: live progress shows the stages"
    like "$out" "heartbeating +collector [0-9]+ runs 20.2-100" \
        "run $run: 20.2-100 heartbeats after the upgrade"
    like "$out" "status 0 -> 1 -> 6 -> 3  failed in [0-9.]+s: health-check: rolled back: 20.3-1 exited 3 times during trial" \
        "run $run: the broken build 20.3-1 was rolled back and ended 3 with its reason"
    after=$(printf '%s\n' "$out" | sed -n '/-> 6 -> 3  failed/,$p')
    like "$after" "heartbeating +collector [0-9]+ runs 20.2-100" \
        "run $run: the old version 20.2-100 heartbeats again after the rollback"
    case "$out" in *"$ESC"*) esc=1 ;; *) esc=0 ;; esac
    is "$esc" 0 "run $run: no escape sequences without a terminal"
    case "$out" in *Traceback*) tb=1 ;; *) tb=0 ;; esac
    is "$tb" 0 "run $run: no stack trace"
    work=$(printf '%s\n' "$out" | sed -n 's/.*\$DEMO = \(.*[^ ]\) *$/\1/p' | head -n 1)
    ok "$([ -n "$work" ] && [ ! -e "$work" ]; echo $?)" "run $run: its directory ($work) is removed"
    left=$([ -n "$work" ] && pgrep -f "$work/" | tr '\n' ' ')
    is "$left" "" "run $run: no process of the demo is left"
    if [ "$rc" -ne 0 ] || [ "$TAP_FAILED" -gt 0 ]; then
        printf '%s\n' "$out" | tail -n 40 | sed 's/^/#   /'
    fi
done
tap_done
