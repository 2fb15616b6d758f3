#!/usr/bin/env bash
# demo.sh: `make demo`, molt's main job in one command. Starts the reference control plane on
# 127.0.0.1 (HTTPS, throwaway CA), builds and signs releases of this tree (20.1-2749, 20.2-100 and
# a broken 20.3-1), installs the first into a temporary root, runs the agent supervised, upgrades
# it through the management API and then asks for the broken build, which rolls back by itself.
# Everything lives in one temporary directory, removed at the end unless --keep. Only the builds of
# other versions are cached (DEMO_CACHE, default BUILDDIR/demo-cache), as building takes longest.
set -uo pipefail

usage() {
    cat <<'EOF'
Usage: demo.sh [--keep] [--cache DIR]
Shows molt upgrading itself: control plane, signed builds, install, upgrade 1 -> 6 -> 2,
a broken build rolled back (3), clean-up. Run through `make demo` (DEMO_ARGS=--keep).

  --keep        leave the control plane, the agent and the files in place at the end
                (the demo prints how to look at them and how to stop them)
  --cache DIR   where builds of other versions are cached (default BUILDDIR/demo-cache)
  -h, --help    show this help

Environment: MOLT_TOP_SRCDIR, MOLT_TOP_BUILDDIR (set by make), NO_COLOR, TMPDIR.
EOF
}

SRC=${MOLT_TOP_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
BUILD=${MOLT_TOP_BUILDDIR:-$PWD}
KEEP=
CACHE=${DEMO_CACHE:-}
while [ $# -gt 0 ]; do
    case "$1" in
    --keep) KEEP=1 ;;
    --cache) [ $# -ge 2 ] || { echo "demo: --cache needs a directory" >&2; exit 2; }
        CACHE=$2; shift ;;
    --cache=*) CACHE=${1#--cache=} ;;
    -h|--help) usage; exit 0 ;;
    *) echo "demo: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
CACHE=${CACHE:-$BUILD/demo-cache}

V1=20.1-2749 V2=20.2-100 VX=20.3-1
NAME=molt-demo
HB=1s TRIAL=10s STARTS=3
PY=${PYTHON3:-python3}
BUILT_VERSION=${MOLT_BUILD_VERSION:-$(sed -n 's/^#define MOLT_VERSION "\(.*\)"$/\1/p' \
    "$BUILD/config.h" 2>/dev/null)}

