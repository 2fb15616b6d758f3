#!/usr/bin/env bash
# fig-delta.sh: delta packages (issue 18) for a point release: V1 (this build) -> V2 (this
# tree configured --with-build-version=20.2-100 by build-version.sh: the version string
# changed, nothing else). Bytes of the delta (molt-pack delta) against the full package; the
# time to make it; the time and peak RSS (/usr/bin/time's maximum resident set) of rebuilding
# the package the way an agent would: the base rebuilt from V1's installed tree (molt-installer
# install), the patch applied in a stream, recompressed and hashed (molt-pack delta-apply
# --base-tree) against curl downloading the full package over HTTPS on loopback from the
# reference control plane. A second pair, both versions with the same BENCH_DELTA_PAD_MIB (64)
# MiB of random padding (share/molt/pad.bin), shows how time and RSS grow with the package.
# And the agent: peak RSS (VmHWM) and the downloading stage of a real upgrade V1 -> V2 by
# delta (the control plane offers it) against one with the full package.
. "$(dirname "$0")/lib.sh"

PACK=$MOLT_TOP_BUILDDIR/packaging/molt-pack
PAD=${BENCH_DELTA_PAD_MIB:-64}
OUT=$BENCH_WORK/delta
mkdir -p "$OUT"

# timed NAME CMD...: wall seconds and peak RSS (KiB) into $OUT/NAME.time ("SECONDS KIB").
timed() {
    local name=$1
    shift
    /usr/bin/time -f '%e %M' -o "$OUT/$name.time" "$@" >"$OUT/$name.out" 2>&1 ||
        { cat "$OUT/$name.out" >&2; return 1; }
}

# pair NAME P1 P2 TREE1: make the delta, apply it from the installed tree, check the bytes.
pair() {
    local name=$1 p1=$2 p2=$3 tree=$4
    timed "$name-make" "$PACK" delta --from "$p1" "$p2" -o "$OUT/$name.delta" || return 1
    timed "$name-apply" "$PACK" delta-apply --base-tree "$tree" --statement "$p2.statement.json" \
        "$OUT/$name.delta" -o "$OUT/$name-rebuilt.pkg" || return 1
    cmp -s "$OUT/$name-rebuilt.pkg" "$p2" || { say "delta: $name: rebuilt package differs"; return 1; }
    echo "$(stat -c %s "$OUT/$name.delta") $(stat -c %s "$p2")" >"$OUT/$name.bytes"
    rm -f "$OUT/$name-rebuilt.pkg"
}

bench_keys || die "keys"
trap env_end EXIT
p1=$(release "$BENCH_CACHE/rel/v1" "$V1") || die "release $V1"
p2=$(release "$BENCH_CACHE/rel/v2" "$V2") || die "release $V2"

env_new delta-cp
# The base an agent has: V1 installed by molt-installer.
R=$OUT/root
mkdir -p "$R"
root_conf "$R" bench-delta
root_install "$R" "$p1" || die "install of $V1"
tree=$(dirname "$(find "$R" -path "*$V1*" -name manifest.json | head -n 1)")
[ -d "$tree" ] || die "no installed tree of $V1 under $R"
du -sk --apparent-size "$tree" | awk '{print $1}' >"$OUT/tree.kib"

say "delta: $V1 -> $V2"
pair point "$p1" "$p2" "$tree" || die "point release"
# What a patch must keep within reach: the base (V1's archive) and the archive it rebuilds.
echo "$(gzip -dc "$p1" | wc -c) $(gzip -dc "$p2" | wc -c)" >"$OUT/point.archives"

# Baseline: the full package over HTTPS on loopback.
publish "$p2"
timed full-download curl -sS --fail --cacert "$CP_CA" --netrc-file "$CP_DIR/netrc" \
    -o "$OUT/full.pkg" "$CP_URL/builds/$(basename "$p2")" || die "full download"
cmp -s "$OUT/full.pkg" "$p2" || die "full download differs"
rm -f "$OUT/full.pkg"
env_end

# The agent itself: a real upgrade V1 -> V2 by delta, then one with the full package, each
# in a fresh install root, VmHWM of the (old) agent sampled until it exits into V2.
agent_upgrade() { # NAME WITH_DELTA
    local name=$1 w
    env_new "delta-$name"
    one_agent "bench-delta-$name"
    publish "$p2"
    if [ "$2" = 1 ]; then
        cp "$OUT/point.delta" "$CP_BUILDS/molt-$V1-to-$V2-linux-$("$PACK" arch).delta"
    fi
    BPY watch-hwm --pid "$AGENT_PID" --timeout 600 --ready "$OUT/$name.watching" \
        >"$OUT/agent-$name-hwm.json" &
    w=$!
    for ((i = 0; i < 200; i++)); do [ -e "$OUT/$name.watching" ] && break; sleep 0.05; done
    BPY upgrade --collector "$CID" --old "$V1" --to "$V2" --timeout 300 --log "$A/agent.log" \
        >"$OUT/agent-$name.json"
    wait "$w"
    grep -c "upgrade.delta task=.* delta_bytes=" "$A/agent.log" >"$OUT/agent-$name.used"
    cp "$A/agent.log" "$OUT/agent-$name.log"
    env_end
}
say "delta: agent upgrades, by delta and in full"
agent_upgrade bydelta 1
agent_upgrade full 0

# The padded pair: V1's and V2's trees with the same padding, built unsigned.
say "delta: $V1 -> $V2 with $PAD MiB of the same padding"
for v in 1 2; do
    pv=p$v
    mkdir -p "$OUT/pad$v/tree" "$OUT/pad$v/out"
    tar -xzf "${!pv}" -C "$OUT/pad$v/tree" && rm "$OUT/pad$v/tree/manifest.json" || die "unpack"
done
head -c "$((PAD * 1048576))" /dev/urandom >"$OUT/pad1/tree/share/molt/pad.bin"
ln "$OUT/pad1/tree/share/molt/pad.bin" "$OUT/pad2/tree/share/molt/pad.bin"
vv=("" "$V1" "$V2")
for v in 1 2; do
    "$PACK" build -q --version "${vv[$v]}" --arch "$("$PACK" arch)" "$OUT/pad$v/tree" \
        -o "$OUT/pad$v/out" || die "padded build $v"
done
q1=$(ls "$OUT"/pad1/out/*.tar.gz) q2=$(ls "$OUT"/pad2/out/*.tar.gz)
mkdir -p "$OUT/padtree"
tar -xzf "$q1" -C "$OUT/padtree" || die "unpack padded"
pair padded "$q1" "$q2" "$OUT/padtree" || die "padded pair"
rm -rf "$OUT/pad1" "$OUT/pad2" "$OUT/padtree"

BPY delta --dir "$OUT" --pad "$PAD" --v1 "$V1" --v2 "$V2" --results "$BENCH_RESULTS"
