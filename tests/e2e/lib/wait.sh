# shellcheck shell=bash
# wait.sh: the one polling helper of the e2e tests and the benchmarks (sourced by
# lib/agent.sh, lib/installer.sh, lib/upgrade.sh and bench/lib.sh). Bounded, never a timing
# assertion: a test says how long a condition may take to come true, not how fast it must.

# wait_for TIMEOUT_S COMMAND [ARG...]: runs COMMAND (a program or a shell function, in this
# shell, so it may set variables) every 0.1 s until it succeeds: returns 0 then, or 1 once
# TIMEOUT_S seconds have passed without. COMMAND's output is discarded.
wait_for() {
    local end=$((SECONDS + $1))
    shift
    while ! "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 0.1
    done
}