# Our own settings only: no configuration or faults from the caller's environment.
unset MOLT_FAULT MOLT_CONFIG
for v in $(env | sed -n 's/^\(MOLT_\(SERVER\|AGENT\|INSTALL\)_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
ulimit -c 0

# ---- output -------------------------------------------------------------------------------
TTY='' COLOR=''
[ -t 1 ] && [ "${TERM:-dumb}" != dumb ] && TTY=1
[ -n "$TTY" ] && [ -z "${NO_COLOR:-}" ] && COLOR=1
B='' D='' G='' R='' N=''
[ -n "$COLOR" ] && B=$'\e[1m' D=$'\e[2m' G=$'\e[32m' R=$'\e[31m' N=$'\e[0m'
export DEMO_TTY=$TTY DEMO_COLOR=$COLOR

now_ms() {
    local t=${EPOCHREALTIME:-}
    if [ -n "$t" ]; then t=${t//[.,]/}; echo $((t / 1000)); else date +%s%3N; fi
}
T0=$(now_ms)
since() { local d=$(($(now_ms) - ${1:-$T0})); printf '%d.%ds' $((d / 1000)) $((d % 1000 / 100)); }

STEP=0
step() { STEP=$((STEP + 1)); printf '\n%s%2d  %s%s %s\n' "$B" "$STEP" "$1" "$N" "${D}[$(since)]$N"; }
say() { printf '    %-14s %s\n' "$1" "$2"; }
more() { printf '    %-14s %s\n' "" "$1"; }
dim() { printf '%s%s%s' "$D" "$*" "$N"; }

FAILED='' INTERRUPTED=''
fail() { # fail WHAT [LOG]: one clear line, the end of the log that explains it, then stop.
    FAILED=1
    printf '\n%sdemo failed:%s %s\n' "$R" "$N" "$1" >&2
    if [ -n "${2:-}" ] && [ -s "$2" ]; then
        printf '  last lines of %s:\n' "$2" >&2
        tail -n 12 "$2" | sed 's/^/    /' >&2
    fi
    exit 1
}

# ---- clean-up ------------------------------------------------------------------------------
AGENT_PID=
WORK=
stop_agent() {
    [ -n "$AGENT_PID" ] || return 0
    kill -TERM "$AGENT_PID" 2>/dev/null
    local i
    for i in $(seq 100); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$AGENT_PID" 2>/dev/null
    wait "$AGENT_PID" 2>/dev/null
    AGENT_PID=
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$KEEP" ] && [ -z "$FAILED" ] && [ "$rc" -eq 0 ]; then
        exit 0
    fi
    stop_agent
    ! declare -F cp_stop >/dev/null || cp_stop
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        if [ -z "$INTERRUPTED" ] && { [ -n "$FAILED" ] || [ "$rc" -ne 0 ]; }; then
            echo "demo: stopped everything; files kept for a look in $WORK" >&2
        else
            chmod -R u+w "$WORK" 2>/dev/null
            rm -rf "$WORK"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'INTERRUPTED=1; echo; echo "demo: interrupted; stopping and removing everything" >&2; exit 130' INT TERM

# ---- checks ----------------------------------------------------------------------------------
for p in agent/molt-agent installer/molt-installer packaging/molt-pack; do
    [ -x "$BUILD/$p" ] || { echo "demo: $BUILD/$p is missing: run make first (or make demo)" >&2; exit 1; }
done
for t in curl openssl flock "$PY"; do
    command -v "$t" >/dev/null 2>&1 || { echo "demo: '$t' is needed and not installed" >&2; exit 1; }
done
. "$SRC/tests/e2e/lib/cp.sh"
. "$SRC/tests/e2e/lib/agent_conf.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/molt-demo-XXXXXX") || { echo "demo: mktemp failed" >&2; exit 1; }
ROOT=$WORK/root STATE=$WORK/state RUN=$WORK/run UPG=$WORK/upgrade CONF=$WORK/molt.conf
mkdir -p "$STATE" "$RUN" "$UPG" "$WORK/builds" "$WORK/keys" "$WORK/trusted"

printf '%smolt demo%s: a collector agent upgrading itself, end to end. %s\n' "$B" "$N" \
    "$(dim "\$DEMO = $WORK")"

# ---- 1. builds, keys, control plane -----------------------------------------------------------
step "Build and sign three releases; start the control plane"

build_dir() { # VERSION: sets BDIR to the build directory of this tree built as VERSION
    local v=$1 t fresh=
    BDIR=$CACHE/build-$v
    if [ "$v" = "$BUILT_VERSION" ]; then
        BDIR=$BUILD
        say "$v" "this build $(dim "($BUILD)")"
        return
    fi
    t=$(now_ms)
    if grep -qs "^#define MOLT_VERSION \"$v\"\$" "$BDIR/config.h"; then
        say "$v" "this tree built as $v $(dim "(cached in $BDIR)")"
    else
        say "$v" "building this tree as $v in $BDIR $(dim "(first run only)")"
        fresh=1
    fi
    mkdir -p "$CACHE"
    MOLT_TOP_BUILDDIR=$BUILD "$SRC/tests/e2e/build-version.sh" "$v" "$BDIR" \
        >"$WORK/build-$v.log" 2>&1 || fail "building $v" "$WORK/build-$v.log"
    [ -z "$fresh" ] || more "$(dim "built in $(since "$t")")"
}
build_dir "$V1"
B1=$BDIR
build_dir "$V2"
B2=$BDIR
say "$VX" "broken on purpose: $V2 with an agent that exits 3 at once"

PACK=$BUILD/packaging/molt-pack
"$PACK" keygen --out "$WORK/keys" >"$WORK/keygen.log" 2>&1 || fail "molt-pack keygen" "$WORK/keygen.log"
cp "$WORK/keys/"*.pub "$WORK/trusted/"
KEYID=$("$PACK" keyid "$WORK/keys/"*.pub 2>/dev/null)
printf '#!/bin/sh\necho "broken build: exiting at start" >&2\nexit 3\n' >"$WORK/broken-agent"
chmod 755 "$WORK/broken-agent"
release() { # VERSION BUILD_DIR [mkrelease args]
    local v=$1 b=$2
    shift 2
    "$SRC/packaging/mkrelease.sh" --build-dir "$b" --version "$v" --keys "$WORK/keys" \
        --out "$WORK/builds" "$@" >>"$WORK/mkrelease.log" 2>&1 || fail "signing $v" "$WORK/mkrelease.log"
}
release "$V1" "$B1"
release "$V2" "$B2"
release "$VX" "$B2" --agent "$WORK/broken-agent"
PKG1=$(ls "$WORK/builds/molt-$V1-"*.tar.gz)
PKG2=$(ls "$WORK/builds/molt-$V2-"*.tar.gz)
say "signed" "with Ed25519 key $KEYID, made just now $(dim "(private key: \$DEMO/keys)")"
more "$(dim "agents trust \$DEMO/trusted/$KEYID.pub; the control plane holds no key")"

cp_start "$WORK" --builds "$WORK/builds" --heartbeat-interval "$HB" --task-timeout 5m \
    >"$WORK/cp-start.log" 2>&1 || fail "starting the control plane" "$WORK/cp-start.log"
say "control plane" "$CP_URL $(dim "(tests/controlplane/server.py, HTTPS, throwaway CA)")"
builds=("$WORK/builds/"*.tar.gz)
more "$(dim "serves ${#builds[@]} builds; CA \$DEMO/cp/tls/ca.pem")"

# ---- 2. install and run ----------------------------------------------------------------------
step "Install $V1 and start the agent"
# shellcheck disable=SC2016 # $DEMO is the text the demo prints for its directory
agent_conf_write "$WORK" "$NAME" "$WORK/trusted" --heartbeat "$HB" --trial-timeout "$TRIAL" \
    --trial-max-starts "$STARTS" \
    --comment 'molt.conf of the demo: short heartbeat and trial, everything under $DEMO.' ||
    fail "writing the agent's configuration"
export MOLT_CONFIG=$CONF DEMO_STATE_DIR=$STATE
"$B1/installer/molt-installer" install "$PKG1" --root "$ROOT" --keys "$WORK/trusted" \
    >"$WORK/install.log" 2>&1 || fail "molt-installer install" "$WORK/install.log"
say "installed" "molt-installer install $(basename "$PKG1") $(dim "(\$DEMO/root/current -> $(readlink "$ROOT/current"))")"
"$ROOT/bin/molt-installer" launch --supervise >>"$WORK/agent.log" 2>&1 &
AGENT_PID=$!
say "started" "\$DEMO/root/bin/molt-installer launch --supervise $(dim "(pid $AGENT_PID)")"
more "$(dim "config \$DEMO/molt.conf: heartbeat every $HB, trial timeout $TRIAL, $STARTS starts")"
"$PY" "$SRC/demo/demo.py" collector "$NAME" 30 || fail "the agent did not register" "$WORK/agent.log"
CID=$(cp_collector_id "$NAME") || fail "no collector id for $NAME"

# ---- 3 and 4: upgrade tasks ------------------------------------------------------------------
# create_task VERSION: the seed document's curl sample, against our server and CA.
create_task() {
    local body="{\"collectorId\":$CID,\"toVersion\":\"$1\"}" reply
    printf '    %s\n' "$(dim '$') curl -u $CP_ACCESS_ID:$(dim '<key>') -H \"Content-Type: application/json\" -X POST \\" \
        "      -d '$body' \\" "      --cacert \$DEMO/cp/tls/ca.pem $CP_URL/api/v1/collectors/upgrades"
    reply=$(curl -sS -u "$CP_ACCESS_ID:$CP_ACCESS_KEY" -H "Content-Type: application/json" \
        -X POST -d "$body" --cacert "$CP_CA" --max-time 30 "$CP_URL/api/v1/collectors/upgrades" \
        2>"$WORK/curl.log") || fail "curl: $(cat "$WORK/curl.log")"
    printf '    %s\n' "$(dim "$reply")"
    TID=$(printf '%s' "$reply" | cp_json id 2>/dev/null) ||
        fail "the control plane did not create the task: $reply"
}

step "Upgrade to $V2 through the management API"
size=$(stat -c %s "$PKG2")
rate=$((size / 3 > 65536 ? size / 3 : 65536))
cp_fault "{\"type\": \"throttle\", \"bytesPerSecond\": $rate}" >/dev/null ||
    fail "arming the download throttle"
say "throttle" "downloads at $((rate / 1024)) KiB/s $(dim "(a fault of the control plane, so that the progress shows)")"
create_task "$V2"
"$PY" "$SRC/demo/demo.py" follow "$TID" 90
rc=$?
cp_faults_reset || true
[ "$rc" -eq 0 ] || fail "the upgrade to $V2 did not succeed" "$WORK/agent.log"
"$PY" "$SRC/demo/demo.py" heartbeating "$NAME" "$V2" 30 || fail "$V2 is not heartbeating" "$WORK/agent.log"
say "on disk" "current -> $(readlink "$ROOT/current"), previous -> $(readlink "$ROOT/previous")"
printf '    %s\n' "$(dim '$') molt-agent status  $(dim "(on the host: the agent's local API)")"
"$ROOT/current/bin/molt-agent" status 2>&1 | sed 's/^/      /'

step "Ask for the broken build $VX"
create_task "$VX"
"$PY" "$SRC/demo/demo.py" follow "$TID" 90
rc=$?
[ "$rc" -eq 3 ] || fail "the broken build did not end in 3 (rolled back)" "$WORK/agent.log"
"$PY" "$SRC/demo/demo.py" heartbeating "$NAME" "$V2" 30 ||
    fail "$V2 is not heartbeating after the rollback" "$WORK/agent.log"
say "on disk" "current -> $(readlink "$ROOT/current") again"
if [ -s "$STATE/trial-$VX.log" ]; then
    say "trial log" "\$DEMO/state/trial-$VX.log keeps what $VX printed on each start:"
    more "$(dim "$(grep -v '^#\|^---' "$STATE/trial-$VX.log" | head -n 1)")"
fi

# ---- 5. the end ------------------------------------------------------------------------------
step "Clean up"
if [ -n "$KEEP" ]; then
    say "kept" "everything runs on; the files are in $WORK"
    more "MOLT_CONFIG=$CONF $ROOT/current/bin/molt-agent status"
    more "MOLT_CONFIG=$CONF $ROOT/bin/molt-installer status"
    more "curl --netrc-file $CP_DIR/netrc --cacert $CP_CA $CP_URL/api/v1/collectors"
    more "logs: $WORK/agent.log, $CP_DIR/server.log"
    more "stop: kill $AGENT_PID $CP_PID; rm -rf $WORK"
else
    say "stopping" "the agent (supervisor pid $AGENT_PID) and the control plane (pid $CP_PID)"
    stop_agent
    cp_stop
    chmod -R u+w "$WORK" 2>/dev/null
    rm -rf "$WORK" && say "removed" "$WORK"
fi
printf '\n%sdone%s in %s: %s, then a broken build rolled back (%s).\n' "$G" "$N" "$(since)" \
    "$V1 -> $V2 (status 1 -> 6 -> 2)" "3"
