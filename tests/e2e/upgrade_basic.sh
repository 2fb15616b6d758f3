# upgrade_basic.sh: a task created through the management API ends 2 with the new
# version running; broken builds roll back and end 3 with the reason; a downgrade
# succeeds. Acceptance 1, 2 and 9 of the self-upgrade issue.
set -u
. "$(dirname "$0")/lib/upgrade.sh"

tap_plan 17
env_start basic
publish "$V1" "$V2" "$VX" "$VH"
agent_start
wait_for 30 registered
ok $? "agent registered (collector $CID)"
is "$(running_version)" "$V1" "collector reports $V1"

# 1. upgrade to V2
tid=$(cp_create_task "$CID" "$V2")
cp_wait_task_status "$tid" 2 90
ok $? "task $tid to $V2 ends 2 ($CP_TASK_MESSAGE)"
is "$(task_statuses "$tid")" "0 1 6 2" "status went 0 -> 1 -> 6 -> 2"
like "$(task_stages "$tid")" \
    "accepted preflight downloading verifying staging switching (restarting )?health-check committed" \
    "every stage was reported in order"
wait_for 20 version_is "$V2"
ok $? "collector now reports collectorVersion $V2"
is "$(current_link)" "$V2" "current -> versions/$V2"
is "$(ls "$UPG" | wc -l)" 0 "upgrade directory is empty after success"

# 2a. a build whose agent exits at start
tid=$(cp_create_task "$CID" "$VX")
cp_wait_task_status "$tid" 3 120
ok $? "broken build $VX ends 3"
like "$CP_TASK_MESSAGE" "health-check: rolled back: $VX exited 3 times during trial" \
    "the reason names the rollback ($CP_TASK_MESSAGE)"
wait_for 30 version_is "$V2"
ok $? "the old version $V2 heartbeats again"
is "$(current_link)" "$V2" "current -> versions/$V2 again"

# 2b. a build that never heartbeats (trial deadline)
tid=$(cp_create_task "$CID" "$VH")
cp_wait_task_status "$tid" 3 120
ok $? "build $VH that never heartbeats ends 3"
like "$CP_TASK_MESSAGE" "rolled back: .*$VH" "the reason names the failed trial ($CP_TASK_MESSAGE)"
wait_for 30 version_is "$V2"
ok $? "the old version $V2 heartbeats again"

# 9. a downgrade
tid=$(cp_create_task "$CID" "$V1")
cp_wait_task_status "$tid" 2 90
ok $? "downgrade task to $V1 ends 2 ($CP_TASK_MESSAGE)"
wait_for 20 version_is "$V1"
ok $? "collector reports $V1 after the downgrade"
[ "$TAP_FAILED" -eq 0 ] || show_log 60
tap_done
