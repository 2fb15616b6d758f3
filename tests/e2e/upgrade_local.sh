# upgrade_local.sh: upgrades asked for on the agent's local API, in the shape of
# obshell's UpgradeAgent, and offline upgrades from a package file; bad offline
# packages are refused with their reason (acceptance 10 of the self-upgrade issue).
set -u
. "$(dirname "$0")/lib/upgrade.sh"

tap_plan 29
env_start local
publish "$V1" "$V2"
agent_start
wait_for 30 registered
ok $? "agent registered"
wait_for 10 test -S "$RUN/agent.sock"
AGENT="$ROOT/current/bin/molt-agent"
field() { "$PY" -c 'import json,sys; d=json.load(sys.stdin)
for k in sys.argv[1].split("."): d = d[k] if d is not None else None
print(d if not isinstance(d, bool) else str(d).lower())' "$1"; }

# POST /api/v1/agent/upgrade {"version", "release"}
out=$(local_api POST /api/v1/agent/upgrade "{\"version\": \"$V2\", \"release\": \"bogus\"}")
like "$(printf '%s' "$out" | field error.message)" "statement is for release '1', request asked for 'bogus'" \
    "a release that does not match the statement is refused"
out=$(local_api POST /api/v1/agent/upgrade "{\"version\": \"$V2\", \"release\": \"1\"}")
is "$(printf '%s' "$out" | field successful)" true "POST /api/v1/agent/upgrade accepted"
is "$(printf '%s' "$out" | field data.name)" "Upgrade molt $V2" "answered with the task (name)"
is "$(printf '%s' "$out" | field data.max_stage)" 9 "answered with the task (max_stage)"
id=$(printf '%s' "$out" | field data.id)
done_state() { st=$(local_api GET "/api/v1/agent/tasks/$id" 2>/dev/null | field data.state 2>/dev/null); [ "$st" = SUCCEED ] || [ "$st" = FAILED ]; }
wait_for 90 done_state
is "$st" SUCCEED "GET /api/v1/agent/tasks/$id shows SUCCEED"
wait_for 20 version_is "$V2"
ok $? "the collector runs $V2"

# operator ROLLBACK after success
out=$(local_api POST "/api/v1/agent/tasks/$id" '{"operator": "ROLLBACK"}')
is "$(printf '%s' "$out" | field successful)" true "operator ROLLBACK accepted"
wait_for 30 version_is "$V1"
ok $? "rolled back: the collector runs $V1 again"
is "$(current_link)" "$V1" "current -> versions/$V1"

# operator CANCEL during a (throttled) download
cp_fault '{"type": "throttle", "bytesPerSecond": 65536}' >/dev/null
wait_for 10 test -S "$RUN/agent.sock"
id=$(local_api POST /api/v1/agent/upgrade "{\"version\": \"$V2\"}" | field data.id)
wait_for 30 sh -c "ls '$UPG'/task-$id/package >/dev/null 2>&1"
m=$(curl -sS --max-time 10 --unix-socket "$RUN/agent.sock" http://localhost/metrics)
like "$m" "molt_task_stage\{task=\"$id\",build=\"$V2\",stage=\"downloading\"\} 3" \
    "/metrics shows the task's stage during the download"
wait_for 10 sh -c "curl -sS --unix-socket '$RUN/agent.sock' http://localhost/metrics | grep -q '^molt_download_bytes_total [1-9]'"
ok $? "and the bytes downloaded"
out=$("$AGENT" cancel 2>&1)
like "$out" "^task $id: cancel asked" "molt-agent cancel (the current task, by the local API's CANCEL) accepted"
wait_for 30 done_state
is "$st" FAILED "the cancelled task ends FAILED"
like "$(local_api GET "/api/v1/agent/tasks/$id" | field data.additional_data.message)" "cancelled" \
    "its message says cancelled"
cp_faults_reset

# offline: a package file on the host, through the same verification and switch
out=$("$AGENT" upgrade --package "$(pkg_of "$V2")" --wait 2>&1)
ok $? "molt-agent upgrade --package ... --wait succeeds"
like "$(printf '%s\n' "$out" | head -n 1)" "^task [0-9]+: 6 progressing, stage 1/9 accepted\$" \
    "--wait prints the management API's status code and word, and the stage"
like "$(printf '%s\n' "$out" | tail -n 1)" "^task [0-9]+: 2 succeeded, stage 9/9 committed: committed $V2\$" \
    "and ends with 2 succeeded"
is "$(printf '%s\n' "$out" | sed 's/^task [0-9]*: //; s/:.*//' | sort | uniq -d)" "" \
    "each status and stage once: $(printf '%s\n' "$out" | sed 's/^task [0-9]*: //' | tr '\n' ';')"
wait_for 20 version_is "$V2"
ok $? "the collector runs $V2 after the offline upgrade"

# bad offline packages
cp "$(pkg_of "$V1")" "$WORK/bad.tar.gz"
cp "$(pkg_of "$V1").statement.json" "$WORK/bad.tar.gz.statement.json"
"$MOLT_TOP_BUILDDIR/packaging/molt-pack" keygen --out "$WORK/rogue" >/dev/null
"$MOLT_TOP_BUILDDIR/packaging/molt-pack" sign --key "$(ls "$WORK/rogue/"*.key)" "$WORK/bad.tar.gz" >/dev/null
out=$("$AGENT" upgrade --package "$WORK/bad.tar.gz" 2>&1)
like "$out" "signature: no trusted key" "untrusted signature refused: $out"
out=$("$AGENT" upgrade --package "$(pkg_of "$VA")" 2>&1)
like "$out" "built for aarch64, host is amd64" "wrong arch refused: $out"
cp "$(pkg_of "$V1").sig" "$WORK/bad.tar.gz.sig"
printf 'X' | dd of="$WORK/bad.tar.gz" bs=1 seek=2000 conv=notrunc 2>/dev/null
out=$("$AGENT" upgrade --package "$WORK/bad.tar.gz" --wait 2>&1)
like "$out" "3 failed, stage [0-9]/9 verifying: verifying: sha256 mismatch" "tampered package fails verification: $(echo "$out" | tail -n 1)"
is "$(current_link)" "$V2" "nothing switched"
out=$("$AGENT" cancel 12345 2>&1)
ok $((! $?)) "molt-agent cancel of an unknown task fails: $out"
"$AGENT" rollback >/dev/null 2>&1
ok $? "molt-agent rollback (after the last task) accepted"
wait_for 30 version_is "$V1"
ok $? "rolled back by molt-agent rollback: the collector runs $V1 again"
wait_for 10 test -S "$RUN/agent.sock"
m=$(curl -sS --max-time 10 --unix-socket "$RUN/agent.sock" http://localhost/metrics)
like "$m" "molt_rollbacks [2-9]" "/metrics counts the rollbacks: $(printf '%s\n' "$m" | grep '^molt_rollbacks')"
n=$(grep -cE "report.refused|task.unknown" "$WORK/agent.log")
is "$n" 0 "no report of a host-started task reached the control plane (no task.unknown)"
[ "$TAP_FAILED" -eq 0 ] || show_log 80
tap_done
