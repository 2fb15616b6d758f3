#!/usr/bin/env bash
# pkg_install.sh: installer/install.sh on a host without a package manager,
# everything under a prefix, with the reference control plane over HTTPS and
# releases signed with a key made at test time. The agent is started by the
# SysV script install.sh writes into the prefix (launch --supervise). Checks:
# bad arguments and a tampered package change nothing; the install registers;
# a newer package is switched to through molt-installer (trial, proven by a
# heartbeat, committed) and an older one never replaces it; image-prep refuses
# while the agent runs, clears identity, outbox and downloads but not the
# versions; a start with another machine id is a second, distinct collector;
# so is a clone that kept its parent's identity.
. "$(dirname "$0")/lib/pkg.sh"
set -u

pkg_start install 36
cp_start "$WORK" --heartbeat-interval 1s --rate-limit 0 >/dev/null || { echo "Bail out! control plane"; exit 1; }
stop_all() {
    [ -x "${P:-/nonexistent}/etc/init.d/molt-agent" ] && init_do stop
    cp_stop
    pkg_cleanup
}
trap stop_all EXIT

INSTALL_SH=$MOLT_TOP_SRCDIR/installer/install.sh
INSTALLER=$MOLT_TOP_BUILDDIR/installer/molt-installer
P=$WORK/prefix
INIT=$P/etc/init.d/molt-agent
NAME="pkg-install-$$"
P1=$(pkg_of "$V1")
P2=$(pkg_of "$V2")
printf '%s\n' "$CP_ACCESS_KEY" >"$WORK/access-key"
run_install() { # ARGS...: install.sh with the test's installer; output in $OUT, status in $RC
    OUT=$("$INSTALL_SH" --installer "$INSTALLER" --prefix "$P" "$@" 2>&1)
    RC=$?
}
show() { printf '%s\n' "$OUT" | tail -n "${1:-15}" | sed 's/^/#   /'; }

# ---- refusals ------------------------------------------------------------------

run_install --package "$P1" --url "$CP_URL"
is "$RC" 2 "missing credentials: usage error"
like "$OUT" "--access-id and --access-key are required" "and says which"

cp "$P1" "$WORK/$(basename "$P1")"
cp "$P1.sig" "$WORK/$(basename "$P1").sig"
cp "$P1.statement.json" "$WORK/$(basename "$P1").statement.json"
printf 'x' | dd of="$WORK/$(basename "$P1")" bs=1 seek=2000 conv=notrunc 2>/dev/null
run_install --package "$WORK/$(basename "$P1")" --url "$CP_URL" --access-id "$CP_ACCESS_ID" \
    --access-key-file "$WORK/access-key" --keys "$FIX/trusted" --no-service
ok $((RC == 0)) "a tampered package is refused ($RC)"
ok "$( { [ ! -e "$P/opt/molt/current" ] && [ -z "$(ls -A "$P/opt/molt/versions" 2>/dev/null)" ]; }; echo $?)" \
    "and nothing is installed"

# ---- install and register -------------------------------------------------------------

run_install --package "$P1" --url "$CP_URL" --access-id "$CP_ACCESS_ID" \
    --access-key-file "$WORK/access-key" --ca-file "$CP_CA" --keys "$FIX/trusted" \
    --name "$NAME" --ephemeral
is "$RC" 0 "install.sh installs $V1 into the prefix"
[ "$RC" -eq 0 ] || show
is "$("$P/usr/sbin/molt-agent" --version 2>&1)/$("$P/usr/sbin/molt-installer" --version 2>&1)" \
    "molt-agent $V1/molt-installer $V1" "molt-agent and molt-installer are linked into usr/sbin, as the packages do"
is "$(readlink "$P/opt/molt/current")" "versions/$V1" "current names $V1"
is "$(stat -c %a "$P/etc/molt/molt.conf")" 600 "the configuration (with the access key) is 0600"
ok "$( { grep -qx "access_key = $CP_ACCESS_KEY" "$P/etc/molt/molt.conf" &&
    grep -qx "ephemeral = true" "$P/etc/molt/molt.conf" &&
    ls "$P/etc/molt/keys/"*.pub >/dev/null; }; echo $?)" "it holds the credentials and ephemeral; keys installed"

# Per-host settings come from a drop-in, as cloud-init writes them.
od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$WORK/machine-id-1"
cat >"$P/etc/molt/molt.conf.d/50-cloud.conf" <<CONF
[agent]
machine_id_file = $WORK/machine-id
heartbeat_interval = 1s
startup_jitter = 0
backoff_max = 2s
log_level = debug
[install]
trial_timeout = 30s
CONF
cp "$WORK/machine-id-1" "$WORK/machine-id"

