# agent_checkconf.sh: `molt-agent check-config` on good and bad configurations
# (exit 0/1, one line per check naming the setting), and the agent itself
# cutting a server.url ending in /api/v1/ back to its base as check-config says.
set -u
. "$(dirname "$0")/lib/agent.sh"

tap_plan 28
cp_start "$W" || { echo "Bail out! control plane"; exit 1; }
PACK="$MOLT_TOP_BUILDDIR/packaging/molt-pack"
"$PACK" keygen --out "$W/keys" >/dev/null || { echo "Bail out! keygen"; exit 1; }
rm -f "$W"/keys/*.key
mkdir -p "$W/root/versions"

# conf NAME [LINE...]: agent_config NAME with the keys and the install root, then LINE...
# (into [agent]); check NAME [ARG...]: runs check-config; out and rc.
conf() {
    local n=$1
    shift
    agent_config "$n" "keys_dir = $W/keys" "$@"
    printf '[install]\nroot = %s/root\n' "$W" >>"$W/$n/molt.conf"
}
check() {
    local n=$1
    shift
    out=$("$AGENT_BIN" --config "$W/$n/molt.conf" check-config "$@" 2>&1)
    rc=$?
}

conf good
check good --user "$(id -un)"
is "$rc" 0 "a good configuration: exit 0"
like "$out" "is usable" "it says so"
like "$out" "ok: agent.keys_dir = $W/keys: 1 trusted key" "it counts the trusted key"
like "$out" "ok: agent.upgrade_dir = $W/root/upgrade: a staged build can be renamed" \
    "the rename into the install root was tried"
[ ! -e "$W/root/upgrade" ] && [ -z "$(ls -A "$W/root/versions")" ]
ok $? "the check leaves nothing behind (no upgrade_dir made, no probe left)"

out=$("$AGENT_BIN" check-config --help)
like "$out" "^Usage: molt-agent \[--config FILE\] check-config" "check-config --help: its own usage"

conf ca
# The server URL: a trailing /api/v1/ is cut back, a query refused.
sed -i "s|^url = .*|url = $CP_URL/api/v1/|" "$W/good/molt.conf"
check good
is "$rc" 0 "url ending in /api/v1/: still usable"
like "$out" "ok: server.url = $CP_URL\$" "it is cut back to the base URL"
like "$out" "config.url_normalised" "with a warning"
agent_start good
wait_for 20 registered good
ok $? "the agent with that url registers (the same rule), no 404 loop"
gid=$(cp_collector_id good)
is "$(collector_field "$gid" category)" null "an unset category is null in the management API, not \"\""
is "$(collector_field "$gid" description)" null "an unset description too"
agent_stop "$AGENT_PID"
sed -i "s|^url = .*|url = $CP_URL/?x=1|" "$W/good/molt.conf"
check good
is "$rc" 1 "url with a query: exit 1"
like "$out" "server.url: .* has a query" "the reason is named"

out=$(MOLT_SERVER_ULR=x "$AGENT_BIN" --config "$W/ca/molt.conf" check-config 2>&1)
like "$out" "config.env_unknown name=MOLT_SERVER_ULR closest=MOLT_SERVER_URL" \
    "a mistyped MOLT_* variable is a warning naming the closest known one"

# The CA file, the keys.
sed -i "s|^ca_file = .*|ca_file = $W/nope.pem|" "$W/ca/molt.conf"
check ca
is "$rc" 1 "a missing CA file: exit 1"
like "$out" "error: server.ca_file = $W/nope.pem does not exist" "the setting is named"
echo "not a certificate" >"$W/bad.pem"
sed -i "s|^ca_file = .*|ca_file = $W/bad.pem|" "$W/ca/molt.conf"
check ca
like "$out" "error: server.ca_file = $W/bad.pem: no PEM certificate" "a CA file without a certificate"
mkdir -p "$W/nokeys"
conf nokeys "keys_dir = $W/nokeys"
check nokeys
is "$rc" 1 "no trusted key: exit 1"
like "$out" "error: agent.keys_dir = $W/nokeys has no \*.pub key" "the keys_dir is named"
check nokeys --start
is "$rc" 0 "with --start (the service's check) a missing key is a warning: the agent may start"
# Root keys only (docs/security.md 6.6): release keys come from the keyring.
mkdir -p "$W/rootonly"
"$PACK" keygen --out "$W/rootonly/root" >/dev/null && rm -f "$W"/rootonly/root/*.key
conf rootonly "keys_dir = $W/rootonly"
check rootonly
is "$rc" 0 "root keys only: exit 0"
like "$out" "ok: agent.keys_dir/root: 1 root key" "it counts the root key"
printf '[trust]\nroot_threshold = 2\n' >>"$W/rootonly/molt.conf"
check rootonly
like "$out" "error: agent.keys_dir/root: 1 root key, fewer than trust.root_threshold = 2" \
    "fewer root keys than root_threshold is named"

# upgrade_dir on another file system: the rename cannot work.
shm=$(mktemp -d /dev/shm/molt-check.XXXXXX)
if [ "$(stat -c %d "$shm")" != "$(stat -c %d "$W")" ]; then
    conf xdev "upgrade_dir = $shm"
    check xdev
    like "$out" "error: agent.upgrade_dir $shm: probe rename .*: Invalid cross-device link.*inside install.root" \
        "an upgrade_dir on another file system is named, with the errno"
else
    ok 0 "# SKIP /dev/shm is on the work dir's file system"
fi
rm -rf "$shm"

# Ownership: a root-owned file in the state dir breaks the service user.
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
    conf owned
    mkdir -p "$W/owned/state"
    touch "$W/owned/state/installer.lock"
    chown -R nobody "$W/owned/state"
    chown root "$W/owned/state/installer.lock"
    check owned --user nobody
    like "$out" "error: agent.state_dir: $W/owned/state/installer.lock is owned by root, not nobody .*chown -R nobody: $W/owned/state" \
        "a root-owned file in the state dir is named with the repair"
    check owned --user nobody --start
    like "$out" "warning: agent.state_dir: .*installer.lock is owned by root" \
        "with --start it is a warning: it stops upgrades, not the heartbeats"
    chmod 0600 "$W/owned/molt.conf"
    chmod 0755 "$W" "$W/owned"
    out=$(setpriv --reuid nobody --regid nogroup --clear-groups "$AGENT_BIN" \
        --config "$W/owned/molt.conf" check-config 2>&1)
    like "$out" "nobody cannot read $W/owned/molt.conf \(permission denied\)" \
        "an unreadable configuration names the user"
else
    ok 0 "# SKIP ownership checks need root and a nobody user"
    ok 0 "# SKIP ownership checks need root and a nobody user"
    ok 0 "# SKIP ownership checks need root and a nobody user"
fi
tap_done
