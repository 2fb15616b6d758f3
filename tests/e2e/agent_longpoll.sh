# agent_longpoll.sh: a heartbeat held open by the reference control plane (a real
# long-poll, held up to 20 s) does not hold the agent up: SIGTERM ends the agent
# during the hold, long before the hold would have ended, with exit code 0.
set -u
. "$(dirname "$0")/lib/agent.sh"

tap_plan 6
cp_start "$W" --heartbeat-interval 20s --long-poll-max 20s || { echo "Bail out! control plane"; exit 1; }

long_polls_waiting() { cp_stats | "$CP_PY" -c 'import json,sys; print(json.load(sys.stdin)["longPollsWaiting"])'; }
held() { [ "$(long_polls_waiting)" = 1 ]; }

agent_up lp
ok $? "the agent registers"
wait_for 20 log_has lp 'heartbeat.next interval_ms=20000 long_poll=1'
ok $? "the server offers long-poll with a 20 s interval"
# A reload sends the next heartbeat at once (not half an interval later); the server holds it.
kill -HUP "$pid"
wait_for 10 held
ok $? "a heartbeat is held open by the server"
sleep 0.3
kill -TERM "$pid"
# Bounded well under the 20 s hold: the agent must not wait for the server's answer.
agent_wait_exit "$pid" 10
is "$AGENT_RC" 0 "SIGTERM ends the agent during the hold, with exit code 0"
log_has lp 'info agent.stopping exit_code=0'
ok $? "the log says it stopped"
! log_has lp 'heartbeat.failed'
ok $? "the cancelled heartbeat is not logged as a failure"
tap_done
