# bench/lib.sh: shared by the benchmark figures (bench/fig-*.sh, run by bench/run.sh).
# Real parts only, as in the upgrade e2e tests: the reference control plane over HTTPS on
# 127.0.0.1, signed releases of this tree built as two versions, molt-installer owning
# a temporary install root, the agent run by `molt-installer launch --supervise`.
#
# Environment (set by bench/run.sh): MOLT_TOP_SRCDIR, MOLT_TOP_BUILDDIR, MOLT_BUILD_VERSION,
# PYTHON3, BENCH_WORK (this run's scratch directory, removed at the end), BENCH_CACHE (builds
# and small releases kept between runs), BENCH_RESULTS (JSON lines, one per figure).
# Processes are stopped by the pids this file recorded, never by name.
set -u
. "$MOLT_TOP_SRCDIR/tests/e2e/lib/cp.sh"
. "$MOLT_TOP_SRCDIR/tests/e2e/lib/agent_conf.sh"
. "$MOLT_TOP_SRCDIR/tests/e2e/lib/wait.sh"

PY=${PYTHON3:-python3}
BPY() { "$PY" "$MOLT_TOP_SRCDIR/bench/bench.py" "$@"; }
V1=$MOLT_BUILD_VERSION
V2=20.2-100
[ "$V1" = "$V2" ] && V2=20.2-101
INSTALLER="$MOLT_TOP_BUILDDIR/installer/molt-installer"
ulimit -c 0
unset MOLT_FAULT MOLT_CONFIG
for v in $(env | sed -n 's/^\(MOLT_\(SERVER\|AGENT\|INSTALL\)_[A-Z_]*\)=.*/\1/p'); do
    unset "$v" # configuration overrides of the caller's environment would skew the figures
done

say() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { say "error: $*"; exit 1; }
now_ms() { date +%s%3N; }

# record_missing ID TITLE REASON: a figure that could not be measured still gets its row.
record_missing() {
    BPY record --results "$BENCH_RESULTS" "$("$PY" -c '
import json, sys
print(json.dumps({"id": sys.argv[1], "figure": sys.argv[2], "value": None, "unit": "",
                  "goal": None, "op": "<=", "goalText": sys.argv[4], "baseline": None,
                  "met": None, "details": {}, "missing": sys.argv[3]}))' "$1" "$2" "$3" "${4:-}")"
}

# ---- builds and releases -------------------------------------------------------------

build_of() { # VERSION -> a build directory whose programs report VERSION
    if [ "$1" = "$MOLT_BUILD_VERSION" ]; then
        echo "$MOLT_TOP_BUILDDIR"
        return
    fi
    "$MOLT_TOP_SRCDIR/tests/e2e/build-version.sh" "$1" "$BENCH_CACHE/build-$1" \
        >"$BENCH_CACHE/build-$1.log" 2>&1 || { cat "$BENCH_CACHE/build-$1.log" >&2; return 1; }
    echo "$BENCH_CACHE/build-$1"
}

# keys: the signing key agents trust, and one they do not (pickup tasks fail at preflight).
bench_keys() {
    local k
    for k in keys untrusted; do
        ls "$BENCH_CACHE/$k/"*.key >/dev/null 2>&1 && continue
        rm -rf "${BENCH_CACHE:?}/$k"
        mkdir -p "$BENCH_CACHE/$k"
        "$MOLT_TOP_BUILDDIR/packaging/molt-pack" keygen --out "$BENCH_CACHE/$k" >/dev/null ||
            return 1
    done
    mkdir -p "$BENCH_CACHE/trusted"
    cp "$BENCH_CACHE/keys/"*.pub "$BENCH_CACHE/trusted/"
    TRUSTED=$BENCH_CACHE/trusted
}

