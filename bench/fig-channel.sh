#!/usr/bin/env bash
# fig-channel.sh: what the signed release channel costs the agent (issue 17): the
# per-command admission (sha256 of the statement, lookup among 256 listed builds;
# goal < 1 ms), with the one-off acceptance of a new 256-build channel in the
# details. bench/channel_admit times agent/trust.c itself, in process.
. "$(dirname "$0")/lib.sh"

prog=$MOLT_TOP_BUILDDIR/bench/channel_admit
[ -x "$prog" ] || die "$prog is not built (make bench builds it)"
say "channel: admission of a build against a 256-build channel"
fig=$("$prog") || die "channel_admit failed"
BPY record --results "$BENCH_RESULTS" "$fig"
