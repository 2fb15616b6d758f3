# lib/installer.sh: shared by the installer_*.sh tests. Each test gets a temp
# directory with an install root, a state dir and an upgrade dir, and builds
# versions by hand: bin/molt-installer is this build's installer (with the
# version appended after the ELF image, so copies of different versions differ)
# and bin/molt-agent is a small script that behaves as the test needs. The
# launcher runs under `launch --supervise`, as on a host without systemd.
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/wait.sh"

INSTALLER="$MOLT_TOP_BUILDDIR/installer/molt-installer"
PY=${PYTHON3:-python3}
unset MOLT_FAULT MOLT_INSTALL_ROOT MOLT_AGENT_STATE_DIR MOLT_INSTALL_TRIAL_TIMEOUT \
    MOLT_INSTALL_TRIAL_MAX_STARTS MOLT_AGENT_UPGRADE_DIR
ulimit -c 0 # the crashing test agent must not leave core files
TOP=$(mktemp -d "${TMPDIR:-/tmp}/molt-installer-XXXXXX")
SUP_PID=

cleanup() {
    stop_supervisor
    if [ -n "${MOLT_TEST_KEEP:-}" ]; then
        echo "# kept $TOP"
        return
    fi
    chmod -R u+w "$TOP" 2>/dev/null
    rm -rf "$TOP"
}
trap cleanup EXIT

# new_case NAME [TRIAL_TIMEOUT] [MAX_STARTS]: a fresh root, state and config.
new_case() {
    stop_supervisor
    T=$TOP/$1
    ROOT=$T/root STATE=$T/state UPG=$T/upgrade EVENTS=$T/events
    mkdir -p "$T" "$STATE" "$UPG"
    : >"$EVENTS"
    cat >"$T/molt.conf" <<EOF
[agent]
state_dir = $STATE
upgrade_dir = $UPG
[install]
root = $ROOT
trial_timeout = ${2:-20s}
trial_max_starts = ${3:-3}
EOF
    export MOLT_CONFIG=$T/molt.conf
}

# make_version DIR VERSION KIND [TASK]: a build tree whose agent is KIND:
#   steady   runs; upgrades when the test drops an apply request (then exits 75)
#   healthy  commits TASK at start (the new agent's proof), then runs as steady
#   exit     exits 1 at once with a message on stderr
#   hang     runs but never commits (never gets a heartbeat acknowledged)
#   crash    runs 0.3 s, then dies of SIGSEGV
make_version() {
    local dir=$1 v=$2 kind=$3 task=${4:-}
    mkdir -p "$dir/bin"
    cp "$INSTALLER" "$dir/bin/molt-installer"
    printf '\n#molt-test-build %s\n' "$v" >>"$dir/bin/molt-installer"
    {
        echo '#!/bin/sh'
        echo "echo \"start $v \$\$\" >>'$EVENTS'"
        case $kind in
        exit)
            echo "echo '$v: fatal: cannot read the configuration' >&2"
            echo 'exit 1' ;;
        hang)
            echo "echo '$v: waiting for the server' >&2"
            echo 'exec sleep 600' ;;
        crash)
            echo "echo '$v: about to crash' >&2"
            echo 'sleep 0.3'
            echo 'kill -SEGV $$' ;;
        healthy|steady)
            if [ "$kind" = healthy ]; then
                echo "if \"\$MOLT_INSTALL_ROOT/bin/molt-installer\" commit --task $task >>'$T/commit.out' 2>&1"
                echo "then echo 'commit-ok $v' >>'$EVENTS'; else echo \"commit-failed $v \$?\" >>'$EVENTS'; fi"
            fi
            echo "echo '$v: running' >&2"
            echo 'while :; do'
            echo "  if mv '$T/apply-request' '$T/apply-request.taken' 2>/dev/null; then"
            echo "    if \"\$MOLT_INSTALL_ROOT/bin/molt-installer\" apply \$(cat '$T/apply-request.taken') >>'$T/apply.out' 2>&1"
            echo "    then echo 'apply-ok $v' >>'$EVENTS'; exit 75"
            echo "    else echo \"apply-failed $v \$?\" >>'$EVENTS'; fi"
            echo '  fi'
            echo '  sleep 0.1'
            echo 'done' ;;
        esac
    } >"$dir/bin/molt-agent"
    chmod 755 "$dir/bin/molt-agent" "$dir/bin/molt-installer"
}

# install_by_hand VERSION KIND: the layout install would produce.
install_by_hand() {
    make_version "$ROOT/versions/$1" "$1" "$2"
    ln -s "versions/$1" "$ROOT/current"
    mkdir -p "$ROOT/bin"
    cp "$ROOT/versions/$1/bin/molt-installer" "$ROOT/bin/molt-installer"
}

# stage VERSION KIND [TASK]: a staged build in the upgrade dir, as the agent leaves it.
stage() {
    make_version "$UPG/stage-$1" "$1" "$2" "${3:-}"
}

# request_apply ARGS...: the steady agent runs `molt-installer apply ARGS` and exits 75.
request_apply() {
    echo "$*" >"$T/apply-request.tmp" && mv "$T/apply-request.tmp" "$T/apply-request"
}

