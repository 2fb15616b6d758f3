# upgrade_powercut.sh: power cuts during a real upgrade (agent, installer,
# signed packages, the reference control plane over HTTPS on loopback). The
# install root, state dir and upgrade dir are on molt-powercutfs. At each
# fault point of the agent's pipeline and of the installer steps it runs, the
# process reaching it is frozen there (MOLT_FAULT_ACTION=stop), then power is
# cut: every process of the service is killed and what was not synced is lost.
# After the reboot the service starts again and the task must end 2 or 3 with
# one final status, the server must record one result for it, and the install
# be consistent: current complete and manifest-valid, the journal agreeing with
# the links. outbox.after_send cuts after the final report was acknowledged and
# before the outbox let go of it: the agent sends it again after the reboot
# (at-least-once), and the server must take the repeat as the same result. Two
# last cases cut in the middle of the download: in its first attempt (nothing
# synced yet: it starts over) and in a later one (it resumes).
# make check runs a sample (MOLT_POWERCUT_FULL unset); make check-powercut all.
set -u
. "$MOLT_TOP_SRCDIR/tests/e2e/lib/upgrade.sh"
. "$MOLT_TOP_SRCDIR/tests/powercut/pcfs_lib.sh"
pcfs_need
tap_need_fault_points

POINTS="upgrade.after_staging apply.after_flip outbox.after_send"
[ -z "${MOLT_POWERCUT_FULL:-}" ] || POINTS="upgrade.after_download upgrade.after_staging
apply.after_move apply.after_flip apply.after_journal_trial upgrade.after_switch
launch.after_count_start upgrade.before_commit commit.after_journal upgrade.after_commit
outbox.after_send"
n=0
for p in $POINTS; do n=$((n + 1)); done
n_dl=7
[ -z "${MOLT_POWERCUT_FULL:-}" ] || n_dl=15 # the second download case, in the full run only
tap_plan $((n * 7 + n_dl))
env_start powercut
trap '[ -z "$AGENT_PID" ] || kill -KILL "$AGENT_PID"; kill_case; pcfs_cut; env_cleanup' EXIT
publish "$V1" "$V2"

# The installed host moves onto the power-cut file system, durable as it is.
mkdir -p "$WORK/durable" "$WORK/mnt" "$UPG" "$STATE"
mv "$ROOT" "$STATE" "$UPG" "$WORK/durable/"
PCFS_LOG=$WORK/pcfs.log
pcfs_mount_at "$WORK/durable" "$WORK/live" "$WORK/mnt" || { echo "Bail out! mount"; exit 1; }
sed -i -e "s|$WORK/root|$WORK/mnt/root|g" -e "s|$WORK/state|$WORK/mnt/state|g" \
    -e "s|$WORK/upgrade|$WORK/mnt/upgrade|g" "$MOLT_CONFIG"
ROOT=$WORK/mnt/root STATE=$WORK/mnt/state UPG=$WORK/mnt/upgrade
MOLT_PC_CASE=$WORK/service
export MOLT_PC_CASE

# power_cut: the service and everything it started die; unsynced state is lost.
power_cut() {
    # The service loop first (a fork of this shell, without MOLT_PC_CASE in
    # its /proc environ), then everything it started.
    [ -z "$AGENT_PID" ] || kill -KILL "$AGENT_PID" 2>/dev/null
    kill_case
    wait "$AGENT_PID" 2>/dev/null
    AGENT_PID=
    pcfs_reboot
}

journal_at_rest() {
    case $("$ROOT/bin/molt-installer" status --json 2>/dev/null | cp_json journal.state) in
    idle | committed | rolled-back) return 0 ;;
    esac
    return 1
}

# one_final TASK: the control plane heard one final status, and it was the last.
one_final() {
    local s
    s=$(task_statuses "$1")
    case " $s " in
    *" 2 "*" 3 "* | *" 3 "*" 2 "*) return 1 ;;
    esac
    case $s in
    *2 | *3) return 0 ;;
    esac
    return 1
}

# finals TASK: "DELIVERIES RESULTS STATUSES": how many times the agent
# delivered a final report (the server folds an identical repeat into the
# event before it and counts it in "repeats"), how many final results the
# server recorded, and the distinct final statuses the agent sent.
finals() {
    cp_task_events "$1" | "$PY" -c '
import json, sys
ev = json.load(sys.stdin).get("events", [])
agent = [e for e in ev if e.get("source") == "agent" and e.get("status") in (2, 3)]
done = [e for e in ev if e.get("source") == "server"
        and e.get("what") in ("succeeded", "failed", "cancelled", "timed-out")]
print(sum(e.get("repeats") or 1 for e in agent), len(done),
      ",".join(sorted({str(e["status"]) for e in agent})) or "-")'
}

outbox_empty() { ! ls "$STATE/outbox/"*.json >/dev/null 2>&1; }

# reported_once TASK POINT: the server recorded one result, the one every final
# report the agent sent says; the agent delivered it once, or, cut between the
# acknowledgment and the removal from its outbox (outbox.after_send), twice.
reported_once() {
    local want=1 d r s
    [ "$2" != outbox.after_send ] || want=2
    wait_for 30 outbox_empty
    read -r d r s <<EOF3
$(finals "$1")
EOF3
    FINALS="$d deliveries, $r server results, status $s"
    [ "$r" = 1 ] && [ "$s" = "$CP_TASK_STATUS" ] && [ "$d" = "$want" ]
}

