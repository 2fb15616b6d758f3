# shellcheck shell=bash
# agent_conf.sh: the molt.conf of an agent installed by molt-installer into a scratch
# directory, shared by the upgrade e2e tests (lib/upgrade.sh), the demo (demo/demo.sh) and the
# benchmarks (bench/lib.sh), so that all three run the agent with the same settings. Sourced
# after tests/e2e/lib/cp.sh: the [server] section is the running control plane's (cp_start).

# agent_conf_write DIR NAME KEYS_DIR [--heartbeat T] [--trial-timeout T] [--trial-max-starts N]
#                  [--log-level L] [--comment TEXT] [--startup-jitter T] [--download-max-rate R]
# Writes DIR/molt.conf (0600: it holds the access key) for the agent NAME trusting the keys in
# KEYS_DIR, whose install root is DIR/root and whose state, run and upgrade directories and
# machine-id file are under DIR (made here; an existing machine id is kept). Defaults: heartbeat
# 1s, trial timeout 10s, 3 trial starts, the agent's own log level, no comment line, no start-up
# jitter (tests, the demo and the benchmarks time what follows a start; the agent's default of
# 30 s is for fleets) and no download rate cap.
agent_conf_write() {
    local d=$1 name=$2 keys=$3 hb=1s trial=10s starts=3 level='' comment='' jitter=0 rate=0
    shift 3
    while [ $# -gt 0 ]; do
        [ $# -ge 2 ] || { echo "agent_conf_write: $1 needs a value" >&2; return 2; }
        case "$1" in
        --heartbeat) hb=$2 ;;
        --trial-timeout) trial=$2 ;;
        --trial-max-starts) starts=$2 ;;
        --log-level) level=$2 ;;
        --comment) comment=$2 ;;
        --startup-jitter) jitter=$2 ;;
        --download-max-rate) rate=$2 ;;
        *) echo "agent_conf_write: unknown option $1" >&2; return 2 ;;
        esac
        shift 2
    done
    mkdir -p "$d/state" "$d/run" "$d/upgrade" || return
    [ -s "$d/machine-id" ] || od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$d/machine-id" ||
        return
    [ -z "$comment" ] || comment="# $comment"$'\n'
    [ -z "$level" ] || level="log_level = $level"$'\n'
    # Made 0600 while still empty: the access key is never readable by others.
    : >"$d/molt.conf" && chmod 600 "$d/molt.conf" || return
    cat >"$d/molt.conf" <<CONF
${comment}[server]
url = $CP_URL
ca_file = $CP_CA
access_id = $CP_ACCESS_ID
access_key = $CP_ACCESS_KEY
[agent]
name = $name
state_dir = $d/state
run_dir = $d/run
upgrade_dir = $d/upgrade
keys_dir = $keys
machine_id_file = $d/machine-id
heartbeat_interval = $hb
backoff_max = 2s
startup_jitter = $jitter
download_max_rate = $rate
${level}[install]
root = $d/root
trial_timeout = $trial
trial_max_starts = $starts
CONF
}
