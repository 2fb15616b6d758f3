# installer_crash.sh: the crash matrix. For every fault point of apply,
# launch, commit and rollback (docs/upgrades.md), the process reaching it is
# SIGKILLed there (MOLT_FAULT); then the service is started again
# (launch --supervise, no fault) and the install must be consistent: current
# names one complete version, the journal is at rest, the task has an outcome
# (it ends 2 or 3), the agent running is current's, and the stable installer is
# current's copy.
set -u
. "$(dirname "$0")/lib/installer.sh"
tap_need_fault_points

# case:scenario:fault point:expected state:expected current
CASES="
apply:apply.after_journal_switching:rolled-back:1.0
apply:apply.after_move:rolled-back:1.0
apply:apply.after_previous:rolled-back:1.0
apply:apply.after_flip:rolled-back:1.0
apply:apply.after_journal_trial:committed:2.0
launch:launch.after_count_start:committed:2.0
exec:launch.before_exec:committed:2.0
deadline:launch.after_deadline_kill:rolled-back:1.0
watchdog:launch.after_deadline_kill:rolled-back:1.0
commit:commit.after_journal:committed:2.0
commit:commit.after_installer:committed:2.0
manual:rollback.after_journal:rolled-back:1.0
manual:rollback.after_flip:rolled-back:1.0
manual:rollback.after_previous:rolled-back:1.0
manual:rollback.after_journal_done:rolled-back:1.0
auto:rollback.after_journal:rolled-back:1.0
auto:rollback.after_flip:rolled-back:1.0
auto:rollback.after_previous:rolled-back:1.0
auto:rollback.after_journal_done:rolled-back:1.0
revert:rollback.after_journal:rolled-back:1.0
revert:rollback.after_flip:rolled-back:1.0
revert:rollback.after_previous:rolled-back:1.0
revert:rollback.after_journal_done:rolled-back:1.0
"
n_cases=$(echo "$CASES" | grep -c .)
tap_plan $((n_cases * 6))

settled() { # STATE VERSION
    state_is "$1" && [ "$(link_of current)" = "$2" ] && [ "$(last_start)" = "$2" ]
}

while IFS=: read -r scenario point want_state want_cur; do
    [ -n "$scenario" ] || continue
    name="$scenario:$point"
    kind=healthy timeout=20s
    case $scenario in
    deadline|watchdog) kind=hang timeout=2s ;;
    auto) kind=exit ;;
    esac
    new_case "$scenario-$point" "$timeout"
    install_by_hand 1.0 steady
    stage 2.0 "$kind" 12

    status=$(crash "$scenario" "$point")
    [ "$scenario" = watchdog ] && status=137 # the agent (the launch process) is what died
    is "$status" "137" "$name: killed there"
    grep -q "point=$point action=kill" "$T"/*.log "$T"/*.out 2>/dev/null
    ok $? "$name: the fault point was reached"

    # The service manager starts the launcher again.
    start_supervisor
    wait_for 15 settled "$want_state" "$want_cur"
    ok $? "$name: settles on $want_cur, $want_state (state $(jfield state), current $(link_of current), last start $(last_start))"
    msg=$(consistent)
    ok $? "$name: consistent $msg"
    if [ "$scenario" = revert ]; then
        res=$(outcome '')
        want="rolled-back|2.0|manual rollback: crash"
    else
        res=$(outcome 12)
        case $want_state in
        committed) want="committed|2.0|" ;;
        *) want="rolled-back|2.0|" ;;
        esac
    fi
    case $res in
    "$want"*) rc=0 ;;
    *) rc=1 ;;
    esac
    ok $rc "$name: the task has its outcome ($res)"
    case $scenario in
    revert) exp="1.0 2.0" ;;
    *) [ "$want_cur" = 2.0 ] && exp="2.0 1.0" || exp="1.0 " ;;
    esac
    is "$(link_of current) $(link_of previous)" "$exp" "$name: current and previous"
    stop_supervisor
done <<EOF
$CASES
EOF

tap_done