# release OUTDIR VERSION [KEYDIR [mkrelease args...]]: a signed release in OUTDIR (reused while
# newer than the programs it packs; OUTDIR names what the arguments make); prints the package
# path. KEYDIR "" is the trusted key.
release() {
    local out=$1 v=$2 keys=${3:-} b sig
    shift $(($# < 3 ? $# : 3))
    keys=${keys:-$BENCH_CACHE/keys}
    b=$(build_of "$v") || return 1
    sig=$(ls "$out/molt-$v-"*.sig 2>/dev/null | head -n 1)
    if [ -z "$sig" ] || [ ! "$sig" -nt "$b/agent/molt-agent" ] ||
       [ ! "$sig" -nt "$b/agent/molt-worker" ] || [ ! "$sig" -nt "$b/installer/molt-installer" ]; then
        rm -rf "$out"
        mkdir -p "$out"
        "$MOLT_TOP_SRCDIR/packaging/mkrelease.sh" --build-dir "$b" --version "$v" \
            --keys "$keys" --out "$out" "$@" >/dev/null || return 1
    fi
    pkg_in "$out"
}

pkg_in() { ls "$1"/molt-*.tar.* | grep -v '\.sig$\|\.statement\.json$' | head -n 1; }

# publish PACKAGE...: onto the running control plane (hard links where it can: big
# packages), each listed in the control plane's release channel, signed with the trusted key.
publish() {
    local p f ch=$CP_BUILDS/stable.channel.json
    local pack=$MOLT_TOP_BUILDDIR/packaging/molt-pack
    [ -e "$ch" ] || "$pack" channel create --quiet --name stable "$ch" || return 1
    for p in "$@"; do
        for f in "$p" "$p.statement.json" "$p.sig"; do
            ln -f "$f" "$CP_BUILDS/" 2>/dev/null || cp "$f" "$CP_BUILDS/" || return 1
        done
        "$pack" channel add --quiet "$ch" "$p.statement.json" || return 1
    done
    "$pack" channel sign --quiet --key "$(ls "$BENCH_CACHE/keys/"*.key)" "$ch"
}

file_mib() { # FILE: its size in MiB, one decimal
    "$PY" -c 'import os, sys; print(round(os.path.getsize(sys.argv[1]) / 2**20, 1))' "$1"
}

# ---- environments: one control plane, install roots, agents --------------------------

# env_new NAME [server args...]: a control plane (HB_MS heartbeat interval) in $BENCH_WORK/NAME.
env_new() {
    E=$BENCH_WORK/$1
    shift
    mkdir -p "$E"
    cp_start "$E" --heartbeat-interval "${HB_MS:-1000}ms" --rate-limit 0 "$@" >/dev/null ||
        die "control plane did not start"
}

# root_conf DIR NAME: configuration of one agent whose install root, state and upgrade
# directories are under DIR (DOWNLOAD_MAX_RATE: its agent.download_max_rate, default 0).
root_conf() {
    agent_conf_write "$1" "$2" "$TRUSTED" --heartbeat "${HB_MS:-1000}ms" \
        --trial-timeout "${TRIAL_TIMEOUT:-30s}" --log-level "${BENCH_LOG_LEVEL:-info}" \
        --download-max-rate "${DOWNLOAD_MAX_RATE:-0}"
}

# root_install DIR PACKAGE: molt-installer install (verifies, stages, switches).
root_install() {
    "$INSTALLER" install "$2" --config "$1/molt.conf" --keys "$TRUSTED" >"$1/install.log" 2>&1 ||
        { cat "$1/install.log" >&2; return 1; }
}

# agent_start DIR: the launcher, which restarts the agent on exit 75; sets SUP_PID.
agent_start() {
    "$1/root/bin/molt-installer" launch --supervise --config "$1/molt.conf" \
        >>"$1/agent.log" 2>&1 </dev/null &
    SUP_PID=$!
}

# agent_of SUPERVISOR_PID [TIMEOUT_S]: the pid of its molt-agent child.
agent_of() {
    local end=$((SECONDS + ${2:-30})) p
    while [ "$SECONDS" -le "$end" ]; do
        p=$(pgrep -P "$1" -x molt-agent | head -n 1)
        [ -n "$p" ] && { echo "$p"; return 0; }
        sleep 0.05
    done
    return 1
}

# stop_pids PID...: SIGTERM (the supervisor stops its agent), SIGKILL after 10 s.
stop_pids() {
    local p i alive
    [ $# -gt 0 ] || return 0
    kill -TERM "$@" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
        alive=0
        for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1 && break; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    kill -KILL "$@" 2>/dev/null
    for p in "$@"; do wait "$p" 2>/dev/null; done
    return 0
}

# collector_of NAME [TIMEOUT_S]: its id once registered.
collector_of() {
    local end=$((SECONDS + ${2:-30})) id
    while [ "$SECONDS" -le "$end" ]; do
        id=$(cp_collector_id "$1" 2>/dev/null) && [ -n "$id" ] && { echo "$id"; return 0; }
        sleep 0.1
    done
    return 1
}

# version_of NAME: the collectorVersion the control plane last heard.
version_of() {
    cp_api GET "/collectors/name/$1" 2>/dev/null | cp_json collector.collectorVersion 2>/dev/null
}

# version_is NAME VERSION: the control plane last heard VERSION from NAME.
version_is() { [ "$(version_of "$1")" = "$2" ]; }

# wait_version NAME VERSION TIMEOUT_S
wait_version() { wait_for "$3" version_is "$1" "$2"; }

SUP_PIDS=()
env_end() {
    stop_pids ${SUP_PIDS[@]+"${SUP_PIDS[@]}"}
    SUP_PIDS=()
    cp_stop
    if [ -n "${BENCH_KEEP:-}" ]; then say "kept $E"; return 0; fi
    [ -n "${E:-}" ] && { chmod -R u+w "$E" 2>/dev/null; rm -rf "$E"; }
    return 0
}

# one_agent NAME: an install root with V1 under $E/a, its agent started; sets A (the dir),
# SUP_PID, AGENT_PID, CID.
one_agent() {
    A=$E/a
    root_conf "$A" "$1"
    root_install "$A" "$(release "$BENCH_CACHE/rel/v1" "$V1")" || die "install of $V1 failed"
    agent_start "$A"
    SUP_PIDS+=("$SUP_PID")
    AGENT_PID=$(agent_of "$SUP_PID") || die "no agent started (log: $A/agent.log)"
    CID=$(collector_of "$1") || die "agent did not register (log: $A/agent.log)"
}
