#!/usr/bin/env bash
# upgrade_delta.sh: delta upgrades (issue 18, docs/upgrades.md section 10). The
# control plane offers build.delta for a molt-<base>-to-<v>-<os>-<arch>.delta in its
# builds directory (made here by molt-pack delta between the fixture's real
# builds). V1 -> V2 with a good delta: the agent downloads the delta only,
# rebuilds the signed package from its installed tree and ends 2. V2 -> V3 with a
# corrupted delta: the agent reports why it did not use it, downloads the full
# package in the same task and still ends 2. V3 -> V1 with a package too large for
# the agent's delta memory budget: the delta is not even downloaded.
set -u
. "$(dirname "$0")/lib/upgrade.sh"

tap_plan 17
env_start delta
publish "$V1" "$V2" "$V3"
PACK=$MOLT_TOP_BUILDDIR/packaging/molt-pack
delta_name() { # BASE VERSION: the name the control plane looks for, beside the package
    local p
    p=$(basename "$(pkg_of "$2")")
    p=${p#molt-$2-}
    echo "molt-$1-to-$2-${p%.tar.*}.delta"
}
D12=$CP_BUILDS/$(delta_name "$V1" "$V2") D23=$CP_BUILDS/$(delta_name "$V2" "$V3")
"$PACK" delta -q --from "$(pkg_of "$V1")" "$(pkg_of "$V2")" -o "$D12" &&
    "$PACK" delta -q --from "$(pkg_of "$V2")" "$(pkg_of "$V3")" -o "$D23"
ok $? "molt-pack delta made $V1 -> $V2 and $V2 -> $V3 ($(stat -c %s "$D12") bytes)"
agent_start
wait_for 30 registered
ok $? "agent registered (collector $CID)"

# 1. a good delta
tid=$(cp_create_task "$CID" "$V2")
cp_wait_task_status "$tid" 2 90
ok $? "task $tid to $V2 with a delta ends 2 ($CP_TASK_MESSAGE)"
wait_for 20 version_is "$V2"
ok $? "collector now reports $V2"
like "$(grep "upgrade.delta task=$tid " "$WORK/agent.log")" "base=$V1 delta_bytes=$(stat -c %s "$D12") " \
    "the agent rebuilt the package from the delta"
like "$(grep "upgrade.download task=$tid .*file=delta" "$WORK/agent.log")" \
    "bytes=$(stat -c %s "$D12") " "it downloaded the delta's bytes"
grep "upgrade.download task=$tid " "$WORK/agent.log" | grep -vq "file=delta"
is $? 1 "and not the full package"
events=$(cp_task_events "$tid")
like "$events" "\"bytesTotal\": *$(stat -c %s "$D12")" "progress reports counted the delta's bytes"
is "$(ls "$UPG" | wc -l)" 0 "upgrade directory is empty after success"

# 2. a corrupted delta (the control plane's size and sha256 are of the corrupted file)
"$PY" -c 'import sys; p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) * 2 // 3] ^= 0x10; open(p, "wb").write(b)' "$D23"
tid=$(cp_create_task "$CID" "$V3")
cp_wait_task_status "$tid" 2 90
ok $? "task $tid to $V3 with a corrupted delta still ends 2 ($CP_TASK_MESSAGE)"
like "$(cp_task_events "$tid")" "delta not used, downloading the full package: delta: " \
    "the fallback was reported with its reason"
grep "upgrade.download task=$tid " "$WORK/agent.log" | grep -v "file=delta" | grep -q " rc=0 "
ok $? "the full package was downloaded in the same task"
wait_for 20 version_is "$V3"
ok $? "collector now reports $V3"
# 3. a package over the delta budget (16 MiB of package; the delta file is never read)
mkdir -p "$WORK/padded"
bash "$MOLT_TOP_SRCDIR/packaging/mkrelease.sh" --build-dir "$MOLT_TOP_BUILDDIR" --version "$V1" \
    --keys "$FIX/keys" --out "$WORK/padded" --pad-mib 20 \
    --channel "$CP_BUILDS/stable.channel.json" >/dev/null
ok $? "a $V1 release with 20 MiB of padding"
big=$(ls "$WORK"/padded/molt-*.tar.gz)
cp "$big.statement.json" "$big.sig" "$big" "$CP_BUILDS/"
cp "$D12" "$CP_BUILDS/$(delta_name "$V3" "$V1")"
tid=$(cp_create_task "$CID" "$V1")
cp_wait_task_status "$tid" 2 90
ok $? "task $tid to the big $V1 ends 2 ($CP_TASK_MESSAGE)"
like "$(cp_task_events "$tid")" "delta not used, downloading the full package: the package's [0-9]* bytes are too many for a delta" \
    "the delta was refused for the package's size"
grep -q "upgrade.download task=$tid .*file=delta" "$WORK/agent.log"
is $? 1 "and never downloaded"
[ "$TAP_FAILED" -eq 0 ] || show_log 60
tap_done