# The SysV script, run with none of our descriptors but 0-2: the daemon it
# starts must not hold the test harness's pipes open.
init_do() {
    (
        for fd in /proc/"$BASHPID"/fd/*; do
            fd=${fd##*/}
            [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
        done
        exec "$INIT" "$1"
    ) </dev/null >"$WORK/init.out" 2>&1
}
init_do start
ok $? "the SysV script starts launch --supervise: $(cat "$WORK/init.out")"
NAME1_ID=
registered_as() { # NAME: the id of the collector called NAME
    cp_api GET "/collectors/name/$1" >/dev/null 2>&1 && [ "$CP_HTTP_STATUS" = 200 ] &&
        printf '%s' "$CP_BODY" | cp_json collector.id
}
wait_for 30 registered_as "$NAME" >/dev/null
NAME1_ID=$(registered_as "$NAME")
ok $((! ${#NAME1_ID})) "the agent registers as $NAME"
[ -n "$NAME1_ID" ] || tail -n 30 "$P/var/log/molt-agent.log" | sed 's/^/#   /'
is "$(cp_api GET "/collectors/$NAME1_ID" 2>/dev/null | cp_json collector.ephemeral)" true \
    "registered as ephemeral"
init_do status
is $? 0 "init status: running"

# ---- coexistence: a newer package switches, an older one does not ----------------------

run_install --package "$P2" --keep-config --no-service --health-wait 40
is "$RC" 0 "install.sh with the newer $V2 package"
like "$OUT" "switched to $V2: its heartbeat was acknowledged; committed" \
    "it went through apply, a trial and the agent's heartbeat, then commit"
[ "$RC" -eq 0 ] || show
version_of_collector() { cp_api GET "/collectors/$1" 2>/dev/null | cp_json collector.collectorVersion; }
collector_version_is() { [ "$(version_of_collector "$1")" = "$2" ]; }
wait_for 20 collector_version_is "$NAME1_ID" "$V2"
is "$(version_of_collector "$NAME1_ID")" "$V2" "the control plane sees $V2 running"
status_json=$("$P/opt/molt/bin/molt-installer" --config "$P/etc/molt/molt.conf" status --json 2>/dev/null)
like "$status_json" "\"state\": *\"committed\"" "the journal says committed"

run_install --package "$P1" --keep-config --no-service
ok "$( { [ "$RC" -eq 0 ] && [ "$(readlink "$P/opt/molt/current")" = "versions/$V2" ]; }; echo $?)" \
    "the older $V1 package leaves $V2 current"
like "$OUT" "keeping $V2: it is newer than this package's $V1" "and says so"

# The collector id in the state dir's identity.json.
stored_id() { cp_json collectorId <"$P/var/lib/molt/identity.json" 2>/dev/null; }

# ---- image-prep -------------------------------------------------------------------------

out=$("$P/opt/molt/current/bin/molt-agent" --config "$P/etc/molt/molt.conf" image-prep 2>&1)
rc=$?
ok "$( { [ "$rc" -eq 3 ] && [ -f "$P/var/lib/molt/identity.json" ]; }; echo $?)" \
    "image-prep refuses while the agent runs (exit $rc), identity kept"
like "$out" "is using .*: stop the service first" "and says why"

init_do stop
init_do status
is $? 3 "init stop; status: not running"
# A switch in progress must not be captured: put the previous version on trial.
CONF=$P/etc/molt/molt.conf
S=$(mktemp -d "$P/opt/molt/upgrade/.t-XXXXXX")
{ "$INSTALLER" --config "$CONF" install "$P1" --root "$S/r" --state-dir "$S/s" --keys "$P/etc/molt/keys" &&
    "$P/opt/molt/bin/molt-installer" --config "$CONF" apply "$S/r/versions/$V1" --task 99; } \
    >"$WORK/trial.log" 2>&1
out=$("$P/opt/molt/current/bin/molt-agent" --config "$CONF" image-prep 2>&1)
is "$?" 3 "image-prep refuses while a switch is on trial"
like "$out" "a switch is in progress \(journal state trial, task 99" "and says so"
"$P/opt/molt/bin/molt-installer" --config "$CONF" rollback >>"$WORK/trial.log" 2>&1
rm -rf "$S"
mkdir -p "$P/var/lib/molt/outbox" && echo '{}' >"$P/var/lib/molt/outbox/7.json"
mkdir -p "$P/opt/molt/upgrade/task-7" && echo partial >"$P/opt/molt/upgrade/task-7/pkg.part"
out=$("$P/opt/molt/current/bin/molt-agent" --config "$CONF" image-prep --dry-run 2>&1)
ok "$( { [ $? -eq 0 ] && [ -f "$P/var/lib/molt/identity.json" ] &&
    [ -f "$P/var/lib/molt/outbox/7.json" ]; }; echo $?)" "image-prep --dry-run changes nothing"
like "$out" "would remove $P/var/lib/molt/identity.json: identity of collector $NAME1_ID" \
    "and lists what it would remove"
out=$("$P/opt/molt/current/bin/molt-agent" --config "$P/etc/molt/molt.conf" image-prep 2>&1)
is $? 0 "image-prep with the agent stopped"
ok "$( { [ ! -e "$P/var/lib/molt/identity.json" ] && [ -z "$(ls -A "$P/var/lib/molt/outbox")" ] &&
    [ -z "$(ls -A "$P/opt/molt/upgrade")" ]; }; echo $?)" "identity, outbox and downloads are gone"
