# hard_redirect.sh: the agent never follows a redirect, to another scheme
# (file://) or anywhere else: not on registration, not on a heartbeat, not on
# a package download. A stub control plane (hard_stub.py, plain HTTP on
# 127.0.0.1, which the agent allows to loopback in test mode) answers 302 and
# records every request; the redirect targets must never be requested, each
# refusal is logged, and each task ends 3 at the download with the reason.
set -u
. "$(dirname "$0")/lib/hard.sh"

tap_plan 12
fixture_prepare || { echo "Bail out! fixture"; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/molt-e2e-redirect-XXXXXX")
STUB_PID= AGENT=
cleanup() {
    [ -n "$AGENT" ] && { kill -TERM "$AGENT" 2>/dev/null; sleep 0.5; kill -KILL "$AGENT" 2>/dev/null; }
    [ -n "$STUB_PID" ] && kill -KILL "$STUB_PID" 2>/dev/null
    [ -n "${MOLT_TEST_KEEP:-}" ] && { echo "# kept $W"; return; }
    rm -rf "$W"
}
trap cleanup EXIT

pkg=$(pkg_of "$V2")
field() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$pkg.statement.json" "$1"; }
"$PY" "$MOLT_TOP_SRCDIR/tests/e2e/lib/hard_stub.py" --statement "$pkg.statement.json" \
    --signature "$pkg.sig" --version "$V2" --size "$(field size)" --sha256 "$(field sha256)" \
    --log "$W/requests.log" --reports "$W/reports.log" \
    --channel "$FIX/releases/stable.channel.json" >"$W/stub.url" 2>"$W/stub.err" &
STUB_PID=$!
wait_for 10 test -s "$W/stub.url" || { echo "Bail out! stub did not start"; exit 1; }
URL=$(head -n 1 "$W/stub.url")

# An install root to stage into (preflight proves a rename into root/versions).
mkdir -p "$W/state" "$W/run" "$W/upgrade" "$W/root/versions"
od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$W/machine-id"
cat >"$W/molt.conf" <<CONF
[server]
url = $URL
allow_insecure_http = true
access_id = stub
access_key = stub
[agent]
name = redirect
state_dir = $W/state
run_dir = $W/run
upgrade_dir = $W/upgrade
keys_dir = $FIX/trusted
machine_id_file = $W/machine-id
heartbeat_interval = 200ms
startup_jitter = 0
backoff_max = 1s
log_level = debug
[install]
root = $W/root
CONF
"$MOLT_TOP_BUILDDIR/agent/molt-agent" --config "$W/molt.conf" run >"$W/agent.log" 2>&1 &
AGENT=$!

alog() { grep -qE -- "$1" "$W/agent.log"; }
final_report() { grep -E "\"taskId\": \"$1\".*\"status\": 3" "$W/reports.log" 2>/dev/null | tail -n 1; }
reported() { [ -n "$(final_report "$1")" ]; }

wait_for 20 alog 'register.failed error=".*HTTP 302'
ok $? "a redirected registration is an error, logged"
wait_for 20 alog 'registered collector=7'
ok $? "the agent registers on its next attempt"
hb_302() { grep -c 'heartbeat.failed error=".*HTTP 302' "$W/agent.log"; }
two_hb_302() { [ "$(hb_302)" -ge 2 ]; }
wait_for 20 alog 'heartbeat.failed error=".*HTTP 302'
ok $? "a redirected heartbeat is an error, logged"
wait_for 20 two_hb_302
is "$(hb_302)" 2 "both redirected heartbeats (to http:// and to file://)"

wait_for 30 reported 1
ok $? "task 1, whose package URL redirects to file:///etc/passwd, ends 3"
like "$(final_report 1)" '"stage": "downloading".*"message": "downloading: .*HTTP 302' \
    "at the download, saying the server answered 302"
wait_for 30 reported 2
ok $? "task 2, whose package URL redirects to http://127.0.0.1/trap, ends 3"
like "$(final_report 2)" '"message": "downloading: .*HTTP 302' "for the same reason"
wait_for 10 alog 'upgrade.failed task=2 .*stage=downloading'
ok $? "the agent logged each failure"

grep -q ' /trap' "$W/requests.log"
ok $((!$?)) "no redirect target was ever requested"
is "$(ls -A "$W/upgrade")" "" "nothing is left in the upgrade directory"
heartbeats() { grep -c 'POST /api/v1/collector/heartbeat' "$W/requests.log"; }
n=$(heartbeats)
more_heartbeats() { [ "$(heartbeats)" -gt "$n" ]; }
wait_for 10 more_heartbeats
ok $? "the agent goes on heartbeating"

[ "$TAP_FAILED" -eq 0 ] || tail -n 40 "$W/agent.log" | sed 's/^/#   /'
tap_done
