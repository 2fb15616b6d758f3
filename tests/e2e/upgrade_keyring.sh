# upgrade_keyring.sh: release keys rotated and revoked without touching hosts
# (issue 17, docs/security.md 6.6 and 6.8). A root key made here is put in the
# agent's keys_dir/root (a per-test copy of the trusted keys, through a
# molt.conf.d drop-in and SIGHUP); the control plane serves whatever keyring
# is in its builds directory and can be made to announce any keyringSerial.
# A new release key delegated by a root-signed keyring signs channels and
# statements alone; revoked by a newer keyring, its channel lapses and what it
# signs is refused; keyrings signed by another key, replayed, malformed or
# oversized are refused with the previous one in force; an expired delegated
# key counts for nothing. Each refused task ends 3 with the precise reason,
# nothing is switched, and the agent heartbeats throughout.
set -u
. "$(dirname "$0")/lib/upgrade.sh"

tap_plan 29
env_start keyring
publish "$V1" "$V2"
export CP_TASK_FORCE=1                 # the agent is the backstop under test, not the CP's offer
PACK=$MOLT_TOP_BUILDDIR/packaging/molt-pack
KEY=$(ls "$FIX/keys/"*.key)            # the pinned release key of the fixture
CH=$WORK/owner/stable.channel.json     # the release owner's channel, edited and signed here
KR=$WORK/owner/release.keyring.json    # the root owner's keyring
mkdir -p "$WORK/owner" "$WORK/rootkeys" "$WORK/rel2" "$WORK/rel3" "$WORK/trusted/root"
cp "$FIX/releases/stable.channel.json" "$FIX/releases/stable.channel.json.sig" "$WORK/owner/"
"$PACK" keygen --out "$WORK/rootkeys" >/dev/null
"$PACK" keygen --out "$WORK/rel2" >/dev/null
"$PACK" keygen --out "$WORK/rel3" >/dev/null
ROOTKEY=$(ls "$WORK/rootkeys/"*.key)
R2=$(ls "$WORK/rel2/"*.key) R2PUB=$(ls "$WORK/rel2/"*.pub)
R3=$(ls "$WORK/rel3/"*.key) R3PUB=$(ls "$WORK/rel3/"*.pub)
R2ID=$("$PACK" keyid "$R2")
cp "$FIX/trusted/"*.pub "$WORK/trusted/"
cp "$WORK/rootkeys/"*.pub "$WORK/trusted/root/"

