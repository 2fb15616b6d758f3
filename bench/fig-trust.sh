#!/usr/bin/env bash
# fig-trust.sh: idle memory of molt-agent trusting the system's CAs (no server.ca_file), as
# most hosts run it. Two agents side by side, BENCH_TRUST_HEARTBEATS heartbeats (300) each at
# BENCH_HB_MS (100 ms): one as molt runs, through libcurl's hashed directory (lib/http.c,
# system_trust), one as libcurl's defaults would, with ca_file = the bundle (every CA in it
# parsed for the connection). The store is a copy of this host's /etc/ssl/certs with the
# control plane's CA added, bound over /etc/ssl/certs in a mount namespace of the figure's own:
# root only; elsewhere the rows are missing, with the reason.
. "$(dirname "$0")/lib.sh"

N=${BENCH_TRUST_HEARTBEATS:-300}
HB_MS=${BENCH_HB_MS:-100}
T_RSS="idle RSS of molt-agent with the system's CAs, read through the hashed directory"
T_PD="idle private dirty of molt-agent with the system's CAs, read through the hashed directory"
GOAL="<= the bundle's - 0.5 MiB"

if [ "${1:-}" != --in-namespace ]; then
    why=
    [ "$(id -u)" = 0 ] || why="needs root (a mount namespace over /etc/ssl/certs)"
    [ -n "$why" ] || [ -s /etc/ssl/certs/ca-certificates.crt ] ||
        why="no system CA bundle (/etc/ssl/certs/ca-certificates.crt: install ca-certificates)"
    [ -n "$why" ] || unshare --mount --propagation private true 2>/dev/null ||
        why="unshare --mount failed"
    if [ -n "$why" ]; then
        record_missing trust_idle_rss "$T_RSS" "$why" "$GOAL"
        record_missing trust_idle_private_dirty "$T_PD" "$why" "$GOAL"
        exit 0
    fi
    exec unshare --mount --propagation private bash "$0" --in-namespace
fi

bench_keys || die "keys"
env_new trust
trap env_end EXIT
store=$E/certs
mkdir -p "$store"
cp -L /etc/ssl/certs/* "$store/" 2>/dev/null
cp "$CP_CA" "$store/molt-bench-ca.pem"
ln -sf molt-bench-ca.pem "$store/$(openssl x509 -hash -noout -in "$CP_CA").0"
cat "$CP_CA" >>"$store/ca-certificates.crt"
mount --bind "$store" /etc/ssl/certs || die "cannot bind $store over /etc/ssl/certs"
ncas=$(grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt)
say "trust: $ncas CAs in the bundle, $(find /etc/ssl/certs -name '*.[0-9]' | wc -l) hashed"

# trust_agent NAME CA_FILE_LINE: an agent of the figure; sets PIDS[NAME].
declare -A PIDS
trust_agent() {
    local d=$E/$1
    root_conf "$d" "$1"
    sed -i "s|^ca_file = .*|$2|" "$d/molt.conf"
    root_install "$d" "$(release "$BENCH_CACHE/rel/v1" "$V1")" || die "install of $V1 failed"
    agent_start "$d"
    SUP_PIDS+=("$SUP_PID")
    PIDS[$1]=$(agent_of "$SUP_PID") || die "no agent started (log: $d/agent.log)"
}
trust_agent bench-trust-dir ""
trust_agent bench-trust-bundle "ca_file = /etc/ssl/certs/ca-certificates.crt"
for n in bench-trust-dir bench-trust-bundle; do
    collector_of "$n" >/dev/null || die "$n did not register (log: $E/$n/agent.log)"
done
sleep "$(awk -v n="$N" -v ms="$HB_MS" 'BEGIN { print n * ms / 1000 }')"
BPY trust --results "$BENCH_RESULTS" --dir-pid "${PIDS[bench-trust-dir]}" \
    --bundle-pid "${PIDS[bench-trust-bundle]}" --cas "$ncas" --heartbeats "$N"
