# pack_channel.sh: molt-pack channel from the command line, with keys made at
# test time: create and edit (each edit a new serial, the stale .sig removed),
# reproducible output, signing by one and two keys, verification with a
# threshold, and the refusals (unsigned, untrusted, tampered, oversized,
# expired, wrong name, floor, rollout, mix-and-match of channel and statement).
set -u
. "$(dirname "$0")/lib/tap.sh"

P="$MOLT_TOP_BUILDDIR/packaging/molt-pack"
T=$(mktemp -d "${TMPDIR:-/tmp}/molt-pack-channel-e2e.XXXXXX")
trap 'rm -rf "$T"' EXIT

run() { out=$("$@" 2>&1); rc=$?; }
serial_of() { sed -n 's/.*"serial":\([0-9]*\).*/\1/p' "$1"; }

tap_plan 48

NOW=1700000000000
DAY=86400000
"$P" keygen -q --out "$T/k1"; "$P" keygen -q --out "$T/k2"; "$P" keygen -q --out "$T/evil"
K1=$(ls "$T"/k1/*.key); K2=$(ls "$T"/k2/*.key); EVIL=$(ls "$T"/evil/*.key)
mkdir -p "$T/trusted" "$T/tree/share/molt" "$T/b"
cp "$T"/k1/*.pub "$T"/k2/*.pub "$T/trusted/"
echo hello > "$T/tree/share/molt/readme"
for v in 20.2-100 20.3-1; do
    "$P" build -q --version "$v" --arch amd64 --created "$NOW" "$T/tree" -o "$T/b"
done
"$P" build -q --version 20.3-1 --arch aarch64 --created "$NOW" "$T/tree" -o "$T/b"
S_OLD="$T/b/molt-20.2-100-linux-amd64.tar.gz.statement.json"
S_NEW="$T/b/molt-20.3-1-linux-amd64.tar.gz.statement.json"
S_ARM="$T/b/molt-20.3-1-linux-aarch64.tar.gz.statement.json"
C="$T/stable.json"

# ---- create and edit ----------------------------------------------------------
run "$P" channel create --name stable --now "$NOW" "$C"
is "$rc" 0 "create succeeds"
is "$(cat "$C")" '{"builds":[],"expires":1702592000000,"floor":"","format":"molt-channel-1","issued":1700000000000,"name":"stable","serial":1}' \
    "create writes serial 1, sorted keys, 30 days of validity, one line"
run "$P" channel create --name stable "$C"
like "$rc $out" "^1 .*exists already" "create refuses to overwrite a channel"
run "$P" channel add --now $((NOW + 1)) "$C" "$S_OLD"
is "$rc" 0 "add succeeds"
is "$(serial_of "$C")" 2 "add writes serial 2"
like "$(cat "$C")" "\"statementSha256\":\"$(sha256sum "$S_OLD" | cut -c1-64)\"" \
    "the build is bound to its statement's sha256"
"$P" channel add -q --now $((NOW + 2)) --percent 10 "$C" "$S_NEW"
"$P" channel add -q --now $((NOW + 3)) --percent 50 --not-before $((NOW + DAY)) "$C" "$S_ARM"
is "$(serial_of "$C")" 4 "each edit is a new serial"
run "$P" channel add --now $((NOW + 3)) "$C" "$T/nonexistent.json"
like "$rc $out" "^1 .*nonexistent.json" "add of a missing statement fails and names it"
is "$(serial_of "$C")" 4 "... and leaves the channel as it was"

# The same edits from the same start give the same bytes.
"$P" channel create -q --name stable --now "$NOW" "$T/again.json"
"$P" channel add -q --now $((NOW + 3)) --percent 50 --not-before $((NOW + DAY)) "$T/again.json" "$S_ARM"
"$P" channel add -q --now $((NOW + 2)) --percent 10 "$T/again.json" "$S_NEW"
"$P" channel add -q --now $((NOW + 3)) "$T/again.json" "$S_OLD"
cmp -s "$C" "$T/again.json"
ok $? "the document is reproducible: the same builds added in another order give the same bytes"

run "$P" channel show "$C"
like "$out" "build   20.3-1 linux/aarch64  50% from 2023-11-15T22:13:20Z" "show lists each build's rollout"
like "$out" "serial  4" "show prints the serial"

# ---- signing and verifying ---------------------------------------------------
run "$P" channel verify --keys "$T/trusted" --now "$NOW" "$C"
like "$rc $out" "^1 .*channel: signature: missing" "an unsigned channel is refused"
run "$P" channel sign --key "$K1" "$C"
is "$rc $out" "0 $C.sig: 1 signature" "sign with one key"
cp "$C.sig" "$T/first.sig"
"$P" channel sign -q --key "$K1" "$C"
cmp -s "$C.sig" "$T/first.sig"
ok $? "signing again gives the same .sig (Ed25519 is deterministic)"
run "$P" channel verify --keys "$T/trusted" --now "$NOW" "$C"
like "$rc $out" "^0 OK .*channel 'stable' serial 4, 3 builds, floor '', expires 2023-12-14T22:13:20Z" \
    "verify says OK with serial, builds and expiry"
run "$P" channel verify --keys "$T/trusted" --threshold 2 --now "$NOW" "$C"
like "$rc $out" "^1 .*signature: 1 of 2 required signatures by distinct trusted keys" \
    "threshold 2 refuses one signature"
"$P" channel sign -q --append --key "$K2" "$C"
is "$(wc -l < "$C.sig")" 2 "sign --append adds the second key's line"
run "$P" channel verify --keys "$T/trusted" --threshold 2 --now "$NOW" "$C"
is "$rc" 0 "threshold 2 accepts two distinct trusted keys"
cp "$C.sig" "$T/two.sig"
"$P" channel sign -q --key "$EVIL" --key "$K1" "$C"
run "$P" channel verify --keys "$T/trusted" --threshold 2 --now "$NOW" "$C"
like "$rc $out" "^1 .*1 of 2 required .*no trusted key" \
    "one trusted key plus an untrusted one does not reach threshold 2"
run "$P" channel sign --key "$K1" --key "$K1" "$C"
like "$rc $out" "^1 .*given twice" "the same key twice is refused"
cp "$T/two.sig" "$C.sig"
run "$P" channel verify --keys "$T/k2" --now "$NOW" "$C"
is "$rc" 0 "a verifier trusting only the second key accepts the set"
run "$P" channel verify --keys "$T/trusted" --name beta --now "$NOW" "$C"
like "$rc $out" "^1 .*channel: is 'stable', this host follows 'beta'" "a channel of another name is refused"
run "$P" channel verify --keys "$T/trusted" --now $((NOW + 30 * DAY + 3)) "$C"
like "$rc $out" "^1 .*channel 'stable' serial 4 expired at 2023-12-14T22:13:20Z" "an expired channel is refused"

sed 's/"percent":10}/"percent":100}/' "$C" > "$T/tampered.json"
cp "$C.sig" "$T/tampered.json.sig"
run "$P" channel verify --keys "$T/trusted" --now "$NOW" "$T/tampered.json"
like "$rc $out" "^1 .*0 of 1 required .*signature: invalid" "a tampered channel is refused"
head -c 100 "$C" > "$T/cut.json"
run "$P" channel verify --keys "$T/trusted" --now "$NOW" "$T/cut.json" "$C.sig"
like "$rc $out" "^1 .*signature: invalid" "a truncated channel is refused by its signature"
head -c 30 "$C.sig" > "$T/cut.sig"
run "$P" channel verify --keys "$T/trusted" --now "$NOW" "$C" "$T/cut.sig"
like "$rc $out" "^1 .*channel: signature: truncated" "a truncated signature is refused as truncated"
{ cat "$C"; head -c 70000 /dev/zero | tr '\0' ' '; } > "$T/big.json"
run "$P" channel verify --keys "$T/trusted" --now "$NOW" "$T/big.json" "$C.sig"
like "$rc $out" "^1 .*big.json: larger than 65536 bytes" "an oversized channel is refused before its signature"
"$P" channel sign -q --key "$K1" "$T/cut.json" 2>/dev/null
ok $((! $?)) "sign refuses a malformed channel"

# ---- admission on one host ------------------------------------------------------
# verify --machine-id asks what an agent would: may this host apply this build now?
admit() { # MACHINE_ID VERSION ARCH STATEMENT [NOW]
    run "$P" channel verify --keys "$T/trusted" --now "${5:-$NOW}" --machine-id "$1" --version "$2" \
        --os linux --arch "$3" --statement "$4" "$C"
}
IN="" OUTSIDE=""
for i in $(seq 1 200); do
    mid=$(printf '%032x' "$i")
    admit "$mid" 20.3-1 amd64 "$S_NEW"
    if [ "$rc" = 0 ] && [ -z "$IN" ]; then IN=$mid; fi
    if [ "$rc" = 1 ] && [ -z "$OUTSIDE" ]; then OUTSIDE=$mid; OUT_MSG=$out; fi
    [ -n "$IN" ] && [ -n "$OUTSIDE" ] && break
done
ok "$([ -n "$IN" ] && [ -n "$OUTSIDE" ]; echo $?)" "at 10%, some hosts are admitted and some are not"
like "$OUT_MSG" "host bucket [0-9]+ is outside the 10% rollout of 20.3-1 in channel 'stable' \(buckets below 1000\)" \
    "... the others are refused with their bucket"
admit "$IN" 20.3-1 amd64 "$S_NEW"
like "$out rc=$rc" "^ADMITTED 20.3-1 linux/amd64 on host $IN \(bucket [0-9]+\) rc=0" "an admitted host, again: buckets are stable"
admit "$IN" 20.3-1 amd64 "$S_OLD"
like "$rc $out" "^1 .*statement of 20.3-1 linux/amd64 is not the one channel 'stable' lists" \
    "a statement of another build is refused (mix-and-match)"
admit "$IN" 20.4-1 amd64 "$S_NEW"
like "$rc $out" "^1 .*20.4-1 is not in channel 'stable' serial 4" "a build not listed is refused"
admit "$IN" 20.2-100 x86 "$S_OLD"
like "$rc $out" "^1 .*lists 20.2-100 for linux/amd64 only, not linux/x86" "the wrong arch is refused"
admit "$IN" 20.3-1 aarch64 "$S_ARM"
like "$rc $out" "^1 .*rollout of 20.3-1 in channel 'stable' starts at 2023-11-15T22:13:20Z" \
    "a build before its not-before time is refused"

# ---- floor, rollout, remove ------------------------------------------------------
cp "$C" "$T/before-floor.json"
run "$P" channel floor --version 20.3-0 "$C"
like "$rc $out" "^1 .*20.2-100 is below the floor 20.3-0" "a floor above a listed build is refused"
cmp -s "$C" "$T/before-floor.json"
ok $? "... and the channel is unchanged"
run "$P" channel remove --version 20.2-100 --now $((NOW + 10)) "$C"
is "$rc" 0 "remove succeeds"
ok "$([ ! -e "$C.sig" ]; echo $?)" "an edit removes the stale signature"
run "$P" channel remove --version 20.2-100 "$C"
like "$rc $out" "^1 .*20.2-100 \*/\* is not listed" "removing a build not listed fails"
"$P" channel floor -q --version 20.3-0 --now $((NOW + 11)) "$C"
"$P" channel rollout -q --version 20.3-1 --arch amd64 --percent 100 --now $((NOW + 12)) "$C"
"$P" channel sign -q --key "$K1" "$C"
admit "$IN" 20.2-100 amd64 "$S_OLD" $((NOW + 20))
like "$rc $out" "^1 .*20.2-100 is below the floor 20.3-0 of channel 'stable'" "a build below the floor is refused"
admit "$OUTSIDE" 20.3-1 amd64 "$S_NEW" $((NOW + 20))
like "$out rc=$rc" "^ADMITTED .* rc=0" "a widened rollout admits the host it refused before"
is "$(serial_of "$C")" 7 "remove, floor and rollout made serials 5, 6, 7"
run "$P" channel renew --now $((NOW + 40 * DAY)) --expires-days 7 "$C"
like "$rc $(cat "$C")" "^0 .*\"expires\":$((NOW + 47 * DAY)),.*\"serial\":8" "renew: a new serial and expiry"

# ---- usage ------------------------------------------------------------------------
run "$P" channel frobnicate "$C"
is "$rc" 2 "an unknown subcommand is a usage error"
run "$P" channel rollout --percent 101 --version 20.3-1 "$C"
like "$rc $out" "^2 .*--percent: '101' is not a number in 0..100" "a percent over 100 is a usage error"
help=$("$P" channel --help)
missing=""
for cmd in create add remove floor rollout renew sign verify show; do
    printf '%s' "$help" | grep -q "^  $cmd" || missing="$missing $cmd"
done
is "$missing" "" "channel --help lists every subcommand"
tap_done