inst() { "$ROOT/bin/molt-installer" "$@"; }

start_supervisor() {
    "$ROOT/bin/molt-installer" launch --supervise >>"$T/supervisor.log" 2>&1 &
    SUP_PID=$!
}

# stop_supervisor: SIGTERM; prints its exit status.
stop_supervisor() {
    [ -n "$SUP_PID" ] || return 0
    kill -TERM "$SUP_PID" 2>/dev/null
    wait "$SUP_PID"
    SUP_STATUS=$?
    SUP_PID=
}

has_event() { grep -qx -- "$1" "$EVENTS"; }
has_event_like() { grep -qE -- "$1" "$EVENTS"; }
count_events() { grep -cE -- "$1" "$EVENTS"; }
last_start() { grep '^start ' "$EVENTS" | tail -n 1 | cut -d' ' -f2; }

# jfield KEY: a top-level field of the journal ("" when absent).
jfield() {
    "$PY" -c 'import json,sys
try: print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))
except Exception as e: print("ERROR", e)' "$STATE/journal.json" "$1"
}

# outcome TASK: "result|toVersion|reason" of the newest outcome for TASK.
outcome() {
    "$PY" -c 'import json,sys
try:
    j = json.load(open(sys.argv[1]))
    o = [o for o in j["outcomes"] if o["taskId"] == sys.argv[2]]
    print("%s|%s|%s" % (o[0]["result"], o[0]["toVersion"], o[0]["reason"]) if o else "none")
except Exception as e: print("ERROR", e)' "$STATE/journal.json" "$1"
}

state_is() { [ "$(jfield state)" = "$1" ]; }
resting() { case $(jfield state) in committed|rolled-back|idle) return 0 ;; esac; return 1; }
link_of() { readlink "$ROOT/$1" 2>/dev/null | sed 's|^versions/||'; }
stable_build() { tail -n 1 "$ROOT/bin/molt-installer" | sed -n 's/^#molt-test-build //p'; }

# consistent: current names one complete version; previous, if any, too; and
# the stable installer is current's. Prints what is wrong.
consistent() {
    local cur prev
    cur=$(link_of current)
    prev=$(link_of previous)
    [ -n "$cur" ] || { echo "no current"; return 1; }
    [ -x "$ROOT/versions/$cur/bin/molt-agent" ] || { echo "current $cur incomplete"; return 1; }
    [ -x "$ROOT/versions/$cur/bin/molt-installer" ] || { echo "current $cur incomplete"; return 1; }
    if [ -n "$prev" ] && [ ! -x "$ROOT/versions/$prev/bin/molt-agent" ]; then
        echo "previous $prev incomplete"; return 1
    fi
    if resting && [ "$(stable_build)" != "$cur" ]; then
        echo "stable installer is $(stable_build)'s, current is $cur"; return 1
    fi
    return 0
}

# Shared by the crash matrix and the power-cut matrix (tests/powercut).
apply_v2() {
    inst apply "$UPG/stage-2.0" --task 12 --build-version 2.0 >>"$T/apply.out" 2>&1
}

# crash SCENARIO POINT: brings the install to the point and kills there.
# Prints the killed process's exit status.
crash() {
    local scenario=$1 point=$2
    case $scenario in
    apply)
        MOLT_FAULT=$point "$ROOT/bin/molt-installer" apply "$UPG/stage-2.0" --task 12 --build-version 2.0 \
            >>"$T/apply.out" 2>&1 ;;
    launch)
        apply_v2
        MOLT_FAULT=$point "$ROOT/bin/molt-installer" launch --supervise >>"$T/crash.log" 2>&1 ;;
    exec)
        apply_v2
        MOLT_FAULT=$point "$ROOT/bin/molt-installer" launch >>"$T/crash.log" 2>&1 ;;
    deadline)
        apply_v2
        MOLT_FAULT=$point "$ROOT/bin/molt-installer" launch --supervise >>"$T/crash.log" 2>&1 ;;
    watchdog)
        # exec mode: the agent is killed by the watchdog, which then dies at the point
        apply_v2
        MOLT_FAULT=$point "$ROOT/bin/molt-installer" launch >>"$T/crash.log" 2>&1
        wait_for 10 grep -q "point=$point" "$T/crash.log" ;;
    commit)
        apply_v2
        MOLT_FAULT=$point "$ROOT/bin/molt-installer" commit --task 12 >>"$T/crash.log" 2>&1 ;;
    manual)
        apply_v2
        MOLT_FAULT=$point "$ROOT/bin/molt-installer" rollback --reason crash >>"$T/crash.log" 2>&1 ;;
    auto)
        # the supervisor rolls back a build that exits at once, and dies midway
        apply_v2
        MOLT_FAULT=$point "$ROOT/bin/molt-installer" launch --supervise >>"$T/crash.log" 2>&1 ;;
    revert)
        apply_v2 && inst commit --task 12 >>"$T/crash.log" 2>&1
        MOLT_FAULT=$point "$ROOT/bin/molt-installer" rollback --reason crash >>"$T/crash.log" 2>&1 ;;
    esac
    echo $?
}
