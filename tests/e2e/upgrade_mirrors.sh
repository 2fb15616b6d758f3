# upgrade_mirrors.sh: a build's mirror list (issue 18). The control plane names two mirrors
# (tests/e2e/lib/mirror_stub.py, HTTPS on 127.0.0.1 with the test CA, each with a fault mode)
# before its own URL; the agent tries them in order, carries a partial download over to the next
# source with a Range request (never with another source's ETag), starts from scratch after wrong
# bytes, persists the source in use across a restart, reports which source served (servedBy), and
# fails naming every source when none serves. The collector token goes to the control plane only.
# A command whose list has a bad entry is refused whole, and the agent heartbeats on.
set -u
. "$(dirname "$0")/lib/upgrade.sh"

tap_plan 33
env_start mirrors
publish "$V1" "$V2"

STUB="$MOLT_TOP_SRCDIR/tests/e2e/lib/mirror_stub.py"
STUB_PIDS=()
# stub_start NAME: a mirror serving the control plane's builds; sets URL_<NAME>.
stub_start() {
    local n=$1 d="$WORK/stub-$1" url=''
    mkdir -p "$d"
    echo ok >"$d/mode"
    : >"$d/log"
    "$PY" "$STUB" --dir "$CP_BUILDS" --cert "$CP_DIR/tls/server.pem" --key "$CP_DIR/tls/server.key" \
        --mode-file "$d/mode" --log "$d/log" >"$d/url" 2>"$d/stderr" </dev/null &
    STUB_PIDS+=($!)
    for _ in $(seq 100); do url=$(head -n 1 "$d/url" 2>/dev/null); [ -n "$url" ] && break; sleep 0.1; done
    [ -n "$url" ] || { cat "$d/stderr"; echo "Bail out! mirror stub $n"; exit 1; }
    printf -v "URL_$n" '%s' "$url"
}
stubs_stop() { local p; for p in "${STUB_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
trap 'stubs_stop; env_cleanup' EXIT
stub_start A
stub_start B
mode() { echo "$2" >"$WORK/stub-$1/mode"; : >"$WORK/stub-$1/log"; }
# stub_field NAME FIELD: that field of every request the stub NAME logged since its mode was set.
stub_field() {
    "$PY" -c 'import json, sys
for l in open(sys.argv[1]):
    print(json.loads(l)[sys.argv[2]])' "$WORK/stub-$1/log" "$2"
}
requests() { grep -c . "$WORK/stub-$1/log"; }
served_by() { cp_api GET "/collectors/upgrades/$1" | cp_json upgrade.progress.servedBy; }
# note_auth: keeps the Authorization headers both stubs got (before mode clears their logs).
note_auth() { { stub_field A authorization; stub_field B authorization; } >>"$WORK/auth-seen"; }
MIRRORS="[\"$URL_A/\", \"$URL_B\"]"
pkgname() { basename "$(pkg_of "$1")"; }

agent_start
wait_for 30 registered
ok $? "agent registered (collector $CID)"

# 0. A command whose list has a bad entry (credentials in a mirror URL) is refused whole, with the
# field named: no task, no download, heartbeats go on.
now=$(date +%s%3N)
bad="{\"heartbeatIntervalMs\": 1000, \"command\": {\"type\": \"upgrade\", \"taskId\": \"999\",
  \"toVersion\": \"$V2\", \"requestTime\": $now, \"expiresAt\": $((now + 600000)),
  \"build\": {\"version\": \"$V2\", \"url\": \"/builds/$(pkgname "$V2")\", \"size\": 1000,
  \"sha256\": \"$(printf '0%.0s' $(seq 64))\", \"statement\": \"c3Q=\", \"signature\": \"c2ln\",
  \"downloadUrls\": [\"$URL_B/$(pkgname "$V2")\", \"https://user:secret@127.0.0.1:1/p\"]}}}"
cp_fault "$("$PY" -c 'import json, sys; print(json.dumps({"type": "malformed", "kind": "body",
    "body": sys.argv[1], "count": 3}))' "$bad")" >/dev/null
wait_for 30 grep -q "command.invalid .*downloadUrls\[1\]" "$WORK/agent.log"
like "$(grep "command.invalid" "$WORK/agent.log" | head -n 1)" \
    "command: build: field 'downloadUrls\[1\]': credentials in the URL.* action=ignore" \
    "a list with user:password@ in an entry refuses the command, naming the entry"
cp_faults_reset
sleep 2
ok "$( ! grep -q "task=999" "$WORK/agent.log" && [ ! -e "$UPG/task-999" ] && [ "$(requests B)" = 0 ]; echo $?)" \
    "nothing of it was applied: no task 999, no download, mirror B not asked"
ok "$( ! grep -q "secret" "$WORK/agent.log"; echo $?)" "the URL's password is not in the log"

# 1. The first mirror answers 404: the second serves, and the report says so.
mode A 404
mode B ok
tid=$(cp_create_task "$CID" "$V2" "" "$MIRRORS")
cp_wait_task_status "$tid" 2 90
ok $? "task $tid (mirror A 404, mirror B fine) ends 2 ($CP_TASK_MESSAGE)"
is "$(served_by "$tid")" "$URL_B/$(pkgname "$V2")" "servedBy names mirror B"
is "$(requests A)" 1 "mirror A was asked once (a 404 is not retried)"
is "$(stub_field B range | sort -u)" None "mirror B served the whole package (no Range)"
like "$(grep "upgrade.download task=$tid " "$WORK/agent.log" | tail -n 1)" \
    "auth=none .*source=\"$URL_B/" "the agent logs mirror B, without the token, as the source"
