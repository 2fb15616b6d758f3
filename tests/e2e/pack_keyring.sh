# pack_keyring.sh: molt-pack keyring from the command line, with keys made at
# test time: create and edit (each edit a new serial, the stale .sig removed),
# reproducible output, signing by one and two root keys, verification with a
# threshold, and the refusals (unsigned, not root, tampered, expired, unknown
# key, a document molt-pack would not write).
set -u
. "$(dirname "$0")/lib/tap.sh"

P="$MOLT_TOP_BUILDDIR/packaging/molt-pack"
T=$(mktemp -d "${TMPDIR:-/tmp}/molt-pack-keyring-e2e.XXXXXX")
trap 'rm -rf "$T"' EXIT

run() { out=$("$@" 2>&1); rc=$?; }
serial_of() { sed -n 's/.*"serial":\([0-9]*\).*/\1/p' "$1"; }

tap_plan 21

NOW=1700000000000
DAY=86400000
for k in root1 root2 rel1 rel2; do "$P" keygen -q --out "$T/$k"; done
R1=$(ls "$T"/root1/*.key) R2=$(ls "$T"/root2/*.key)
mkdir -p "$T/roots"
cp "$T"/root1/*.pub "$T"/root2/*.pub "$T/roots/"
REL1=$(ls "$T"/rel1/*.pub) REL2=$(ls "$T"/rel2/*.pub)
ID1=$("$P" keyid "$REL1") ID2=$("$P" keyid "$REL2")
KR=$T/release.keyring.json

run "$P" keyring create --now "$NOW" "$KR"
is "$rc:$(serial_of "$KR")" "0:1" "create: an empty keyring, serial 1"
run "$P" keyring create --now "$NOW" "$KR"
like "$rc $out" "^1 .*exists already" "create refuses to overwrite"
run "$P" keyring add --now "$NOW" --pub "$REL1" --expires-days 10 "$KR"
is "$rc:$(serial_of "$KR")" "0:2" "add: serial 2"
like "$(cat "$KR")" "\"expires\":$((NOW + 10 * DAY)),\"keyid\":\"$ID1\"" "the key expires after 10 days"
"$P" keyring add -q --now "$NOW" --pub "$REL2" "$KR"
cp "$KR" "$T/a.json"
rm "$KR"
"$P" keyring create -q --now "$NOW" "$KR"
"$P" keyring add -q --now "$NOW" --pub "$REL2" "$KR"
"$P" keyring add -q --now "$NOW" --pub "$REL1" --expires-days 10 "$KR"
# the same keys, added in the other order, give the same bytes (keys sorted by id)
cmp -s "$KR" "$T/a.json"
ok $? "reproducible: the same keyring is the same bytes"

run "$P" keyring verify --now "$NOW" --keys "$T/roots" "$KR"
like "$rc $out" "^1 .*keyring: signature: missing" "unsigned: refused"
run "$P" keyring sign --key "$R1" "$KR"
is "$rc" 0 "sign with root 1"
run "$P" keyring verify --now "$NOW" --keys "$T/roots" "$KR"
like "$rc $out" "^0 OK .*serial 3, 2 keys \(2 valid now\)" "verify: OK, both keys valid"
run "$P" keyring verify --now "$((NOW + 11 * DAY))" --keys "$T/roots" "$KR"
like "$rc $out" "^0 OK .*2 keys \(1 valid now\)" "after 11 days one key has expired"
run "$P" keyring show --now "$((NOW + 11 * DAY))" "$KR"
like "$out" "key     $ID1 until .* \(expired\)" "show marks the expired key"
run "$P" keyring verify --now "$NOW" --keys "$T/rel1" "$KR"
like "$rc $out" "^1 .*keyring: signature: 0 of 1 required signatures by distinct trusted keys" \
    "verified with release keys, not root: refused"
run "$P" keyring verify --now "$NOW" --threshold 2 --keys "$T/roots" "$KR"
like "$rc $out" "^1 .*1 of 2 required signatures" "threshold 2 with one root signature: refused"
"$P" keyring sign -q --append --key "$R2" "$KR"
is "$(wc -l <"$KR.sig")" 2 "sign --append: two lines"
run "$P" keyring verify --now "$NOW" --threshold 2 --keys "$T/roots" "$KR"
is "$rc" 0 "two distinct root keys meet threshold 2"
run "$P" keyring verify --now "$((NOW + 400 * DAY))" --keys "$T/roots" "$KR"
like "$rc $out" "^1 .*keyring serial 3 expired at" "an expired keyring: refused"
sed "s/\"serial\":3/\"serial\":4/" "$KR" >"$T/tampered.json"
run "$P" keyring verify --now "$NOW" --keys "$T/roots" "$T/tampered.json" "$KR.sig"
like "$rc $out" "^1 .*signature: invalid" "a tampered keyring: refused"

run "$P" keyring remove --now "$NOW" --keyid "$ID1" "$KR"
is "$rc:$(serial_of "$KR")" "0:4" "remove (revoke) $ID1: serial 4"
[ ! -e "$KR.sig" ]
ok $? "the stale signature is removed by every edit"
run "$P" keyring remove --keyid "$ID1" "$KR"
like "$rc $out" "^1 .*key $ID1 is not in the keyring" "removing a key not listed: refused"
echo '{"format":"molt-keyring-1","name":"release","serial":1,"keys":[],"extra":1}' >"$T/bad.json"
run "$P" keyring sign --key "$R1" "$T/bad.json"
like "$rc $out" "^1 .*unknown field 'extra'" "sign refuses a document it would not write"
run "$P" keyring add --pub "$R1.missing" "$KR"
like "$rc $out" "^1 .*--pub $R1.missing" "add names a missing key file"
tap_done
