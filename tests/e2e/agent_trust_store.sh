# agent_trust_store.sh: without server.ca_file the agent trusts the system's
# CAs through libcurl's hashed directory (/etc/ssl/certs on Debian), not the
# bundle, which costs every connection all its CAs parsed (lib/http.c,
# system_trust); a directory with no hashed CA keeps the bundle, and a server
# neither trusts is refused. Each agent runs in a mount namespace of its own
# over a /etc/ssl/certs made here; the host's is never touched. Root only.
set -u
. "$(dirname "$0")/lib/agent.sh"

if [ "$(id -u)" != 0 ] || ! unshare --mount --propagation private true 2>/dev/null; then
    echo "1..0 # SKIP needs root and unshare --mount (a private /etc/ssl/certs)"
    exit 0
fi
tap_plan 7
cp_start "$W" --heartbeat-interval 300ms || { echo "Bail out! control plane"; exit 1; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/other.key" \
    -out "$W/other-ca.pem" -days 2 -subj "/CN=some other CA" >/dev/null 2>&1

# store NAME MODE CA: $W/NAME.certs as /etc/ssl/certs holding CA hashed (dir), as
# the bundle (bundle), or both.
store() {
    local d="$W/$1.certs"
    mkdir -p "$d"
    cp "$3" "$d/ca.pem"
    case $2 in
    dir | both) ln -s ca.pem "$d/$(openssl x509 -hash -noout -in "$3").0" ;;
    esac
    case $2 in
    bundle | both) cp "$3" "$d/ca-certificates.crt" ;;
    esac
}

# start_in_store NAME: agent NAME, with no ca_file, over $W/NAME.certs.
start_in_store() {
    agent_config "$1"
    sed -i '/^ca_file = /d' "$W/$1/molt.conf"
    unshare --mount --propagation private sh -c 'mount --bind "$1" /etc/ssl/certs && shift && exec "$@"' \
        sh "$W/$1.certs" "$AGENT_BIN" --config "$W/$1/molt.conf" run >>"$W/$1/agent.log" 2>&1 &
    AGENT_PID=$!
    AGENT_PIDS+=("$AGENT_PID")
    AGENT_NAMES+=("$1")
}

# The hashed directory alone: libcurl's defaults fail here, for want of the bundle.
store dir dir "$CP_CA"
start_in_store dir
wait_for 20 registered dir
ok $? "no ca_file, the CA only in the hashed directory: the agent registers"
cid=$(cp_collector_id dir)
heartbeat_again
ok $? "and heartbeats"
log_has dir 'failed error=.*(SSL|certificate)'
ok $((!$?)) "with no TLS failure on the way"
agent_stop "$AGENT_PID"

# A directory with no hashed CA in it keeps the bundle.
store bundle bundle "$CP_CA"
start_in_store bundle
wait_for 20 registered bundle
ok $? "no hashed CA in the directory: the bundle is used, and the agent registers"
agent_stop "$AGENT_PID"

# Neither trusts the server: refused, and the log says the system's CAs were asked.
store other both "$W/other-ca.pem"
start_in_store other
wait_for 20 log_has other 'register.failed error=.*certificate'
ok $? "a system store without the server's CA: the certificate is refused"
log_has other "server.ca_file is unset: the system's CAs verify the server"
ok $? "and the message says the system's CAs were used"
registered other
ok $((!$?)) "nothing was registered"
tap_done
