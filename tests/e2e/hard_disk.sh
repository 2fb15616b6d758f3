# hard_disk.sh: a full disk at each point of an upgrade where the agent writes
# (fault injection points of lib/fault.h, each firing once): the free-space
# check of preflight, a write of the download, the free-space check of staging,
# a write while unpacking, and an atomic state write. Each task ends 3 with a
# precise reason naming the stage and the cause, nothing is left in the upgrade
# directory, the install is unchanged, and the next task succeeds.
set -u
. "$(dirname "$0")/lib/hard.sh"
tap_need_fault_points

tap_plan 25
env_start disk
publish "$V1" "$V2"
# One process tree with every disk fault armed: the pipeline meets them in
# its order, one per task.
restart_with MOLT_FAULT=preflight.enospc,download.enospc,stage.enospc,stage.write.enospc
wait_for 30 registered || { echo "Bail out! agent did not register"; exit 1; }

# disk_task POINT REASON_REGEX: a task to V2 that the full disk at POINT must fail.
disk_task() {
    local point=$1 want=$2 tid
    log_mark
    tid=$(cp_create_task "$CID" "$V2")
    task_ends "$tid" 3 60
    ok $? "$point: task $tid ends 3"
    like "$CP_TASK_MESSAGE" "$want" "$point: the reason is precise ($CP_TASK_MESSAGE)"
    fired "$point"
    ok $? "$point: the fault fired"
    wait_for 10 log_since "upgrade.failed task=$tid .*reason=\"[^\"]*(No space left|not enough free space)"
    ok $? "$point: the agent logged the failure with its cause"
    consistent "$V1"
    ok $? "$point: consistent: current -> $(current_link), journal at rest, upgrade dir empty"
}

disk_task preflight.enospc '^preflight: not enough free space in .*: [0-9]+ MiB needed, 0 MiB free'
disk_task download.enospc '^downloading: download .*: write .*/package: No space left on device'
disk_task stage.enospc '^staging: .*not enough free space in '
disk_task stage.write.enospc '^staging: .*No space left on device'

# With the disk free again, the same upgrade goes through.
tid=$(cp_create_task "$CID" "$V2")
task_ends "$tid" 2 90
ok $? "after the disk faults, task $tid ends 2 ($CP_TASK_MESSAGE)"

# An atomic state write (upgrade.json when the task is accepted) failing.
consistent "$V2"
restart_with MOLT_FAULT=fs.write.enospc
wait_for 30 version_is "$V2"
log_mark
tid=$(cp_create_task "$CID" "$V1")
task_ends "$tid" 3 60
ok $? "fs.write.enospc: task $tid ends 3"
like "$CP_TASK_MESSAGE" 'No space left on device' "fs.write.enospc: the reason is precise ($CP_TASK_MESSAGE)"
fired fs.write.enospc
ok $? "fs.write.enospc: the fault fired"
consistent "$V2"
ok $? "fs.write.enospc: consistent: current -> $(current_link), journal at rest, upgrade dir empty"

[ "$TAP_FAILED" -eq 0 ] || show_log 60
tap_done
