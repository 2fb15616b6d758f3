# agent_strict.sh: a hostile burst of heartbeat replies, 200 at the heartbeat
# reply's cap (128 KiB of JSON array, the costliest valid reply to parse) and
# 200 a byte over it, alternating. The over-cap ones are refused, warned about
# once (rate-limited), and backed off from like any failed heartbeat; nothing is
# applied; afterwards the agent heartbeats normally and its resident set is
# within 1 MiB of what it was before the burst. About 30 s (100 ms heartbeats).
set -u
. "$(dirname "$0")/lib/agent.sh"

CAP=131072    # MOLT_HB_REPLY_MAX, docs/protocol.md section 0
BURST=400
tap_plan 8
cp_start "$W" --heartbeat-interval 100ms --no-long-poll || { echo "Bail out! control plane"; exit 1; }
agent_up strict 'heartbeat_interval = 100ms'
ok $? "the agent registers"

rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$1/status"; }
# rss_settled PID: the largest of five samples 0.2 s apart (heartbeats go on meanwhile).
rss_settled() {
    local i r max=0
    for i in 1 2 3 4 5; do
        r=$(rss_kb "$1")
        [ "${r:-0}" -gt "$max" ] && max=$r
        sleep 0.2
    done
    echo "$max"
}
beats() { log_count strict 'debug heartbeat.next interval_ms='; }

# Idle: warmed up by a few seconds of heartbeats (TLS, first allocations).
sleep 3
before=$(rss_settled "$pid")
beats0=$(beats)
start=$SECONDS
cp_fault "{\"type\":\"malformed\",\"kind\":\"padded\",\"bytes\":$CAP,\"overBytes\":$((CAP + 1)),\"count\":$BURST}" \
    >/dev/null
wait_for 90 no_faults_left
rc=$? took=$((SECONDS - start))
ok $rc "the agent took all $BURST replies ($took s)"
ok "$([ $(($(beats) - beats0)) -ge $((BURST / 2)) ] && echo 0 || echo 1)" \
    "the $((BURST / 2)) replies at the cap were accepted as heartbeats"
# Once a minute at most (a burst slowed past a minute by a loaded machine warns again).
warned=$(log_count strict "heartbeat.failed error=\".*reply of $((CAP + 1)) bytes refused: larger than this endpoint's cap of $CAP bytes")
ok "$([ "$warned" -ge 1 ] && [ "$warned" -le $((took / 60 + 1)) ] && echo 0 || echo 1)" \
    "the refused replies are warned about once a minute at most ($warned in $took s)"
heartbeat_again 20
ok $? "the agent heartbeats normally after the burst"
kill -0 "$pid" 2>/dev/null
ok $? "and it is still the same process"
sleep 1
after=$(rss_settled "$pid")
tap_diag "RSS idle ${before} kB, after the burst ${after} kB"
if grep -q '^SAN_CFLAGS = .*-fsanitize=address' "$MOLT_TOP_BUILDDIR/Makefile" 2>/dev/null; then
    # ASan keeps freed memory in quarantine: the resident set says nothing there.
    echo "ok $((TAP_N += 1)) # SKIP RSS is not the agent's own under AddressSanitizer"
else
    ok "$([ "$after" -le $((before + 1024)) ] && echo 0 || echo 1)" \
        "RSS after the burst is within 1 MiB of idle (${before} -> ${after} kB)"
fi
is "$(collector_field "$cid" id)" "$cid" "the collector is unchanged (nothing applied)"
agent_stop "$pid"
tap_done
