# upgrade_worker.sh: the sandboxed upgrade worker (issue 20). A worker killed
# in each of its stages, one that hangs (the task's deadline ends it), and one
# that tries to leave its sandbox (write outside its task directory, open a
# socket, have the agent connect it to an address of no host of the task, run
# a program) or stages a forged tree,
# through fault points of the worker: each task ends 3 with the reason,
# nothing is switched, and the agent heartbeats throughout. A worker that does
# not exit after its result is ended, and its task goes on. The worker has
# the agent's settings in force, not what molt.conf says since.
set -u
. "$(dirname "$0")/lib/upgrade.sh"

tap_plan 51
CP_TASK_TIMEOUT=40s
env_start worker
publish "$V1" "$V2"
agent_start
wait_for 30 registered
ok $? "agent registered (collector $CID)"

nothing_switched() { [ "$(current_link)" = "$V1" ] && [ -z "$(ls "$UPG")" ]; }
worker_gone() { ! pgrep -f "$ROOT/versions/$V1/bin/molt-worker" >/dev/null; }

# restart_with FAULT: the agent (and so its workers) under MOLT_FAULT=FAULT.
restart_with() {
    agent_stop
    MOLT_FAULT=$1
    export MOLT_FAULT
    agent_start
    wait_for 30 version_is "$V1"
}

# fails_with FAULT PATTERN WHAT: a task under FAULT ends 3 with PATTERN.
fails_with() {
    local before
    restart_with "$1"
    tid=$(cp_create_task "$CID" "$V2")
    cp_wait_task_status "$tid" 3 "${WAIT:-60}"
    ok $? "$3: task ends 3"
    like "$CP_TASK_MESSAGE" "$2" "$3: the reason says so ($CP_TASK_MESSAGE)"
    before=$(collector_field lastSeenAlive 2>/dev/null)
    wait_for 15 nothing_switched && worker_gone
    ok $? "$3: nothing switched, no worker left"
    sleep 2.5
    [ "$(collector_field lastSeenAlive 2>/dev/null)" != "$before" ] && version_is "$V1"
    ok $? "$3: $V1 heartbeats on"
}

# The sandbox is in force, and the agent reports the worker's end.
restart_with ""
tid=$(cp_create_task "$CID" "$V2")
cp_wait_task_status "$tid" 2 90
ok $? "an upgrade through the worker ends 2"
like "$(grep 'agent.sandbox' "$WORK/agent.log" | head -n 1)" \
    'worker_layers="no_new_privs landlock\(abi [0-9]+\) seccomp"' "the agent logged at its start what confines its workers"
like "$(grep 'worker.sandbox' "$WORK/agent.log" | head -n 1)" \
    'layers="no_new_privs landlock\(abi [0-9]+\) seccomp" ports=1 connections=agent' \
    "the worker logged its three sandbox layers, and that the agent makes its connections"
like "$(grep 'upgrade.worker ' "$WORK/agent.log" | head -n 1)" 'exit=[^ ]+ stage=staging maxrss_kib=[0-9]+' \
    "the agent logged the worker's exit and peak RSS"
# Started by launch without GnuTLS's implicit initialisation (libldap maps it, unused).
tr '\0' '\n' <"/proc/$(agent_pid)/environ" | grep -qx GNUTLS_NO_IMPLICIT_INIT=1
ok $? "the agent runs without GnuTLS's implicit initialisation (GNUTLS_NO_IMPLICIT_INIT=1)"
needed=$(readelf -d "$ROOT/versions/$V2/bin/molt-agent" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | tr '\n' ' ')
! printf '%s' "$needed" | grep -qE 'libarchive|libzstd|libseccomp'
ok $? "the resident agent links neither libarchive, libzstd nor libseccomp ($needed)"
# Back to V1 for the fault cases (a downgrade through the worker).
tid=$(cp_create_task "$CID" "$V1")
cp_wait_task_status "$tid" 2 90
ok $? "the downgrade through the worker ends 2"

# The worker works with the agent's settings in force, from its start message,
# and reads no configuration file: molt.conf made unusable after the agent
# loaded it (and put back while the worker downloads, before the new version
# starts) does not stop the upgrade. A worker that read the file would fail its
# setup on the unknown key.
cp "$WORK/molt.conf" "$WORK/molt.conf.good"
printf '[agent]\nno_such_key = 1\n' >>"$WORK/molt.conf"
sandboxed=$(grep -c 'worker.sandbox' "$WORK/agent.log")
cp_fault '{"type": "stall", "seconds": 4}' >/dev/null
tid=$(cp_create_task "$CID" "$V2")
wait_for 30 sh -c "[ \$(grep -c 'worker.sandbox' '$WORK/agent.log') -gt $sandboxed ]"
ok $? "a worker started and confined itself while molt.conf held an unknown key"
cp "$WORK/molt.conf.good" "$WORK/molt.conf"
cp_faults_reset
cp_wait_task_status "$tid" 2 90
ok $? "that worker had the agent's settings: the upgrade ends 2 ($CP_TASK_MESSAGE)"
tid=$(cp_create_task "$CID" "$V1")
cp_wait_task_status "$tid" 2 90
ok $? "and back to $V1"

# A worker that does not exit after its result: the task goes on, the
# agent ends the worker (and the same again on the way back to V1).
restart_with worker.linger
tid=$(cp_create_task "$CID" "$V2")
cp_wait_task_status "$tid" 2 90
ok $? "a worker that lingers after its result: the upgrade ends 2"
like "$(grep "upgrade.worker task=$tid " "$WORK/agent.log" | tail -n 1)" 'exit=signal-9 stage=staging' \
    "a worker that lingers after its result: the agent ends it"
tid=$(cp_create_task "$CID" "$V1")
cp_wait_task_status "$tid" 2 90
ok $? "a worker that lingers after its result: the downgrade ends 2"

fails_with worker.in_downloading "^downloading: the upgrade worker was killed by signal 9" \
    "worker killed while downloading"
fails_with worker.in_verifying "^verifying: the upgrade worker was killed by signal 9" \
    "worker killed while verifying"
fails_with worker.in_staging "^staging: the upgrade worker was killed by signal 9" \
    "worker killed while staging"
fails_with worker.escape_write "sandbox refused writing .*/versions/escaped-by-worker: Permission denied" \
    "worker writing outside its task directory"
[ ! -e "$ROOT/versions/escaped-by-worker" ]
ok $? "the file outside the task directory was not created"
fails_with worker.escape_connect "sandbox refused a socket: Operation not permitted" \
    "worker opening a socket of its own"
fails_with worker.escape_ask "the upgrade worker sent a bad message: connect: 127.0.0.1 port 9 is not an address of the task's hosts" \
    "worker asking the agent for a connection to another address"
fails_with worker.escape_exec "stopped by its sandbox .*SIGSYS" "worker running a program"
# Past its sandbox's reach: a tree that agrees with a rewritten manifest. The
# installer holds it to the signed statement's manifestSha256.
fails_with worker.forge_tree "^switching: .*manifest mismatch: manifest.json has sha256 [0-9a-f]{64}, the statement's manifestSha256 is [0-9a-f]{64}" \
    "worker staging a forged tree"
WAIT=90 fails_with worker.hang "expired|timed out" "a hung worker"

agent_stop
env_cleanup
