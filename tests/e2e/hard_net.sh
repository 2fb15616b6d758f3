# hard_net.sh: network faults during heartbeats and package downloads,
# against the reference control plane's fault API: connections reset (TCP RST)
# at random offsets, a stalled download (server.low_speed_timeout), a 5xx storm
# and 429 on the package URL, and the server's certificate turning expired or
# wrong-host in the middle of a download. Each ends consistent: the download
# resumes and the task ends 2, or the task ends 3 with a reason naming the
# certificate problem, nothing is switched, and the agent says why in its log.
set -u
. "$(dirname "$0")/lib/hard.sh"

tap_plan 30
env_start net
# A stalled transfer is abandoned after 2 s without a byte (default 30 s).
conf_set server low_speed_timeout 2s
publish "$V1" "$V2"
restart_with
wait_for 30 registered || { echo "Bail out! agent did not register"; exit 1; }
SIZE=$(package_size "$V2")

# 1. Heartbeat connections reset before the reply.
log_mark
cp_fault '{"type": "drop", "reset": true, "path": "/api/v1/collector/heartbeat", "count": 3}' \
    >/dev/null
wait_for 30 no_faults_left && wait_for 30 log_since 'heartbeat.recovered after_failures='
ok $? "heartbeats cut by a TCP reset, then the agent recovered"
n=$(log_since_count 'heartbeat.failed error=".*(reset|Recv failure)')
[ "$n" -ge 1 ]
ok $? "each failure is logged with the transport error ($n logged)"

# 2. The package download reset three times, each response cut after a random
#    number of bytes (so at r, 2r and 3r of the file): it resumes each time.
log_mark
r=$(rand_between 1 $((SIZE / 4)))
cp_fault "{\"type\": \"drop\", \"reset\": true, \"afterBytes\": $r, \"count\": 3}" >/dev/null
tid=$(cp_create_task "$CID" "$V2")
task_ends "$tid" 2 90
ok $? "download reset at $r, $((2 * r)) and $((3 * r)) bytes: task $tid ends 2 ($CP_TASK_MESSAGE)"
line=$(log_since_line "upgrade.download task=$tid ")
like "$line" 'attempts=4 restarts=0' "four connections, never restarted from zero ($line)"
got=$(printf '%s' "$line" | sed -n 's/.* bytes=\([0-9]*\) .*/\1/p')
[ -n "$got" ] && [ "$got" -eq "$SIZE" ]
ok $? "every byte fetched once ($got of $SIZE)"
is "$(log_since_count 'download.*retry attempt=')" 3 "three retries logged"
consistent "$V2"
ok $? "consistent at $V2"

# 3. A download that stalls after a random offset: abandoned after
#    low_speed_timeout, resumed on a new connection.
log_mark
r=$(rand_between 1 $((SIZE - 1)))
cp_fault "{\"type\": \"stall\", \"afterBytes\": $r, \"seconds\": 60, \"count\": 1}" >/dev/null
tid=$(cp_create_task "$CID" "$V1")
task_ends "$tid" 2 90
ok $? "download stalled after $r bytes: task $tid ends 2 ($CP_TASK_MESSAGE)"
like "$(log_since_line 'download.*retry attempt=1')" "have=[1-9][0-9]* .*reason=\".*(Timeout|timed out|too slow)" \
    "the stall was noticed as a timeout, with the bytes before it kept"
like "$(log_since_line "upgrade.download task=$tid ")" 'attempts=[2-8] restarts=0 rc=0' \
    "a new connection resumed the download (no restart from zero)"
consistent "$V1"
ok $? "consistent at $V1"

# 4. A storm of 5xx, then a 429, on the package URL.
log_mark
cp_fault '{"faults": [{"type": "error", "status": 503, "path": "/builds/", "count": 1},
                      {"type": "error", "status": 500, "path": "/builds/", "count": 1},
                      {"type": "error", "status": 429, "retryAfter": 2, "path": "/builds/", "count": 1}]}' \
    >/dev/null
tid=$(cp_create_task "$CID" "$V2")
task_ends "$tid" 2 120
ok $? "5xx storm and 429 on the package: task $tid ends 2 ($CP_TASK_MESSAGE)"
like "$(log_since_line "upgrade.download task=$tid ")" 'attempts=4 ' "each error was one attempt, then success"
ok "$(log_since 'retry .*HTTP 503' && log_since 'retry .*HTTP 500' && log_since 'retry .*HTTP 429'; echo $?)" \
    "503, 500 and 429 are each named in the log"
wait429=$(log_since_line 'retry .*reason="server answered HTTP 429"' | sed -n 's/.* wait_ms=\([0-9]*\) .*/\1/p')
[ -n "$wait429" ] && [ "$wait429" -ge 2000 ]
ok $? "the retry after the 429 waits at least its Retry-After of 2 s (wait_ms=$wait429)"
consistent "$V2"
ok $? "consistent at $V2"

# 5. The server's certificate goes bad in the middle of a download (the
#    server restarts with it, so the download reconnects): TLS verification
#    refuses it, the task ends 3 with the reason, nothing switches. The final
#    report waits in the outbox until the certificate is good again.
bad_cert_during_download() {
    local kind=$1 want=$2 tid
    log_mark
    cp_fault '{"type": "throttle", "bytesPerSecond": 65536}' >/dev/null
    tid=$(cp_create_task "$CID" "$V1")
    partial() { [ "$(stat -c %s "$UPG/task-$tid/package" 2>/dev/null || echo 0)" -gt 65536 ]; }
    wait_for 60 partial
    ok $? "$kind: the download of task $tid is under way"
    cp_restart_with_cert "$kind" >/dev/null
    wait_for 60 log_since "task.final task=$tid status=3"
    ok $? "$kind: the agent gave the task up"
    like "$(log_since_line "upgrade.failed task=$tid ")" "stage=downloading reason=\".*$want" \
        "$kind: the log names the certificate problem"
    wait_for 20 log_since "heartbeat.failed error=\".*$want"
    ok $? "$kind: heartbeats are refused for the same reason"
    cp_restart_with_cert good >/dev/null
    task_ends "$tid" 3 60
    ok $? "$kind: once the certificate is good, task $tid ends 3"
    like "$CP_TASK_MESSAGE" "^downloading: .*$want" "$kind: with the precise reason ($CP_TASK_MESSAGE)"
    consistent "$V2"
    ok $? "$kind: nothing switched, consistent at $V2"
}
bad_cert_during_download expired 'certificate (has )?expired'
bad_cert_during_download wrong-host "(no alternative certificate subject name matches|does not match|certificate subject name)"

[ "$TAP_FAILED" -eq 0 ] || show_log 80
tap_done