serial_of() { "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["serial"])' "$1"; }
# serve_as NAME FILE: the control plane serves FILE and FILE.sig as NAME (and NAME.sig).
serve_as() {
    cp "$2" "$CP_BUILDS/.doc.tmp" && cp "$2.sig" "$CP_BUILDS/.sig.tmp" &&
        mv "$CP_BUILDS/.sig.tmp" "$CP_BUILDS/$1.sig" && mv "$CP_BUILDS/.doc.tmp" "$CP_BUILDS/$1"
}
agent_serial() { collector_field releaseChannel.serial 2>/dev/null; }
agent_state() { collector_field releaseChannel.state 2>/dev/null; }
serial_is() { [ "$(agent_serial)" = "$1" ]; }
# The keyring the agent keeps in force (its state directory).
kept_keyring() { "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["serial"])' "$STATE/keyring.json" 2>/dev/null; }
keyring_is() { [ "$(kept_keyring)" = "$1" ]; }
# channel_by KEY: the owner renews the channel, signs it with KEY only, serves it.
channel_by() {
    "$PACK" channel renew --quiet "$CH" && "$PACK" channel sign --quiet --key "$1" "$CH" &&
        serve_as stable.channel.json "$CH"
}
# keyring_serve: the root owner signs KR with the root key and serves it.
keyring_serve() {
    "$PACK" keyring sign --quiet --key "$ROOTKEY" "$KR" && serve_as release.keyring.json "$KR"
}
# statement_by VERSION KEY: VERSION's statement (bytes unchanged) signed by KEY only.
statement_by() {
    local p d
    p=$(pkg_of "$1") d=$WORK/sign-$(basename "$2" .key)
    mkdir -p "$d" && cp "$p" "$p.statement.json" "$d/" &&
        "$PACK" sign --quiet --key "$2" "$d/$(basename "$p")" &&
        cp "$d/$(basename "$p").sig" "$CP_BUILDS/$(basename "$p").sig"
}
# raw_sign KEY FILE: FILE.sig, a molt-sig-1 line over FILE's exact bytes (for
# documents molt-pack would refuse to sign).
raw_sign() {
    printf '{"format":"molt-sig-1","alg":"ed25519","keyid":"%s","sig":"%s"}\n' \
        "$("$PACK" keyid "$1")" "$(openssl pkeyutl -sign -inkey "$1" -rawin -in "$2" | base64 -w0)" \
        >"$2.sig"
}
# announce N: the next heartbeat reply (only) claims a keyring of serial N.
announce() {
    cp_fault "{\"type\": \"malformed\", \"kind\": \"body\", \"body\": \"{\\\"heartbeatIntervalMs\\\": 1000, \\\"keyringSerial\\\": $1}\"}" >/dev/null
}
logged() { grep -q "$1" "$WORK/agent.log"; }
still_fine() { # VERSION: running and heartbeating VERSION, current -> it
    wait_for 20 version_is "$1" && [ "$(current_link)" = "$1" ] &&
        [ "$(collector_field alive)" = true ]
}

agent_start
wait_for 30 registered || { echo "Bail out! agent did not register"; exit 1; }
wait_for 30 serial_is "$(serial_of "$CH")"
ok $? "the agent took the fixture's channel (serial $(agent_serial))"
mkdir -p "$MOLT_CONFIG.d"
printf '[agent]\nkeys_dir = %s\n' "$WORK/trusted" >"$MOLT_CONFIG.d/keys.conf"
kill -HUP "$(agent_pid)"
wait_for 20 logged "config.reloaded"
ok $? "the agent reloaded with keys_dir $WORK/trusted (root key $(ls "$WORK/trusted/root"))"

# 1. Before any keyring, a channel signed by the new key alone is refused.
channel_by "$R2"
wait_for 30 logged "trust.channel_refused name=stable reason=\"channel: signature: 0 of 1 required signatures by distinct trusted keys (line 1, key $R2ID"
ok $? "without a keyring, a channel signed by the new key $R2ID is refused"

# 2. Rotation: root delegates the new key; a channel and a statement signed only
# by it are accepted, and the upgrade ends 2.
"$PACK" keyring create --quiet "$KR"
"$PACK" keyring add --quiet --pub "$R2PUB" --expires-days 30 "$KR"
keyring_serve
wait_for 30 keyring_is "$(serial_of "$KR")"
ok $? "a keyring signed by root (serial $(serial_of "$KR"), delegating $R2ID) is taken"
logged "trust.keyring_accepted serial=$(serial_of "$KR") keys=1"
ok $? "the agent logs the keyring it accepted"
channel_by "$R2"
wait_for 30 serial_is "$(serial_of "$CH")"
ok $? "a channel signed only by the delegated key is taken (serial $(agent_serial), state $(agent_state))"
statement_by "$V2" "$R2"
tid=$(cp_create_task "$CID" "$V2")
cp_wait_task_status "$tid" 2 90
ok $? "a statement signed only by the delegated key: task $tid ends 2 ($CP_TASK_MESSAGE)"
still_fine "$V2"
ok $? "$V2 runs and heartbeats: rotated without touching the host's keys"
in_force=$(serial_of "$KR")

# 3. Bad keyrings, each refused with the previous one in force.
# 3a. Signed by a key that is not root (the release key itself).
"$PACK" keyring create --quiet --serial 50 "$WORK/bad.keyring.json"
"$PACK" keyring add --quiet --pub "$R3PUB" "$WORK/bad.keyring.json"
"$PACK" keyring sign --quiet --key "$R2" "$WORK/bad.keyring.json"
serve_as release.keyring.json "$WORK/bad.keyring.json"
wait_for 30 logged "trust.keyring_refused reason=\"keyring: signature: 0 of 1 required signatures by distinct trusted keys (line 1, key $R2ID: signature: no trusted key)\" in_force=$in_force"
ok $? "a keyring signed by a release key, not root, is refused; serial $in_force stays"
# 3b. Malformed, but signed by root: refused by the strict parse.
printf '{"format":"molt-keyring-1","name":"release","serial":60,"keys":[],"extra":1}\n' \
    >"$WORK/malformed.keyring.json"
raw_sign "$ROOTKEY" "$WORK/malformed.keyring.json"
serve_as release.keyring.json "$WORK/malformed.keyring.json"
announce 99998
wait_for 30 logged "trust.keyring_refused reason=\"keyring: keyring: unknown field 'extra'\""
ok $? "a malformed keyring (an unknown field), though signed by root, is refused"
# 3c. Oversized: over the reply's field cap.
head -c 70000 /dev/zero | tr '\0' ' ' >"$WORK/huge.keyring.json"
cp "$KR.sig" "$WORK/huge.keyring.json.sig"
serve_as release.keyring.json "$WORK/huge.keyring.json"
announce 99997
wait_for 30 logged "trust.keyring_fetch serial=99997 error=\"keyring reply: field 'keyring'"
ok $? "a 70 kB keyring is refused by the reply's field cap"
serve_as release.keyring.json "$KR"
is "$(kept_keyring):$(agent_state)" "$in_force:ok" "keyring $in_force and its channel stay in force"

# 4. Revocation: one signed keyring without the key. Its channel lapses, a
# channel signed by it is refused, and an upgrade ends 3 with the reason.
cp "$KR" "$WORK/old.keyring.json"
cp "$KR.sig" "$WORK/old.keyring.json.sig"
"$PACK" keyring remove --quiet --keyid "$R2ID" "$KR"
keyring_serve
wait_for 30 keyring_is "$(serial_of "$KR")"
ok $? "a keyring revoking $R2ID (serial $(serial_of "$KR")) is taken"
wait_for 20 eval '[ "$(collector_field releaseChannel.keyringSerial 2>/dev/null)" = "$(serial_of "$KR")" ]'
ok $? "the management API shows the host took the revocation (keyringSerial $(collector_field releaseChannel.keyringSerial))"
wait_for 20 eval '[ "$(agent_state)" = lapsed ]'
ok $? "the channel signed by the revoked key lapses at once (state $(agent_state))"
lapsed=$(agent_serial)
tid=$(cp_create_task "$CID" "$V1")
cp_wait_task_status "$tid" 3 60
is "$CP_TASK_MESSAGE" "preflight: channel 'stable' serial $lapsed no longer verifies with the trusted keys: no upgrade until a newer channel arrives" \
    "task $tid ends 3: the channel in force lapsed"
channel_by "$R2"
wait_for 30 logged "trust.channel_refused name=stable reason=\"channel: signature: 0 of 1 required signatures by distinct trusted keys (line 1, key $R2ID: signature: no trusted key)\" in_force=0"
ok $? "a new channel signed by the revoked key is refused"
still_fine "$V2"
ok $? "nothing switched; $V2 heartbeats"

# 5. A replayed older keyring (the one that still delegated the revoked key).
serve_as release.keyring.json "$WORK/old.keyring.json"
announce 99999
wait_for 30 logged "keyring 'release' serial $in_force is older than serial $(serial_of "$KR") accepted before (replay refused)"
ok $? "the replayed keyring $in_force is refused, naming both serials"
is "$(kept_keyring):$(agent_state)" "$(serial_of "$KR"):lapsed" "the revocation stays in force"
serve_as release.keyring.json "$KR"

# The pinned key still counts: a channel signed by it is taken.
channel_by "$KEY"
wait_for 30 eval '[ "$(agent_state)" = ok ]'
ok $? "a channel signed by the pinned key is taken (serial $(agent_serial))"

# 6. An expired delegated key counts for nothing.
"$PACK" keyring add --quiet --now $(( ($(date +%s) - 2 * 86400) * 1000 )) --expires-days 1 \
    --pub "$R3PUB" "$KR"
keyring_serve
wait_for 30 keyring_is "$(serial_of "$KR")"
ok $? "a keyring delegating a key that expired yesterday is taken (serial $(serial_of "$KR"))"
logged "trust.keys keyring=$(serial_of "$KR") delegated=0 of 1"
ok $? "the expired key is not among the effective keys"
statement_by "$V1" "$R3"
tid=$(cp_create_task "$CID" "$V1")
cp_wait_task_status "$tid" 3 60
like "$CP_TASK_MESSAGE" "^preflight: signature: no trusted key" \
    "a statement signed by the expired key: task $tid ends 3 ($CP_TASK_MESSAGE)"
ch_before=$(agent_serial)
channel_by "$R3"
wait_for 30 logged "trust.channel_refused name=stable reason=\"channel: signature: 0 of 1 required signatures by distinct trusted keys (line 1, key $("$PACK" keyid "$R3")"
ok $? "a channel signed by the expired key is refused"
is "$(agent_serial):$(agent_state)" "$ch_before:ok" "channel $ch_before stays in force"
still_fine "$V2"
ok $? "nothing switched; $V2 heartbeated throughout"

# Kept across a restart: the revocation and the expiry hold.
agent_stop
agent_start
wait_for 30 logged "trust.keyring serial=$(serial_of "$KR") keys=1 state=kept"
ok $? "after a restart the kept keyring is in force again"
still_fine "$V2"
ok $? "$V2 heartbeats after the restart"
[ "$TAP_FAILED" -eq 0 ] || show_log 80
tap_done
