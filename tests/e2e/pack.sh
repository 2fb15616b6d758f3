# pack.sh: molt-pack from the command line: keygen, build (reproducible, gzip
# and zstd), sign, verify; and the exit codes and messages for bad inputs.
set -u
. "$(dirname "$0")/lib/tap.sh"

P="$MOLT_TOP_BUILDDIR/packaging/molt-pack"
PY="${PYTHON3:-python3}"
T=$(mktemp -d "${TMPDIR:-/tmp}/molt-pack-e2e.XXXXXX")
trap 'rm -rf "$T"' EXIT

# run CMD...: sets $out (stdout+stderr) and $rc
run() { out=$("$@" 2>&1); rc=$?; }
flip_byte() { "$PY" -c 'import sys; p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 2] ^= 1; open(p, "wb").write(b)' "$1"; }

tap_plan 43

ARCH=$("$P" arch)
like "$ARCH" '^[a-z0-9_]+$' "arch prints this host's package arch ($ARCH)"

run "$P" keygen --out "$T/keys"
is "$rc" 0 "keygen succeeds"
KEY=$(ls "$T"/keys/*.key)
KEYID=$(basename "$KEY" .key)
is "$(stat -c %a "$KEY")" 600 "the private key is mode 0600"
is "$("$P" keyid "$T/keys/$KEYID.pub")" "$KEYID" "keyid of the .pub matches its file name"
"$P" keygen --out "$T/other" >/dev/null 2>&1
OTHERKEY=$(ls "$T"/other/*.key)

mkdir -p "$T/tree/bin" "$T/tree/share/molt" "$T/out" "$T/out2"
cp "$MOLT_TOP_BUILDDIR/agent/molt-agent" "$MOLT_TOP_BUILDDIR/installer/molt-installer" "$T/tree/bin/"
echo "hello" > "$T/tree/share/molt/readme"
PKG="$T/out/molt-20.2-100-linux-$ARCH.tar.gz"

run "$P" build --version 20.2-100 --arch "$ARCH" --min-version 20.1-0 "$T/tree" -o "$T/out"
is "$rc" 0 "build succeeds"
ok "$([ -f "$PKG" ] && [ -f "$PKG.statement.json" ]; echo $?)" "build writes the package and its statement"
like "$(cat "$PKG.statement.json")" "\"package\":\"molt-20.2-100-linux-$ARCH.tar.gz\"" \
    "the statement names the package"
like "$(tar -tzf "$PKG" | head -n 1)" '^manifest.json$' "manifest.json is the archive's first entry"

run "$P" build --version 20.2-100 --arch "$ARCH" --min-version 20.1-0 "$T/tree" -o "$T/out2/molt-20.2-100-linux-$ARCH.tar.gz"
cmp -s "$PKG" "$T/out2/molt-20.2-100-linux-$ARCH.tar.gz"
ok $? "two builds of the same tree are byte-identical"

run "$P" build --version 20.2-100 --arch "$ARCH" --compress zstd "$T/tree" -o "$T/out2"
is "$rc" 0 "build --compress zstd succeeds"
ok "$([ -f "$T/out2/molt-20.2-100-linux-$ARCH.tar.zst" ]; echo $?)" "the zstd package is named .tar.zst"

run "$P" sign --key "$KEY" "$PKG"
is "$rc" 0 "sign succeeds"
like "$(cat "$PKG.sig")" "\"keyid\":\"$KEYID\"" "the signature names the key id"

run "$P" verify --keys "$T/keys" "$PKG"
is "$rc" 0 "verify succeeds"
like "$out" "^OK .*signed by key $KEYID" "verify says OK and names the key"
run "$P" verify --keys "$T/keys" --version 20.2-100 --running 20.1-5 "$PKG" "$PKG.statement.json" "$PKG.sig"
is "$rc" 0 "verify with explicit statement and signature, version and running version"

run "$P" verify --keys "$T/other" "$PKG"
is "$rc" 1 "verify with the wrong key directory fails"
like "$out" "signature: no trusted key" "... saying no trusted key"
run "$P" verify --keys "$T/keys" --version 20.3-1 "$PKG"
like "$out" "statement is for 20.2-100, command asked for 20.3-1" "wrong version is refused with its reason"
run "$P" verify --keys "$T/keys" --arch not_"$ARCH" "$PKG"
like "$out" "built for $ARCH, host is not_$ARCH" "wrong arch is refused with its reason"
run "$P" verify --keys "$T/keys" --running 19.1-1 "$PKG"
like "$out" "requires at least 20.1-0, running 19.1-1" "too old a running version is refused"

cp "$PKG" "$T/tampered.tar.gz"
cp "$PKG.statement.json" "$T/tampered.tar.gz.statement.json"
cp "$PKG.sig" "$T/tampered.tar.gz.sig"
flip_byte "$T/tampered.tar.gz"
run "$P" verify --keys "$T/keys" "$T/tampered.tar.gz"
is "$rc" 1 "a tampered package fails verification"
like "$out" "sha256 mismatch" "... with sha256 mismatch"
run "$P" sign --key "$KEY" "$T/tampered.tar.gz"
is "$rc" 1 "sign refuses a statement that does not describe the package"
like "$out" "does not describe" "... and says so"

cp "$PKG" "$T/long.tar.gz"; cp "$PKG.statement.json" "$T/long.tar.gz.statement.json"; cp "$PKG.sig" "$T/long.tar.gz.sig"
printf 'x' >> "$T/long.tar.gz"
run "$P" verify --keys "$T/keys" "$T/long.tar.gz"
like "$out" "longer than declared" "an extended package is longer than declared"

run "$P" verify --keys "$T/keys" "$PKG" "$PKG.statement.json" "$T/nonexistent.sig"
like "$out" "signature: missing" "a missing signature is reported as missing"
head -c 40 "$PKG.sig" > "$T/short.sig"
run "$P" verify --keys "$T/keys" "$PKG" "$PKG.statement.json" "$T/short.sig"
like "$out" "signature: truncated" "a truncated signature is reported as truncated"
"$P" sign --key "$OTHERKEY" "$PKG" >/dev/null 2>&1
run "$P" verify --keys "$T/keys" "$PKG"
like "$out" "signature: no trusted key" "a package signed by an untrusted key is refused"
"$P" sign --key "$KEY" "$PKG" >/dev/null 2>&1
sed 's/"release":"1"/"release":"2"/' "$PKG.statement.json" > "$T/edited.json"
run "$P" verify --keys "$T/keys" "$PKG" "$T/edited.json" "$PKG.sig"
like "$out" "signature: invalid" "an edited statement is an invalid signature"

run "$P" build --version 20.2-100 "$T/tree" -o "$T/out"
is "$rc" 2 "build without --arch is a usage error (exit 2)"
run "$P" build --version 20.2-100 --arch "$ARCH" --compress lzma "$T/tree" -o "$T/out"
is "$rc" 2 "build --compress lzma is a usage error"
run "$P" build --version 'bad version' --arch "$ARCH" "$T/tree" -o "$T/out"
like "$rc $out" "^1 .*not a version" "build refuses an invalid version"
run "$P" build --version 20.2-100 --arch "$ARCH" "$T/tree" -o "$T/out/wrong-name.tar.gz"
like "$rc $out" "^1 .*output must be named" "build refuses an output not named as the statement says"
run "$P" frobnicate
is "$rc" 2 "an unknown command is a usage error"

# mkrelease.sh: a release from this build dir, with a replaced agent and padding
MK="$MOLT_TOP_SRCDIR/packaging/mkrelease.sh"
printf '#!/bin/sh\nexit 3\n' > "$T/broken-agent"
run bash "$MK" --build-dir "$MOLT_TOP_BUILDDIR" --version 20.9-1 --keys "$T/keys" --out "$T/builds" \
    --agent "$T/broken-agent" --pad-mib 1 --min-version 20.1-0
REL="$T/builds/molt-20.9-1-linux-$ARCH.tar.gz"
is "$rc $out" "0 $REL" "mkrelease.sh prints the package it made"
run "$P" verify --keys "$T/keys" --version 20.9-1 "$REL"
is "$rc" 0 "the release verifies"
like "$(tar -tvzf "$REL")" " 1048576 .* share/molt/pad.bin" "--pad-mib 1 adds a 1 MiB share/molt/pad.bin"
is "$(tar -xOzf "$REL" bin/molt-agent)" "$(cat "$T/broken-agent")" "--agent replaces bin/molt-agent"
run bash "$MK" --build-dir "$MOLT_TOP_BUILDDIR" --version 20.9-3 --keys "$T/keys" --out "$T/builds" \
    --compress zstd
run "$P" verify --keys "$T/keys" --version 20.9-3 "$T/builds/molt-20.9-3-linux-$ARCH.tar.zst"
is "$rc" 0 "mkrelease.sh --compress zstd makes a release that verifies"
run bash "$MK" --build-dir "$MOLT_TOP_BUILDDIR" --version 20.9-2 --keys "$T" --out "$T/builds"
like "$rc $out" "^1 .*exactly one \*.key" "mkrelease.sh needs exactly one key"

help=$("$P" --help)
missing=""
for opt in --out --version --arch --os --min-version --release --compress --created --key --keys \
           --running --no-contents --quiet --help; do
    printf '%s' "$help" | grep -q -- "^ .*$opt" || missing="$missing $opt"
done
is "$missing" "" "--help has a line for every option"
for cmd in keygen build sign verify keyid arch; do
    printf '%s' "$help" | grep -q "^  $cmd" || missing="$missing $cmd"
done
is "$missing" "" "--help lists every command"
tap_done
