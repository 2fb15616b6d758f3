# upgrade_channel.sh: the signed release channel enforced by the agent against a
# control plane that may be malicious (issue 17, docs/security.md 6.8). The
# control plane serves whatever channel document is in its builds directory and
# can be made to announce any serial (a heartbeat reply of the test's choosing)
# and to hold a reply (slow retrieval):
# the agent takes only a newer channel signed by the trusted key(s), keeps the
# previous one through every refusal, and admits each build against it before a
# byte is downloaded. Each refused task ends 3 with the precise reason, nothing
# is switched, and the agent heartbeats throughout.
set -u
. "$(dirname "$0")/lib/upgrade.sh"

tap_plan 52
env_start channel
publish "$V1" "$V2" "$VX"
PACK=$MOLT_TOP_BUILDDIR/packaging/molt-pack
KEY=$(ls "$FIX/keys/"*.key)
CH=$WORK/owner/stable.channel.json     # the release owner's copy, edited and signed here
mkdir -p "$WORK/owner"
cp "$FIX/releases/stable.channel.json" "$FIX/releases/stable.channel.json.sig" "$WORK/owner/"

serial_of() { "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["serial"])' "$1"; }
# serve FILE: the control plane serves FILE and FILE.sig as channel 'stable'.
serve() {
    cp "$1" "$CP_BUILDS/.ch.tmp" && cp "$1.sig" "$CP_BUILDS/.sig.tmp" &&
        mv "$CP_BUILDS/.sig.tmp" "$CP_BUILDS/stable.channel.json.sig" &&
        mv "$CP_BUILDS/.ch.tmp" "$CP_BUILDS/stable.channel.json"
}
agent_serial() { collector_field releaseChannel.serial 2>/dev/null; }
agent_state() { collector_field releaseChannel.state 2>/dev/null; }
serial_is() { [ "$(agent_serial)" = "$1" ]; }
# sign_serve: the owner signs CH; it is served, and taken by the agent.
sign_serve() {
    "$PACK" channel sign --quiet --key "$KEY" "$CH" && serve "$CH" &&
        wait_for 30 serial_is "$(serial_of "$CH")"
}
# announce N: the next heartbeat reply (only) claims a channel of serial N.
announce() {
    cp_fault "{\"type\": \"malformed\", \"kind\": \"body\", \"body\": \"{\\\"heartbeatIntervalMs\\\": 1000, \\\"channelSerial\\\": $1}\"}" >/dev/null
}
logged() { grep -q "$1" "$WORK/agent.log"; }
# ok_not_downloaded TID: the refused task never reached the downloading stage.
ok_not_downloaded() {
    local stages r=0
    stages=$(task_stages "$1")
    case " $stages " in *" downloading "*) r=1 ;; esac
    ok $r "refused before a byte was downloaded (stages: $stages)"
}
still_fine() { # VERSION: running and heartbeating VERSION, current -> it
    wait_for 20 version_is "$1" && [ "$(current_link)" = "$1" ] &&
        [ "$(collector_field alive)" = true ]
}

agent_start
wait_for 30 registered || { echo "Bail out! agent did not register"; exit 1; }
wait_for 30 serial_is "$(serial_of "$CH")"
ok $? "the agent took the fixture's channel (serial $(agent_serial), state $(agent_state))"
is "$(agent_state)" ok "the management API shows the channel's state"
logged "trust.channel_accepted name=stable serial=$(serial_of "$CH")"
ok $? "the agent logs the channel it accepted"

# 1. A build the channel does not list: the control plane does not offer it, and
# pushed anyway (CP_TASK_FORCE: what a malicious control plane does), the agent refuses it.
"$PACK" channel remove --quiet --version "$V2" "$CH"
sign_serve
ok $? "a channel without $V2 (serial $(serial_of "$CH")) is taken"
cp_api POST /collectors/upgrades "{\"collectorId\": $CID, \"toVersion\": \"$V2\"}" >/dev/null
is "$CP_HTTP_STATUS $(printf '%s' "$CP_BODY" | cp_json code)" "400 collector.rollout.excluded" \
    "the control plane does not offer a build its channel does not list"
export CP_TASK_FORCE=1
tid=$(cp_create_task "$CID" "$V2")
cp_wait_task_status "$tid" 3 60
ok $? "a build not in the channel: task $tid ends 3"
is "$CP_TASK_MESSAGE" "preflight: $V2 is not in channel 'stable' serial $(serial_of "$CH")" \
    "the reason names the channel"