ok "$( { [ "$(readlink "$P/opt/molt/current")" = "versions/$V2" ] &&
    [ -x "$P/opt/molt/versions/$V2/bin/molt-agent" ] && [ -f "$P/var/lib/molt/journal.json" ]; }; echo $?)" \
    "the installed versions, links and journal stay"

# The clone boots with its own machine id: a second, distinct collector.
od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$WORK/machine-id"
init_do start
second() { # the other collector, named NAME-suffix by the server
    cp_api GET "/collectors?limit=1000" 2>/dev/null | "$PY" -c '
import json, sys
name, first = sys.argv[1], int(sys.argv[2])
for c in json.load(sys.stdin)["collectors"]:
    if c["name"].startswith(name) and c["id"] != first and c.get("alive", True):
        print(c["id"]); break' "$NAME" "$NAME1_ID"
}
has_second() { [ -n "$(second)" ]; }
wait_for 30 has_second
ID2=$(second)
ok $((! ${#ID2})) "after image-prep, a start with another machine id registers a second collector ($ID2)"
ok "$( { [ -n "$ID2" ] && [ "$ID2" != "$NAME1_ID" ] &&
    [ "$(stored_id)" = "$ID2" ]; }; echo $?)" \
    "distinct from the first, and stored as this host's identity"

# A clone that kept its parent's identity.json (no image-prep) registers afresh too.
init_do stop
od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$WORK/machine-id"
MOLT_AGENT_NAME="$NAME-env" init_do start
stored_is_not() { local id; id=$(stored_id) && [ -n "$id" ] && [ "$id" != "$1" ]; }
wait_for 30 stored_is_not "$ID2"
ID3=$(stored_id)
ok "$( { [ -n "$ID3" ] && [ "$ID3" != "$ID2" ] && [ "$ID3" != "$NAME1_ID" ]; }; echo $?)" \
    "a clone carrying its parent's identity but another machine id is a new collector ($ID3)"
is "$(cp_api GET "/collectors/$ID3" 2>/dev/null | cp_json collector.name)" "$NAME-env" \
    "its name came from MOLT_AGENT_NAME in the environment"
init_do stop

# A root-run installer command's root-owned file in the state dir is repaired by a re-run.
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
    chown nobody "$P/var/lib/molt/installer.lock" 2>/dev/null || touch "$P/var/lib/molt/installer.lock"
    chown nobody "$P/var/lib/molt/installer.lock"
    run_install --package "$P1" --keep-config --no-service
    is "$(stat -c %U "$P/var/lib/molt/installer.lock")" "$(id -un)" \
        "a re-run gives the state dir's contents back to the service user"
else
    ok 0 "# SKIP ownership repair needs root"
fi
run_install --uninstall
[ "$RC" -eq 0 ] || show
ok "$( { [ "$RC" -eq 0 ] && [ ! -e "$P/opt/molt" ] && [ ! -L "$P/usr/sbin/molt-agent" ] &&
    [ ! -e "$P/etc/init.d/molt-agent" ] && [ -f "$P/etc/molt/molt.conf" ] &&
    [ -d "$P/var/lib/molt" ]; }; echo $?)" "install.sh --uninstall: versions, links and service gone; state and configuration kept"
run_install --uninstall --purge
ok "$( { [ "$RC" -eq 0 ] && [ ! -e "$P/etc/molt" ] && [ ! -e "$P/var/lib/molt" ]; }; echo $?)" \
    "--uninstall --purge: state and configuration gone too"
tap_done
