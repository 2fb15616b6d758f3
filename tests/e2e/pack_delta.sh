#!/usr/bin/env bash
# pack_delta.sh: molt-pack delta and delta-apply between two real builds of this
# tree (V1 as built here, V2 configured --with-build-version=20.2-100 by
# build-version.sh, the e2e fixture's): the patch is a small fraction of the
# package and rebuilds it byte for byte (so its signed statement verifies it),
# from the old package or from its unpacked tree, gzip and zstd; a corrupt
# delta, the wrong base or statement and a changed tree are refused by name
# and leave no output; mkrelease.sh --delta-from makes a release and its delta.
set -u
. "$(dirname "$0")/lib/upgrade.sh"

P="$MOLT_TOP_BUILDDIR/packaging/molt-pack"
MK="$MOLT_TOP_SRCDIR/packaging/mkrelease.sh"
T=$(mktemp -d "${TMPDIR:-/tmp}/molt-pack-delta.XXXXXX")
trap 'rm -rf "$T"' EXIT
run() { out=$("$@" 2>&1); rc=$?; }
flip_byte() { "$PY" -c 'import sys; p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) * 2 // 3] ^= 1; open(p, "wb").write(b)' "$1"; }

tap_plan 21

mkdir -p "$FIX"
B2=$( (flock 8; fix__build "$V2") 8>"$FIX.lock") || { echo "Bail out! build of $V2"; exit 1; }
"$P" keygen -q --out "$T/keys"
for c in gzip zstd; do
    bash "$MK" --build-dir "$MOLT_TOP_BUILDDIR" --version "$V1" --keys "$T/keys" --out "$T/$c" \
        --compress "$c" >/dev/null &&
    bash "$MK" --build-dir "$B2" --version "$V2" --keys "$T/keys" --out "$T/$c" --compress "$c" \
        >/dev/null || { echo "Bail out! mkrelease $c"; exit 1; }
done
P1=$(ls "$T"/gzip/molt-"$V1"-*.tar.gz) P2=$(ls "$T"/gzip/molt-"$V2"-*.tar.gz)
cmp -s "$MOLT_TOP_BUILDDIR/agent/molt-agent" "$B2/agent/molt-agent"
is $? 1 "the two builds' agents differ"

run "$P" delta --from "$P1" "$P2" -o "$T/d.delta"
is "$rc" 0 "delta succeeds"
size=$(stat -c %s "$T/d.delta") full=$(stat -c %s "$P2")
tap_diag "delta $size bytes, package $full bytes"
# A fraction, not the goal: the <= 10% goal is make bench's (its delta figure,
# on a release build); this build's debug info or sanitizer instrumentation
# move with the version string more (10.1% under --enable-sanitizers).
ok "$([ $((size * 4)) -le "$full" ]; echo $?)" "the delta is at most a quarter of the package ($size of $full bytes)"
like "$out" "d.delta: $size bytes for a package of $full bytes" "delta prints its size and the package's"
is "$(head -c 8 "$T/d.delta")" MOLTDLT1 "the delta starts with its magic"

run "$P" delta-apply --from "$P1" --statement "$P2.statement.json" "$T/d.delta" -o "$T/out.tar.gz"
is "$rc" 0 "delta-apply from the old package succeeds"
cmp -s "$T/out.tar.gz" "$P2"
ok $? "it rebuilds the new package byte for byte"
run "$P" verify --keys "$T/keys" --version "$V2" "$T/out.tar.gz" "$P2.statement.json" "$P2.sig"
is "$rc" 0 "the rebuilt package verifies with the new build's statement and signature"

# The base an agent has: the installed tree (the package unpacked, manifest.json with it).
mkdir "$T/tree" && tar -xzf "$P1" -C "$T/tree"
run "$P" delta-apply --base-tree "$T/tree" --statement "$P2.statement.json" "$T/d.delta" -o "$T/out2.tar.gz"
is "$rc" 0 "delta-apply with the base rebuilt from the unpacked old tree succeeds"
cmp -s "$T/out2.tar.gz" "$P2"
ok $? "it rebuilds the new package byte for byte"

Z1=$(ls "$T"/zstd/molt-"$V1"-*.tar.zst) Z2=$(ls "$T"/zstd/molt-"$V2"-*.tar.zst)
run "$P" delta --from "$Z1" "$Z2" -o "$T/z.delta"
is "$rc" 0 "delta between zstd packages succeeds"
"$P" delta-apply -q --from "$Z1" --statement "$Z2.statement.json" "$T/z.delta" -o "$T/out.tar.zst" &&
    cmp -s "$T/out.tar.zst" "$Z2"
ok $? "and rebuilds the zstd package byte for byte"

cp "$T/d.delta" "$T/bad.delta" && flip_byte "$T/bad.delta"
run "$P" delta-apply --from "$P1" --statement "$P2.statement.json" "$T/bad.delta" -o "$T/bad.tar.gz"
like "$rc $out" "^1 .*delta: " "a corrupt delta is refused ($out)"
ok "$([ ! -e "$T/bad.tar.gz" ] && ! ls "$T"/bad.tar.gz.tmp.* >/dev/null 2>&1; echo $?)" \
    "and leaves no output"
run "$P" delta-apply --from "$P2" --statement "$P2.statement.json" "$T/d.delta" -o "$T/bad.tar.gz"
like "$rc $out" "^1 .*wrong base" "a delta applied to another base is refused"
run "$P" delta-apply --from "$P1" --statement "$P1.statement.json" "$T/d.delta" -o "$T/bad.tar.gz"
like "$rc $out" "^1 .*wrong target" "a delta for another package than the statement's is refused"
chmod u+w "$T/tree/bin/molt-installer" && echo x >>"$T/tree/bin/molt-installer"
run "$P" delta-apply --base-tree "$T/tree" --statement "$P2.statement.json" "$T/d.delta" -o "$T/bad.tar.gz"
like "$rc $out" "^1 .*bin/molt-installer" "a tree changed since it was installed is no base, naming the file"
ARCH=$("$P" arch)
run bash "$MK" --build-dir "$B2" --version "$V2" --keys "$T/keys" --out "$T/mk" --delta-from "$P1"
is "$rc $out" "0 $T/mk/molt-$V2-linux-$ARCH.tar.gz
$T/mk/molt-$V1-to-$V2-linux-$ARCH.delta" "mkrelease.sh --delta-from prints the package and the delta"
"$P" delta-apply -q --from "$P1" --statement "$T/mk/molt-$V2-linux-$ARCH.tar.gz.statement.json" \
    "$T/mk/molt-$V1-to-$V2-linux-$ARCH.delta" -o "$T/mk.tar.gz" && cmp -s "$T/mk.tar.gz" "$T/mk/molt-$V2-linux-$ARCH.tar.gz"
ok $? "and the delta rebuilds that package"
run "$P" delta "$P2" -o "$T/x.delta"
is "$rc" 2 "delta without --from is a usage error"

help=$("$P" --help) missing=""
for w in "  delta " "  delta-apply " "--from" "--base-tree" "--statement" "--level"; do
    printf '%s' "$help" | grep -q -- "$w" || missing="$missing $w"
done
is "$missing" "" "--help names delta, delta-apply and their options"
tap_done