ok_not_downloaded "$tid"
still_fine "$V1"
ok $? "nothing switched; $V1 heartbeats"

# 2. A build outside this host's rollout bucket, then the rollout widened.
bucket=$("$PY" -c '
import sys; sys.path.insert(0, sys.argv[1]); import cp_channel
print(cp_channel.bucket(open(sys.argv[2]).read().strip().lower(), sys.argv[3]))' \
    "$MOLT_TOP_SRCDIR/tests/controlplane" "$WORK/machine-id" "$V2")
pct=$((bucket / 100))
"$PACK" channel add --quiet --percent "$pct" "$CH" "$(pkg_of "$V2").statement.json"
sign_serve
CP_TASK_FORCE=
cp_create_task "$CID" "$V2" >/dev/null 2>&1
CP_TASK_FORCE=1
ok $([ "$CP_HTTP_STATUS" = 400 ] && echo 0 || echo 1) "the control plane does not offer it outside the rollout either"
tid=$(cp_create_task "$CID" "$V2")
cp_wait_task_status "$tid" 3 60
ok $? "a build at $pct% (host bucket $bucket): task $tid ends 3"
like "$CP_TASK_MESSAGE" "^preflight: host bucket $bucket is outside the $pct% rollout of $V2 in channel 'stable'" \
    "the reason names the bucket and the rollout ($CP_TASK_MESSAGE)"
"$PACK" channel rollout --quiet --version "$V2" --percent 100 "$CH"
sign_serve
tid=$(cp_create_task "$CID" "$V2")
cp_wait_task_status "$tid" 2 90
ok $? "the rollout widened to 100%: task $tid ends 2 ($CP_TASK_MESSAGE)"
still_fine "$V2"
ok $? "$V2 runs and heartbeats"

# 3. A floor: the older build stays revoked, pushed as a downgrade and offline.
"$PACK" channel remove --quiet --version "$V1" "$CH"
"$PACK" channel floor --quiet --version "$V2" "$CH"
sign_serve
tid=$(cp_create_task "$CID" "$V1")
cp_wait_task_status "$tid" 3 60
ok $? "a downgrade below the floor: task $tid ends 3"
is "$CP_TASK_MESSAGE" "preflight: $V1 is below the floor $V2 of channel 'stable'" "the reason names the floor"
out=$("$ROOT/current/bin/molt-agent" upgrade --package "$(pkg_of "$V1")" 2>&1)
rc=$?
like "$rc $out" "^1 .*$V1 is below the floor $V2 of channel 'stable'" \
    "the offline package (local API) is refused at once, naming the floor ($out)"
still_fine "$V2"
ok $? "nothing switched; $V2 heartbeats"

# 4. A signed downgrade to a build the channel lists above its floor.
"$PACK" channel floor --quiet --version "" "$CH"
"$PACK" channel add --quiet "$CH" "$(pkg_of "$V1").statement.json"
sign_serve
tid=$(cp_create_task "$CID" "$V1")
cp_wait_task_status "$tid" 2 90
ok $? "a downgrade to a listed build: task $tid ends 2 ($CP_TASK_MESSAGE)"
still_fine "$V1"
ok $? "$V1 runs and heartbeats"

# 5. A replayed older channel, announced with a high serial.
cp "$CH" "$WORK/old.channel.json"
cp "$CH.sig" "$WORK/old.channel.json.sig"
old=$(serial_of "$CH")
"$PACK" channel renew --quiet "$CH"
sign_serve
new=$(serial_of "$CH")
serve "$WORK/old.channel.json"
announce 99999
wait_for 30 logged "serial $old is older than serial $new accepted before (replay refused)"
ok $? "a replayed channel (serial $old after $new) is refused, naming both serials"
sleep 2
is "$(agent_serial):$(agent_state)" "$new:ok" "serial $new stays in force"

# 6. A tampered channel (its signature no longer matches), and endless data.
sed "s/\"serial\":$new/\"serial\":$((new + 10))/" "$CH" >"$WORK/tampered.channel.json"
cp "$CH.sig" "$WORK/tampered.channel.json.sig"
serve "$WORK/tampered.channel.json"
wait_for 30 logged "trust.channel_refused name=stable reason=\"channel: signature"
ok $? "a tampered channel is refused for its signature"
head -c 70000 /dev/zero | tr '\0' ' ' >"$WORK/huge.channel.json"
cp "$CH.sig" "$WORK/huge.channel.json.sig"
serve "$WORK/huge.channel.json"
announce 99998
wait_for 30 logged "channel reply: field 'channel'"
ok $? "a 70 kB channel is refused by the reply's field cap"
is "$(agent_serial):$(agent_state)" "$new:ok" "serial $new is still in force"
serve "$CH"

# 6b. Slow retrieval: the control plane holds the reply to the channel request.
# The agent gives up at the request's 10 s bound, keeps the channel in force and
# heartbeats on; a newer serial, served in time, is taken at once.
cp_fault '{"type": "stall", "seconds": 40, "path": "/api/v1/collector/channel", "count": 1}' >/dev/null
"$PACK" channel renew --quiet "$CH"
"$PACK" channel sign --quiet --key "$KEY" "$CH"
serve "$CH"
slow=$(serial_of "$CH")
wait_for 40 logged "trust.channel_fetch serial=$slow error="
ok $? "a stalled channel reply (serial $slow) is given up"
like "$(grep "trust.channel_fetch serial=$slow " "$WORK/agent.log" | head -n 1)" "[Tt]ime" \
    "at the request's time bound"
is "$(agent_serial):$(agent_state)" "$new:ok" "serial $new stays in force"
still_fine "$V1"
ok $? "$V1 heartbeats through the stalled retrieval"
"$PACK" channel renew --quiet "$CH"
sign_serve
ok $? "the next serial ($(serial_of "$CH")), served in time, is taken"

# 6c. Wrong arch: the channel lists V2 for another arch only (a statement of the
# same version for it); this host's build, pushed anyway, is refused up front.
host=$("$PACK" arch)
other=aarch64
[ "$host" != aarch64 ] || other=amd64
p2=$(pkg_of "$V2")
mkdir -p "$WORK/other"
"$PY" - "$p2.statement.json" "$WORK/other/s.json" "$host" "$other" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
s["arch"] = sys.argv[4]
s["package"] = s["package"].replace("-%s." % sys.argv[3], "-%s." % sys.argv[4])
open(sys.argv[2], "w").write(json.dumps(s))
EOF
"$PACK" channel remove --quiet --version "$V2" "$CH" &&
    "$PACK" channel add --quiet "$CH" "$WORK/other/s.json" && sign_serve
ok $? "a channel listing $V2 for linux/$other only is taken"
tid=$(cp_create_task "$CID" "$V2")
cp_wait_task_status "$tid" 3 60
ok $? "this host's ($host) build of $V2: task $tid ends 3"
is "$CP_TASK_MESSAGE" "preflight: channel 'stable' serial $(serial_of "$CH") lists $V2 for linux/$other only, not linux/$host" \
    "the reason names the arch the channel lists"
ok_not_downloaded "$tid"
"$PACK" channel remove --quiet --version "$V2" "$CH" &&
    "$PACK" channel add --quiet "$CH" "$p2.statement.json" && sign_serve
ok $? "$V2 for $host listed again"

# 7. A statement mixed and matched: authentic (signed by the release key), for
# the same version, but not the one the channel lists.
mkdir -p "$WORK/mix"
p2=$(pkg_of "$V2")
cp "$p2" "$p2.statement.json" "$WORK/mix/"
"$PY" - "$WORK/mix/$(basename "$p2").statement.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
s["created"] += 1000
open(sys.argv[1], "w").write(json.dumps(s))
EOF
"$PACK" sign --quiet --key "$KEY" "$WORK/mix/$(basename "$p2")"
cp "$CP_BUILDS/$(basename "$p2").statement.json" "$WORK/real.statement.json"
cp "$CP_BUILDS/$(basename "$p2").sig" "$WORK/real.sig"
cp "$WORK/mix/$(basename "$p2").statement.json" "$WORK/mix/$(basename "$p2").sig" "$CP_BUILDS/"
tid=$(cp_create_task "$CID" "$V2")
cp_wait_task_status "$tid" 3 60
ok $? "an authentic statement the channel does not list: task $tid ends 3"
like "$CP_TASK_MESSAGE" "^preflight: statement of $V2 linux/amd64 is not the one channel 'stable' lists" \
    "the reason says the statement is not the channel's ($CP_TASK_MESSAGE)"
cp "$WORK/real.statement.json" "$CP_BUILDS/$(basename "$p2").statement.json"
cp "$WORK/real.sig" "$CP_BUILDS/$(basename "$p2").sig"
still_fine "$V1"
ok $? "nothing switched; $V1 heartbeats"

# 8. An expired channel: no new upgrade, the agent heartbeats all the same.
"$PACK" channel renew --quiet --now $(( ($(date +%s) - 40 * 86400) * 1000 )) --expires-days 30 "$CH"
sign_serve
ok $? "an expired (but newer, signed) channel is taken"
wait_for 10 eval '[ "$(agent_state)" = expired ]'
ok $? "the management API shows it expired (freeze detection)"
tid=$(cp_create_task "$CID" "$V2")
cp_wait_task_status "$tid" 3 60
ok $? "with the channel expired: task $tid ends 3"
like "$CP_TASK_MESSAGE" "^preflight: channel 'stable' serial $(serial_of "$CH") expired at .*: no new upgrade until a newer channel arrives$" \
    "the reason says it expired ($CP_TASK_MESSAGE)"
still_fine "$V1"
ok $? "the running version heartbeats on"
"$PACK" channel renew --quiet --expires-days 30 "$CH"
sign_serve
tid=$(cp_create_task "$CID" "$V2")
cp_wait_task_status "$tid" 2 90
ok $? "a fresh channel ends the freeze: task $tid ends 2 ($CP_TASK_MESSAGE)"

# 9. Threshold 2: one compromised key is not enough; two distinct keys are.
mkdir -p "$WORK/keys2" "$WORK/trusted"
"$PACK" keygen --out "$WORK/keys2" >/dev/null
cp "$FIX/trusted/"*.pub "$WORK/keys2/"*.pub "$WORK/trusted/"
mkdir -p "$MOLT_CONFIG.d"
printf '[agent]\nkeys_dir = %s\n[trust]\nsignature_threshold = 2\n' "$WORK/trusted" \
    >"$MOLT_CONFIG.d/threshold.conf"
kill -HUP "$(agent_pid)"
wait_for 20 eval '[ "$(agent_state)" = lapsed ]'
ok $? "under threshold 2 the channel signed by one key lapses (state $(agent_state))"
"$PACK" channel renew --quiet "$CH"
"$PACK" channel sign --quiet --key "$KEY" "$CH"
serve "$CH"
wait_for 30 logged "1 of 2 required signatures by distinct trusted keys"
ok $? "a newer channel signed by one key only is refused (1 of 2)"
tid=$(cp_create_task "$CID" "$V1")
cp_wait_task_status "$tid" 3 60
is "$CP_TASK_MESSAGE" "preflight: signature: 1 of 2 required signatures by distinct trusted keys (the set has 1 line)" \
    "meanwhile task $tid ends 3: its statement, signed by one key, is refused first"
"$PACK" channel renew --quiet "$CH"
"$PACK" channel sign --quiet --key "$KEY" "$CH"
"$PACK" channel sign --quiet --append --key "$(ls "$WORK/keys2/"*.key)" "$CH"
serve "$CH"
wait_for 30 eval '[ "$(agent_state)" = ok ]'
ok $? "signed by two distinct keys, it is taken (state $(agent_state), serial $(agent_serial))"
is "$(agent_serial)" "$(serial_of "$CH")" "the two-key channel is in force"
# Statements need the threshold too: one signature is refused, two distinct keys pass.
tid=$(cp_create_task "$CID" "$V1")
cp_wait_task_status "$tid" 3 60
like "$CP_TASK_MESSAGE" "^preflight: signature: 1 of 2 required signatures by distinct trusted keys" \
    "a statement signed by one key is refused under threshold 2 ($CP_TASK_MESSAGE)"
p1=$(pkg_of "$V1")
mkdir -p "$WORK/s2"
cp "$p1" "$p1.statement.json" "$WORK/s2/"
"$PACK" sign --quiet --key "$(ls "$WORK/keys2/"*.key)" "$WORK/s2/$(basename "$p1")"
printf '%s\n%s\n' "$(cat "$p1.sig")" "$(cat "$WORK/s2/$(basename "$p1").sig")" \
    >"$CP_BUILDS/$(basename "$p1").sig"
tid=$(cp_create_task "$CID" "$V1")
cp_wait_task_status "$tid" 2 90
ok $? "the statement signed by both keys: task $tid ends 2 ($CP_TASK_MESSAGE)"
still_fine "$V1"
ok $? "$V1 heartbeated throughout"
[ "$TAP_FAILED" -eq 0 ] || show_log 80
tap_done