complete_current() {
    local v
    v=$(current_link)
    [ -x "$ROOT/versions/$v/bin/molt-agent" ] && [ -x "$ROOT/versions/$v/bin/molt-installer" ] &&
        cmp -s "$ROOT/bin/molt-installer" "$ROOT/versions/$v/bin/molt-installer" &&
        pcfs_manifest_valid "$ROOT/versions/$v" >/dev/null
}

# after_cut NAME TASK POINT: the checks after a cut and the reboot.
after_cut() {
    local msg
    cp_wait_task_status "$2" 2 120 || { [ "$CP_TASK_STATUS" = 3 ] && [ -n "$CP_TASK_MESSAGE" ]; }
    ok $? "$1: task $2 ends 2 or 3 with a reason (${CP_TASK_STATUS:-?}: $CP_TASK_MESSAGE)"
    one_final "$2"
    ok $? "$1: one final status reported ($(task_statuses "$2"))"
    reported_once "$2" "$3"
    ok $? "$1: the server has one result ($FINALS)"
    [ "$CP_TASK_STATUS" = 2 ] && cur=$want
    wait_for 30 version_is "$cur" && [ "$(current_link)" = "$cur" ] && wait_for 10 journal_at_rest
    ok $? "$1: consistent: current -> $(current_link), collector reports $(running_version), journal at rest"
    complete_current
    ok $? "$1: current is complete, manifest-valid, and the stable installer is its copy"
    msg=$(pcfs_journal_agrees "$STATE/journal.json" "$ROOT")
    ok $? "$1: the journal agrees with the links ${msg:-(current $(current_link), previous $(readlink "$ROOT/previous" | sed 's|^versions/||'))}"
}

agent_start
wait_for 30 registered || { echo "Bail out! agent did not register"; show_log; exit 1; }
cur=$V1
for p in $POINTS; do
    wait_for 30 version_is "$cur"
    power_cut
    export MOLT_FAULT=$p MOLT_FAULT_ONCE_DIR="$WORK/once/$p" MOLT_FAULT_ACTION=stop
    mkdir -p "$MOLT_FAULT_ONCE_DIR"
    agent_start
    unset MOLT_FAULT MOLT_FAULT_ONCE_DIR MOLT_FAULT_ACTION
    wait_for 30 version_is "$cur"
    [ "$cur" = "$V1" ] && want=$V2 || want=$V1
    tid=$(cp_create_task "$CID" "$want")
    wait_for 90 test -e "$WORK/once/$p/$p"
    ok $? "$p: task $tid reached the point"
    sleep 0.3 # the process is frozen there; the cut comes now
    power_cut
    agent_start
    after_cut "$p" "$tid" "$p"
done

# A cut in the middle of the download: the partial package in the upgrade dir
# keeps what the downloader had synced (or nothing). After the reboot the agent
# resumes or starts over; the task ends 2 or 3, never with a corrupt stage.
wait_for 30 version_is "$cur"
start_partial_download "$cur"
had=$(stat -c %s "$UPG/task-$tid/package" 2>/dev/null || echo 0)
power_cut
left=$(stat -c %s "$UPG/task-$tid/package" 2>/dev/null || echo "no file")
cp_faults_reset
[ "$had" -gt 150000 ] && [ "$had" -lt "$size" ]
ok $? "download: cut with $had of $size bytes downloaded ($left after the reboot)"
agent_start
after_cut download "$tid" upgrade.download
line=$(grep "upgrade.download task=$tid " "$WORK/agent.log" | tail -n 1)
tap_diag "after the cut: $line"

# A cut in a later attempt: the first is dropped after 200000 bytes (an
# attempt's end syncs the partial file and saves the ETag, which syncs the
# task directory), the second, throttled, is cut midway. After the reboot the
# agent must resume from what the first attempt synced (Range + If-Range).
if [ -n "${MOLT_POWERCUT_FULL:-}" ]; then
    wait_for 30 version_is "$cur"
    [ "$cur" = "$V1" ] && want=$V2 || want=$V1
    size=$(stat -c %s "$(pkg_of "$want")")
    cp_fault '{"type": "drop", "afterBytes": 200000}' >/dev/null
    cp_fault '{"type": "throttle", "bytesPerSecond": 131072}' >/dev/null
    tid=$(cp_create_task "$CID" "$want")
    second() { [ "$(stat -c %s "$UPG/task-$tid/package" 2>/dev/null || echo 0)" -gt 260000 ]; }
    wait_for 60 second
    had=$(stat -c %s "$UPG/task-$tid/package" 2>/dev/null || echo 0)
    power_cut
    left=$(stat -c %s "$UPG/task-$tid/package" 2>/dev/null || echo 0)
    cp_faults_reset
    [ "$had" -gt 260000 ] && [ "$had" -lt "$size" ] && [ "$left" = 200000 ]
    ok $? "download, second attempt: cut with $had bytes, $left (the first attempt's) survived"
    agent_start
    after_cut download-resume "$tid" upgrade.download
    line=$(grep "upgrade.download task=$tid " "$WORK/agent.log" | tail -n 1)
    got=$(printf '%s' "$line" | sed -n 's/.* bytes=\([0-9]*\) .*/\1/p')
    [ -n "$got" ] && [ "$((got + 200000))" = "$size" ]
    ok $? "download, second attempt: the agent resumed after the reboot: fetched $got of $size bytes"
fi
tap_done
