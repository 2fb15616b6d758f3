# upgrade_faults.sh: the upgrade under network faults and bad packages
# (acceptance 3, 4, 6 and 7 of the self-upgrade issue): dropped connections,
# a tampered package, a signature by an untrusted key, a statement without
# manifestSha256, cancel, timeout, and a
# control plane that is away when the final result is ready.
set -u
. "$(dirname "$0")/lib/upgrade.sh"

tap_plan 21
env_start faults
publish "$V1" "$V2"
agent_start
wait_for 30 registered
ok $? "agent registered (collector $CID)"
size=$(stat -c %s "$(pkg_of "$V2")")
nothing_switched() { [ "$(current_link)" = "$V1" ] && [ "$(ls "$ROOT/versions")" = "$V1" ]; }

# 4a. one byte of the package changed in flight
cp_fault '{"type": "corrupt", "offset": 1000}' >/dev/null
tid=$(cp_create_task "$CID" "$V2")
cp_wait_task_status "$tid" 3 60
ok $? "tampered package: task ends 3"
is "$CP_TASK_MESSAGE" "verifying: sha256 mismatch" "the reason is precise"
nothing_switched
ok $? "nothing switched: current -> $V1, no other version installed"
cp_faults_reset

# 4b. a statement signed by a key the agent does not trust
"$MOLT_TOP_BUILDDIR/packaging/molt-pack" keygen --out "$WORK/rogue" >/dev/null
p="$CP_BUILDS/$(basename "$(pkg_of "$V2")")"
"$MOLT_TOP_BUILDDIR/packaging/molt-pack" sign --key "$(ls "$WORK/rogue/"*.key)" "$p" >/dev/null
tid=$(cp_create_task "$CID" "$V2")
cp_wait_task_status "$tid" 3 60
ok $? "untrusted signature: task ends 3"
like "$CP_TASK_MESSAGE" "^preflight: signature: no trusted key" "the reason is precise ($CP_TASK_MESSAGE)"
is "$(ls "$UPG")" "" "nothing downloaded or staged"
publish "$V2"

# 4c. a statement signed by a trusted key, without manifestSha256 (an older
# molt-pack's): nothing could bind the worker's staged tree to it
sed 's/"manifestSha256":"[0-9a-f]*",//' "$p.statement.json" >"$WORK/old.statement.json"
mv "$WORK/old.statement.json" "$p.statement.json"
"$MOLT_TOP_BUILDDIR/packaging/molt-pack" sign --key "$(ls "$FIX/keys/"*.key | head -n 1)" "$p" >/dev/null
tid=$(cp_create_task "$CID" "$V2")
cp_wait_task_status "$tid" 3 60
ok $? "statement without manifestSha256: task ends 3"
like "$CP_TASK_MESSAGE" "^preflight: the statement of $V2 names no manifestSha256" \
    "the reason is precise ($CP_TASK_MESSAGE)"
is "$(ls "$UPG")" "" "nothing downloaded or staged"
publish "$V2"

# 6a. cancel during the download
cp_fault '{"type": "throttle", "bytesPerSecond": 65536}' >/dev/null
tid=$(cp_create_task "$CID" "$V2")
wait_for 30 sh -c "ls '$UPG'/task-$tid/package >/dev/null 2>&1"
cp_api DELETE "/collectors/upgrades/$tid" >/dev/null
is "$CP_HTTP_STATUS" 200 "cancel accepted by the management API"
cp_wait_task_status "$tid" 3 30
like "$CP_TASK_MESSAGE" "cancel" "cancelled task ends 3 ($CP_TASK_MESSAGE)"
wait_for 15 sh -c "[ -z \"\$(ls '$UPG')\" ]"
ok $? "staging removed after the cancel"

# 6b. the task times out during the download (server clock moved past 30 minutes)
tid=$(cp_create_task "$CID" "$V2")
wait_for 30 sh -c "ls '$UPG'/task-$tid/package >/dev/null 2>&1"
cp_clock_advance 1860000
cp_wait_task_status "$tid" 3 60
like "$CP_TASK_MESSAGE" "timed out" "timed-out task ends 3 ($CP_TASK_MESSAGE)"
wait_for 30 sh -c "[ -z \"\$(ls '$UPG')\" ]"
ok $? "staging removed after the timeout"
nothing_switched
ok $? "nothing switched"
cp_faults_reset
cp_api POST /admin/clock '{"offsetMs": 0}' >/dev/null

# 3. the connection dropped 5 times during the download
cp_fault '{"type": "drop", "afterBytes": 65536, "count": 5}' >/dev/null
tid=$(cp_create_task "$CID" "$V2")
cp_wait_task_status "$tid" 2 120
ok $? "download survives 5 dropped connections; task ends 2"
got=$(grep -h "upgrade.download task=$tid " "$WORK/agent.log" | sed -n 's/.* bytes=\([0-9]*\) .*/\1/p' | head -n 1)
[ -n "$got" ] && [ $((got * 2)) -lt $((size * 3)) ]
ok $? "downloaded $got bytes in all for a $size-byte package (< 1.5x)"
[ "$(grep -h "upgrade.download task=$tid " "$WORK/agent.log" | sed -n 's/.* attempts=\([0-9]*\) .*/\1/p')" -ge 6 ]
ok $? "it took at least 6 connections"

# 7. the control plane is away when the final result is ready: a broken build is
# rolled back while the server is down (a good build could not pass its health
# check without the server), and the old agent's 3 must arrive once it is back.
wait_for 20 version_is "$V2"
publish "$VX"
tid=$(cp_create_task "$CID" "$VX")
wait_for 60 grep -q "upgrade.restart task=$tid " "$WORK/agent.log"
cp_kill
wait_for 90 grep -q "task.final task=$tid " "$WORK/agent.log"
ok $? "the agent finished task $tid (rolled back) while the control plane was down"
sleep 2
cp_restart >/dev/null
cp_wait_task_status "$tid" 3 90
like "$CP_TASK_MESSAGE" "rolled back: $VX" \
    "the final result reached the control plane once it was back ($CP_TASK_MESSAGE)"
[ "$TAP_FAILED" -eq 0 ] || show_log 80
tap_done
