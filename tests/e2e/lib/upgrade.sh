# lib/upgrade.sh: shared by the upgrade e2e tests. Real parts only: the
# reference control plane over HTTPS on 127.0.0.1, releases of this tree built
# as several versions and signed with a key made at test time, molt-installer
# owning a temporary install root, and the agent run by `launch --supervise`.
#
# Releases are built once per build tree into $FIX (flock'd), then copied into
# each test's control plane:
#   V1 20.1-2749  this tree (the version first installed)
#   V2 20.2-100   this tree
#   V3 20.3-1     this tree, minVersion 20.2-0: from V1 it needs a hop via V2
#   VX 20.2-900   agent replaced by a script that exits 3 at once
#   VH 20.2-901   agent replaced by a script that never heartbeats
#   VA 20.2-902   built for aarch64 (offline refusal tests)
# MOLT_E2E_ARCH=aarch64 (make check-arm64, run under emulation): V1, V2 and VX
# are cross builds for that arch, kept in their own fixture, and V2 is also
# released for this host's arch (releases-native) as a mixed fleet has it.
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/cp.sh"
. "$(dirname "${BASH_SOURCE[0]}")/agent_conf.sh"
. "$(dirname "${BASH_SOURCE[0]}")/wait.sh"

V1=20.1-2749 V2=20.2-100 V3=20.3-1 VX=20.2-900 VH=20.2-901 VA=20.2-902
E2E_ARCH=${MOLT_E2E_ARCH:-}
FIX="$MOLT_TOP_BUILDDIR/tests/e2e/fixture${E2E_ARCH:+-$E2E_ARCH}"
PY=${PYTHON3:-python3}
ulimit -c 0
unset MOLT_FAULT MOLT_CONFIG
for v in $(env | sed -n 's/^\(MOLT_\(SERVER\|AGENT\|INSTALL\)_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done

fix__build() { # VERSION -> build dir
    local v=$1 dir
    if [ "$v" = "$MOLT_BUILD_VERSION" ] && [ -z "$E2E_ARCH" ]; then
        echo "$MOLT_TOP_BUILDDIR"
        return
    fi
    dir="$FIX/build-$v"
    MOLT_BUILD_HOST=${E2E_ARCH:+$E2E_ARCH-linux-gnu} \
        "$MOLT_TOP_SRCDIR/tests/e2e/build-version.sh" "$v" "$dir" >"$FIX/build-$v.log" 2>&1 ||
        { cat "$FIX/build-$v.log" >&2; return 1; }
    echo "$dir"
}

fix__release() { # VERSION BUILD_VERSION [mkrelease args...]
    local v=$1 bv=$2 b sig
    shift 2
    b=$(fix__build "$bv") || return 1
    # Reuse a release only while it is newer than the binaries it packs.
    sig=$(ls "$FIX/releases/molt-$v-"*.sig 2>/dev/null | head -n 1)
    if [ -n "$sig" ] && [ "$sig" -nt "$b/agent/molt-agent" ] &&
       [ "$sig" -nt "$b/agent/molt-worker" ] && [ "$sig" -nt "$b/installer/molt-installer" ]; then
        return 0
    fi
    rm -f "$FIX/releases/molt-$v-"*
    "$MOLT_TOP_SRCDIR/packaging/mkrelease.sh" --build-dir "$b" --version "$v" \
        --keys "$FIX/keys" --out "$FIX/releases" "$@" >/dev/null
}

# fixture_prepare: keys and every release; safe to call from parallel tests.
fixture_prepare() {
    mkdir -p "$FIX"
    (
        flock 8
        set -e
        if ! ls "$FIX/keys/"*.key >/dev/null 2>&1; then
            rm -rf "$FIX/keys" "$FIX/releases"
            mkdir -p "$FIX/keys"
            "$MOLT_TOP_BUILDDIR/packaging/molt-pack" keygen --out "$FIX/keys" >/dev/null
        fi
        mkdir -p "$FIX/trusted" "$FIX/scripts"
        cp "$FIX/keys/"*.pub "$FIX/trusted/"
        printf '#!/bin/sh\necho "broken build: exiting at start" >&2\nexit 3\n' >"$FIX/scripts/exit3"
        printf '#!/bin/sh\necho "broken build: never heartbeats" >&2\nexec sleep 3600\n' \
            >"$FIX/scripts/hang"
        chmod 755 "$FIX/scripts/"*
        fix__release "$V1" "$V1"
        fix__release "$V2" "$V2"
        fix__release "$VX" "$V1" --agent "$FIX/scripts/exit3"
        if [ -n "$E2E_ARCH" ]; then
            rm -rf "$FIX/releases-native"
            "$MOLT_TOP_SRCDIR/packaging/mkrelease.sh" --build-dir "$MOLT_TOP_BUILDDIR" \
                --version "$V2" --keys "$FIX/keys" --out "$FIX/releases-native" \
                --channel "$FIX/releases/stable.channel.json" >/dev/null 2>&1
            exit 0    # the other builds are not needed there
        fi
        fix__release "$V3" "$V3" --min-version 20.2-0
        fix__release "$VH" "$V1" --agent "$FIX/scripts/hang"
        fix__release "$VA" "$V1" --arch aarch64
    ) 8>"$FIX.lock"
}

# pkg_of VERSION [DIR]: the package of a release in FIX/DIR (default releases).
pkg_of() { ls "$FIX/${2:-releases}/molt-$1-"*.tar.* | grep -v '\.sig$\|\.statement\.json$' | head -n 1; }

# local_api METHOD PATH [JSON]: the agent's local API; prints the envelope.
local_api() {
    if [ $# -ge 3 ]; then
        curl -sS --unix-socket "$RUN/agent.sock" -X "$1" -H "Content-Type: application/json" \
            --data-binary "$3" "http://localhost$2"
    else
        curl -sS --unix-socket "$RUN/agent.sock" -X "$1" "http://localhost$2"
    fi
}

# publish VERSION[:DIR]...: make releases (of FIX/DIR) available on the control plane,
# with the fixture's release channel (mkrelease.sh lists every release in FIX/releases'
# stable.channel.json, signed with the fixture's key).
publish() {
    (
        # Under the fixture's lock: a parallel test may be re-making a release.
        flock 8
        local v p dir
        for v in "$@"; do
            dir=releases
            case $v in *:*) dir=${v#*:} v=${v%%:*} ;; esac
            p=$(pkg_of "$v" "$dir")
            cp "$p" "$p.statement.json" "$p.sig" "$CP_BUILDS/"
        done
        cp "$FIX/releases/stable.channel.json" "$FIX/releases/stable.channel.json.sig" "$CP_BUILDS/"
    ) 8>"$FIX.lock"
}

AGENT_PID=
env_cleanup() {
    agent_stop
    cp_stop
    if [ -n "${MOLT_TEST_KEEP:-}" ]; then echo "# kept $WORK"; return; fi
    [ -n "${WORK:-}" ] && { chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"; }
}

# env_start NAME (HB sets the heartbeat interval): control plane, install root with V1, config.
env_start() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/molt-e2e-$1-XXXXXX")
    trap env_cleanup EXIT
    fixture_prepare || { echo "Bail out! fixture"; exit 1; }
    cp_start "$WORK" --heartbeat-interval "${HB:-1s}" --rate-limit 0 --task-timeout "${CP_TASK_TIMEOUT:-30m}" >/dev/null || { echo "Bail out! control plane"; exit 1; }
    # shellcheck disable=SC2034 # UPG is for the tests
    ROOT=$WORK/root STATE=$WORK/state RUN=$WORK/run UPG=$WORK/upgrade
    NAME="e2e-$1-$$"
    agent_conf_write "$WORK" "$NAME" "$FIX/trusted" --heartbeat "${HB:-1s}" \
        --trial-timeout "${TRIAL_TIMEOUT:-10s}" --log-level debug ||
        { echo "Bail out! agent configuration"; exit 1; }
    export MOLT_CONFIG=$WORK/molt.conf
    FIX_INSTALLER=$MOLT_TOP_BUILDDIR/installer/molt-installer    # of the arch under test
    [ -z "$E2E_ARCH" ] || FIX_INSTALLER=$FIX/build-$V1/installer/molt-installer
    (
        flock 8
        "$FIX_INSTALLER" install "$(pkg_of "$V1")" --root "$ROOT" \
            --keys "$FIX/trusted" >"$WORK/install.log" 2>&1
    ) 8>"$FIX.lock" || { cat "$WORK/install.log"; echo "Bail out! install"; exit 1; }
}

# agent_start: the launcher under a loop that restarts it when it dies, as the
# service manager (Restart=always) does on a real host.
agent_start() {
    rm -f "$WORK/stop-service"
    (
        while :; do
            "$ROOT/bin/molt-installer" launch --supervise
            [ -e "$WORK/stop-service" ] && break
            sleep 0.2
        done
    ) >>"$WORK/agent.log" 2>&1 &
    AGENT_PID=$!
}

agent_stop() {
    [ -n "${AGENT_PID:-}" ] || return 0
    : >"$WORK/stop-service"
    pkill -TERM -f "$ROOT/bin/molt-installer launch" 2>/dev/null
    local i
    for i in $(seq 100); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$AGENT_PID" 2>/dev/null
    pkill -KILL -f "$ROOT/" 2>/dev/null
    wait "$AGENT_PID" 2>/dev/null
    AGENT_PID=
}

collector_field() { # FIELD: of our collector
    cp_api GET "/collectors/name/$NAME" >/dev/null 2>&1 || return 1
    [ "$CP_HTTP_STATUS" = 200 ] || return 1
    printf '%s' "$CP_BODY" | cp_json "collector.$1"
}

registered() { CID=$(collector_field id) && [ -n "$CID" ]; }
running_version() { collector_field collectorVersion; }
version_is() { [ "$(running_version 2>/dev/null)" = "$1" ]; }
current_link() { readlink "$ROOT/current" | sed 's|^versions/||'; }

# start_partial_download CUR: a throttled task from the running version CUR to
# the other build, waited on until more than 150000 bytes of its package are in
# the upgrade dir (a download caught midway); sets want, size and tid.
start_partial_download() {
    [ "$1" = "$V1" ] && want=$V2 || want=$V1
    size=$(stat -c %s "$(pkg_of "$want")")
    cp_fault '{"type": "throttle", "bytesPerSecond": 131072}' >/dev/null
    tid=$(cp_create_task "$CID" "$want")
    wait_for 60 partial_download
}
partial_download() { [ "$(stat -c %s "$UPG/task-$tid/package" 2>/dev/null || echo 0)" -gt 150000 ]; }

# task_statuses TASK: the distinct statuses the control plane recorded, in order.
task_statuses() {
    cp_task_events "$1" | "$PY" -c '
import json, sys
seen = []
for e in json.load(sys.stdin).get("events", []):
    s = e.get("status")
    if s is not None and (not seen or seen[-1] != s):
        seen.append(s)
print(" ".join(str(s) for s in seen))'
}

# task_stages TASK: the stages the control plane heard of, in the order each was
# first reported. A heartbeat sent just before a stage began may arrive after the
# next stage's report: such a late echo of an earlier stage is not a new stage.
task_stages() {
    cp_task_events "$1" | "$PY" -c '
import json, sys
seen = []
for e in json.load(sys.stdin).get("events", []):
    s = e.get("stage")
    if s and s not in seen:
        seen.append(s)
print(" ".join(seen))'
}

# agent_pid: the running molt-agent of this test's install root.
agent_pid() {
    local p
    for p in $(pgrep -x molt-agent); do
        case $(readlink "/proc/$p/exe" 2>/dev/null) in
        "$ROOT"/*) echo "$p"; return 0 ;;
        esac
    done
    return 1
}

# switches TASK: how many switches the installer journaled for the task (one
# outcome, committed or rolled back, per switch).
switches() {
    "$PY" -c '
import json, sys
j = json.load(open(sys.argv[1]))
print(sum(1 for o in j.get("outcomes", []) if o.get("taskId") == sys.argv[2]))' \
        "$STATE/journal.json" "$1"
}

show_log() { tail -n "${1:-40}" "$WORK/agent.log" | sed 's/^/#   /'; }
