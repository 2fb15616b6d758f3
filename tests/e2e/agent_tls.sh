# agent_tls.sh: transport security of the agent: TLS verification is always on
# (unknown CA, wrong host and expired certificates are refused, and the agent
# recovers once the server is right), plain http is refused outside loopback
# test mode, and a proxy is used from the configuration or from https_proxy.
set -u
. "$(dirname "$0")/lib/agent.sh"

tap_plan 16
cp_start "$W" --heartbeat-interval 300ms || { echo "Bail out! control plane"; exit 1; }

# A CA of our own that signed nothing the server uses.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/other.key" \
    -out "$W/other-ca.pem" -days 2 -subj "/CN=some other CA" >/dev/null 2>&1

agent_config tls
sed -i "s|^ca_file = .*|ca_file = $W/other-ca.pem|" "$W/tls/molt.conf"
agent_start tls
pid=$AGENT_PID
wait_for 20 log_has tls 'register.failed error=.*(certificate|SSL)'
ok $? "a server certificate from an unknown CA is refused"
log_has tls "register.failed error=.*\(server.ca_file = $W/other-ca.pem\)"
ok $? "the message names the setting next to libcurl's text"
kill -0 "$pid"
ok $? "the agent keeps running and retrying"
registered tls
ok $((!$?)) "nothing was registered"
agent_stop "$pid"

# The right CA: registration works; then the server's certificate goes bad and good again.
agent_up tls
ok $? "with the right CA the agent registers"
# bad_cert KIND REGEX: the server serves a KIND certificate until the agent's log shows
# a heartbeat refused for REGEX; then a good one, until the agent heartbeats again.
bad_cert() {
    cp_restart_with_cert "$1" >/dev/null 2>&1
    wait_for 30 log_has tls "heartbeat.failed error=.*$2"
    ok $? "a $1 server certificate is refused, and the log says why"
    cp_restart_with_cert good >/dev/null 2>&1
    heartbeat_again
    ok $? "heartbeats resume once the certificate is good again"
}
bad_cert wrong-host "(no alternative certificate subject name|does not match)"
bad_cert expired "certificate has expired"
agent_stop "$pid"

# Plain http is a configuration error, except to loopback in explicit test mode.
agent_config http
sed -i "s|^url = https://|url = http://|" "$W/http/molt.conf"
"$AGENT_BIN" --config "$W/http/molt.conf" run >"$W/http.out" 2>&1
is "$?" 1 "an http:// server URL is refused"
like "$(cat "$W/http.out")" "allow_insecure_http" "and the message says how tests may allow it"
sed -i "s|^url = http://127.0.0.1|url = http://10.1.2.3|; s|^\\[agent\\]|allow_insecure_http = true\\n[agent]|" \
    "$W/http/molt.conf"
"$AGENT_BIN" --config "$W/http/molt.conf" run >"$W/http.out" 2>&1
is "$?" 1 "allow_insecure_http does not allow http:// to another host"

# A CONNECT proxy that logs what it tunnels.
"$CP_PY" "$MOLT_TOP_SRCDIR/tests/e2e/lib/connect_proxy.py" "$W/proxy.log" >"$W/proxy.port" &
AGENT_PIDS+=("$!")
wait_for 10 test -s "$W/proxy.port"
pport=$(head -n 1 "$W/proxy.port")

agent_config viaconf
sed -i "s|^\\[agent\\]|proxy = http://127.0.0.1:$pport\\n[agent]|" "$W/viaconf/molt.conf"
agent_start viaconf no_proxy= NO_PROXY=
wait_for 20 registered viaconf
ok $? "with server.proxy the agent registers"
like "$(cat "$W/proxy.log")" "^CONNECT 127.0.0.1:$CP_PORT " "through the configured proxy"
agent_stop "$AGENT_PID"

: >"$W/proxy.log"
agent_config viaenv
agent_start viaenv no_proxy= NO_PROXY= https_proxy="http://127.0.0.1:$pport"
wait_for 20 registered viaenv
ok $? "with https_proxy in the environment the agent registers"
like "$(cat "$W/proxy.log")" "^CONNECT 127.0.0.1:$CP_PORT " "through that proxy"
tap_done