note_auth

# 2. Mirror A cuts the connection halfway, every time: B continues from there with a Range.
wait_for 20 version_is "$V2"
mode A cut
mode B ok
size=$(stat -c %s "$(pkg_of "$V1")")
tid=$(cp_create_task "$CID" "$V1" "" "$MIRRORS")
cp_wait_task_status "$tid" 2 90
ok $? "task $tid (mirror A cuts midway) ends 2 ($CP_TASK_MESSAGE)"
is "$(served_by "$tid")" "$URL_B/$(pkgname "$V1")" "servedBy names mirror B"
is "$(stub_field A action | head -n 1)" "cut from 0" "mirror A's first answer was cut"
range=$(stub_field B range | head -n 1)
is "$range" "bytes=$((size / 2))-" "mirror B was asked for the rest with a Range request ($range)"
is "$(stub_field B ifRange | sort -u)" None "and without mirror A's ETag (If-Range)"
like "$(grep "upgrade.source_failed task=$tid " "$WORK/agent.log" | head -n 1)" \
    "source=1 of=3 name=\"$URL_A/$(pkgname "$V1")\" error=" "the agent logged that source 1 of 3 failed"
note_auth

# 3. Mirror A serves wrong bytes: B starts from scratch.
wait_for 20 version_is "$V1"
mode A wrong
mode B ok
tid=$(cp_create_task "$CID" "$V2" "" "$MIRRORS")
cp_wait_task_status "$tid" 2 90
ok $? "task $tid (mirror A's bytes are wrong) ends 2 ($CP_TASK_MESSAGE)"
is "$(served_by "$tid")" "$URL_B/$(pkgname "$V2")" "servedBy names mirror B"
is "$(stub_field A action)" "wrong from 0" "mirror A served its wrong bytes once"
is "$(stub_field B range | sort -u)" None "mirror B served from scratch (no Range)"
like "$(grep "upgrade.source_failed task=$tid " "$WORK/agent.log" | head -n 1)" "sha256 mismatch" \
    "the agent logged mirror A's sha256 mismatch"
note_auth

# 4. The source in use survives a restart: A is dead, B is slow; the agent is stopped midway
# through B's download and started again: it goes on with B (a Range), not with A.
wait_for 20 version_is "$V2"
mode A 404
mode B slow
tid=$(cp_create_task "$CID" "$V1" "" "$MIRRORS")
partial() { [ "$(stat -c %s "$UPG/task-$tid/package" 2>/dev/null || echo 0)" -gt 200000 ]; }
wait_for 60 partial
ok $? "mirror B's download of task $tid is under way"
like "$(tr -d ' \n' <"$STATE/upgrade.json")" '"downloadSource":1' \
    "upgrade.json says source 2 (index 1) is in use"
agent_stop
note_auth
mode A 404
mode B ok
agent_start
cp_wait_task_status "$tid" 2 90
ok $? "task $tid ends 2 after the restart ($CP_TASK_MESSAGE)"
is "$(requests A)" 0 "the restarted agent did not go back to mirror A"
like "$(stub_field B range | head -n 1)" '^bytes=[1-9][0-9]*-$' "it resumed from mirror B with a Range"
is "$(stub_field B ifRange | head -n 1)" "\"stub-${URL_B##*:}-$(stat -c %s "$(pkg_of "$V1")")\"" \
    "and with mirror B's own ETag (If-Range)"
is "$(served_by "$tid")" "$URL_B/$(pkgname "$V1")" "servedBy names mirror B"
note_auth

# 5. Nothing serves: A 404 (under a 900-byte path), B redirects to file:///etc/passwd, the
# control plane's own URL 404s. The task ends 3 naming each source, the long one cut short;
# the origin still got the token.
wait_for 20 version_is "$V1"
mode A 404
mode B redirect
cp_fault '{"type": "error", "status": 404, "path": "/builds/", "count": null}' >/dev/null
long=$(printf "x%.0s" $(seq 900))
tid=$(cp_create_task "$CID" "$V2" "" "[\"$URL_A/$long\", \"$URL_B\"]")
cp_wait_task_status "$tid" 3 90
ok $? "task $tid (no source serves) ends 3"
like "$CP_TASK_MESSAGE" "^downloading: all 3 sources failed: $URL_A/x*\\.\\.\\.: [^;]*HTTP 404; $URL_B/[^;]*HTTP 302; $CP_URL/builds/[^;]*HTTP 404\$" \
    "the reason names each source and its error, the long URL cut ($CP_TASK_MESSAGE)"
is "$(stub_field B action)" 302 "mirror B's redirect was not followed (nothing else asked of it)"
like "$(grep "upgrade.download task=$tid " "$WORK/agent.log" | tail -n 1)" \
    "auth=token .*source=\"$CP_URL/builds/" "the control plane's own URL got the token"
cp_faults_reset
note_auth
ok "$( [ "$(grep -c . "$WORK/auth-seen")" -ge 10 ] && ! grep -qv '^None$' "$WORK/auth-seen"; echo $?)" \
    "none of the $(grep -c . "$WORK/auth-seen") requests to the mirrors carried an Authorization header"
wait_for 20 version_is "$V1"
ok $? "the agent still runs $V1 and heartbeats"
[ "$TAP_FAILED" -eq 0 ] || show_log 80
tap_done
