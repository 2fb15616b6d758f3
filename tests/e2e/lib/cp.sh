# cp.sh: start and drive the reference control plane (tests/controlplane/server.py) from e2e tests.
# Source it (bash; works under set -u and set -e), then:
#
#   trap cp_stop EXIT                 # cleanup is the caller's job; cp_stop is idempotent
#   cp_start "$WORK" [server args]    # HTTPS on 127.0.0.1 with a throwaway CA; exports CP_URL,
#                                     # CP_CA, CP_ACCESS_ID, CP_ACCESS_KEY, CP_PID, CP_DATA, CP_BUILDS
#   cp_api GET /collectors            # prints the body; sets CP_HTTP_STATUS and CP_BODY
#   cp_fault '{"type":"drop","afterBytes":4096}'; cp_faults_reset
#   cp_wait_task_status "$tid" 2 60
#   cp_restart                        # same data, same port when it is free
#
# cp_api run inside $(...) cannot set variables in the caller: use cp_last_status there.
# Only 127.0.0.1 is used. Needs openssl, curl and python3 ($PYTHON3).

: "${MOLT_TOP_SRCDIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}"
CP_PY=${PYTHON3:-python3}
CP_SERVER="$MOLT_TOP_SRCDIR/tests/controlplane/server.py"
CP_PID=${CP_PID:-}
CP_HTTP_STATUS=${CP_HTTP_STATUS:-}
CP_BODY=${CP_BODY:-}
CP_EXTRA_ARGS=()

cp__say() { printf 'cp.sh: %s\n' "$*" >&2; }

# A throwaway CA and a certificate for 127.0.0.1 and localhost, made fresh in the caller's work
# directory (mode 0600 keys; nothing is committed). The CA key stays there so that cp_cert can
# sign the bad certificates of TLS fault tests.
cp__make_tls() {
    local d=$1
    [ -s "$d/server.pem" ] && [ -s "$d/ca.pem" ] && return 0
    sh "$(dirname "$CP_SERVER")/mkcert.sh" "$d" "molt e2e throwaway CA" 127.0.0.1 \
        "IP:127.0.0.1,DNS:localhost" 2 >"$d/openssl.log" 2>&1 && return 0
    cp__say "openssl failed:"
    cat "$d/openssl.log" >&2
    return 1
}

cp__random_hex() { # N bytes as hex
    od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'
}

# cp_start WORKDIR [extra server.py args...]
cp_start() {
    if [ $# -lt 1 ]; then cp__say "usage: cp_start WORKDIR [server args]"; return 2; fi
    local work=$1
    shift
    CP_DIR="$work/cp"
    mkdir -p "$CP_DIR/data" "$CP_DIR/builds" "$CP_DIR/tls" || return 1
    CP_DATA="$CP_DIR/data"
    CP_BUILDS="$CP_DIR/builds"
    CP_EXTRA_ARGS=("$@")
    local prev=""
    for a in "$@"; do # the caller may point --data/--builds elsewhere; the last one wins
        case "$prev" in --data) CP_DATA=$a ;; --builds) CP_BUILDS=$a ;; esac
        case "$a" in --data=*) CP_DATA=${a#--data=} ;; --builds=*) CP_BUILDS=${a#--builds=} ;; esac
        prev=$a
    done
    mkdir -p "$CP_DATA" "$CP_BUILDS" || return 1
    cp__make_tls "$CP_DIR/tls" || return 1
    CP_CA="$CP_DIR/tls/ca.pem"
    CP_TLS_CERT="$CP_DIR/tls/server.pem"
    CP_TLS_KEY="$CP_DIR/tls/server.key"
    CP_ACCESS_ID="id$(cp__random_hex 6)"
    CP_ACCESS_KEY="$(cp__random_hex 24)"
    (umask 077 && printf '%s\n' "$CP_ACCESS_KEY" >"$CP_DIR/access-key") || return 1
    (umask 077 && printf 'machine 127.0.0.1 login %s password %s\n' "$CP_ACCESS_ID" \
        "$CP_ACCESS_KEY" >"$CP_DIR/netrc") || return 1
    export CP_DIR CP_DATA CP_BUILDS CP_CA CP_ACCESS_ID CP_ACCESS_KEY
    cp__launch 0
}

cp__launch() { # PORT
    local port=$1 out="$CP_DIR/stdout" i
    : >"$out"
    "$CP_PY" "$CP_SERVER" --listen "127.0.0.1:$port" --data "$CP_DATA" --builds "$CP_BUILDS" \
        --access-id "$CP_ACCESS_ID" --access-key-file "$CP_DIR/access-key" \
        --tls-cert "$CP_TLS_CERT" --tls-key "$CP_TLS_KEY" \
        --rate-limit 0 ${CP_EXTRA_ARGS[@]+"${CP_EXTRA_ARGS[@]}"} \
        >"$out" 2>>"$CP_DIR/server.log" </dev/null &
    CP_PID=$!
    for ((i = 0; i < 600; i++)); do # up to 30 s on a loaded machine
        if [ -s "$out" ] && [ "$(wc -l <"$out")" -ge 1 ]; then
            CP_URL=$(head -n 1 "$out")
            CP_PORT=${CP_URL##*:}
            export CP_URL CP_PORT CP_PID
            return 0
        fi
        if ! kill -0 "$CP_PID" 2>/dev/null; then
            wait "$CP_PID" 2>/dev/null || true
            CP_PID=
            cp__say "control plane did not start; log tail:"
            tail -n 20 "$CP_DIR/server.log" >&2
            return 1
        fi
        sleep 0.05
    done
    cp__say "control plane printed no URL within 30 s"
    cp_stop
    return 1
}

# cp_stop: SIGTERM, then SIGKILL after 5 s. Safe to call twice and from an EXIT trap.
cp_stop() {
    local pid=${CP_PID:-} i
    [ -n "$pid" ] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    CP_PID=
    return 0
}

# cp_kill: SIGKILL, to test that a crash loses nothing.
cp_kill() {
    local pid=${CP_PID:-}
    [ -n "$pid" ] || return 0
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    CP_PID=
}

# cp_restart [--kill]: stop (or kill) and start again on the same data and, if free, the same
# port; otherwise on a new port, with CP_URL updated.
cp_restart() {
    if [ "${1:-}" = "--kill" ]; then cp_kill; else cp_stop; fi
    local port=${CP_PORT:-0}
    cp__launch "$port" 2>/dev/null && return 0
    cp__say "port $port is taken; restarting on a new port"
    cp__launch 0
}

# cp_cert KIND: a server certificate for TLS fault tests, signed by the same throwaway CA:
# good (127.0.0.1 and localhost), wrong-host (only wrong.example.invalid), expired (for
# 127.0.0.1, already expired). Prints the certificate's path; the key is beside it (.key).
cp_cert() {
    local kind=$1 d="$CP_DIR/tls" san="IP:127.0.0.1,DNS:localhost" days=2
    case "$kind" in
    good) ;;
    wrong-host) san="DNS:wrong.example.invalid" ;;
    expired) days=0 ;;
    *) cp__say "cp_cert: good, wrong-host or expired, not $kind"; return 2 ;;
    esac
    [ -s "$d/$kind.pem" ] || (
        set -e
        umask 077
        cd "$d"
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout "$kind.key" -out "$kind.csr" -subj "/CN=molt e2e $kind"
        printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
            "extendedKeyUsage=serverAuth" "subjectAltName=$san" >"$kind.ext"
        openssl x509 -req -in "$kind.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
            -out "$kind.pem" -days "$days" -extfile "$kind.ext"
        rm -f "$kind.csr"
        [ "$days" -gt 0 ] || sleep 1.2 # notAfter = notBefore: expired once that second is over
    ) >>"$d/openssl.log" 2>&1 || { cp__say "openssl failed: see $d/openssl.log"; return 1; }
    printf '%s\n' "$d/$kind.pem"
}

# cp_restart_with_cert KIND: restart (same data and port) serving the cp_cert KIND certificate;
# `cp_restart_with_cert good` goes back to a valid one.
cp_restart_with_cert() {
    local pem
    pem=$(cp_cert "$1") || return 1
    CP_TLS_CERT=$pem
    CP_TLS_KEY=${pem%.pem}.key
    cp_restart
}

# cp_api METHOD PATH [JSON]: PATH is under /api/v1. Prints the body.
cp_api() {
    if [ $# -lt 2 ]; then cp__say "usage: cp_api METHOD PATH [JSON]"; return 2; fi
    local method=$1 path=$2 out rc=0
    out=$(mktemp "$CP_DIR/api.XXXXXX") || return 1
    local args=(-sS --cacert "$CP_CA" --netrc-file "$CP_DIR/netrc" -X "$method"
        -H "Accept: application/json" -o "$out" -w "%{http_code}" --max-time 60)
    if [ $# -ge 3 ]; then
        args+=(-H "Content-Type: application/json" --data-binary "$3")
    fi
    CP_HTTP_STATUS=$(curl "${args[@]}" "$CP_URL/api/v1$path") || rc=$?
    [ "$rc" -eq 0 ] || CP_HTTP_STATUS=000
    printf '%s\n' "$CP_HTTP_STATUS" >"$CP_DIR/last-status"
    CP_BODY=$(cat "$out")
    rm -f "$out"
    printf '%s\n' "$CP_BODY"
    return "$rc"
}

# cp_last_status: the HTTP status of the last cp_api call, even one run inside $(...).
cp_last_status() { cat "$CP_DIR/last-status" 2>/dev/null || echo 000; }

# cp_json PATH: read JSON on stdin, print the value at a dotted PATH ("upgrade.status",
# "collectors.0.id"); strings raw, other values as JSON. Fails when the path is missing.
cp_json() {
    "$CP_PY" -c '
import json, sys
v = json.load(sys.stdin)
for p in [x for x in sys.argv[1].split(".") if x]:
    v = v[int(p)] if isinstance(v, list) else v[p]
print(v if isinstance(v, str) else json.dumps(v))' "${1:-}"
}

cp__admin() { # METHOD PATH [JSON]; fails unless 200
    cp_api "$@" >/dev/null || return 1
    [ "$CP_HTTP_STATUS" = 200 ] || { cp__say "$1 $2: $CP_HTTP_STATUS $CP_BODY"; return 1; }
    printf '%s\n' "$CP_BODY"
}

# cp_fault JSON: arm a fault (see docs in tests/controlplane/README.md); prints the armed fault.
cp_fault() { cp__admin POST /admin/faults "$1"; }
cp_faults_reset() { cp__admin DELETE /admin/faults >/dev/null; }
cp_stats() { cp__admin GET /admin/stats; }
cp_clock_advance() { cp__admin POST /admin/clock "{\"advanceMs\": $1}" >/dev/null; }
cp_task_events() { cp__admin GET "/admin/tasks/$1/events"; }

# cp_create_task COLLECTOR_ID [VERSION] [MAX_BYTES_PER_SECOND] [MIRRORS_JSON]: prints the task id.
# VERSION "" is the latest; the rate rides on the command as maxBytesPerSecond; MIRRORS_JSON (a
# JSON list of base URLs) on the build as downloadUrls. CP_TASK_FORCE=1 creates it even where
# the release channel does not offer the build to the host (to test the agent's own check).
cp_create_task() {
    local body="{\"collectorId\": $1"
    [ -n "${CP_TASK_FORCE:-}" ] && body="$body, \"force\": true"
    [ -n "${2:-}" ] && body="$body, \"toVersion\": \"$2\""
    [ -n "${3:-}" ] && body="$body, \"maxBytesPerSecond\": $3"
    [ -n "${4:-}" ] && body="$body, \"mirrors\": $4"
    body="$body}"
    cp_api POST /collectors/upgrades "$body" >/dev/null || return 1
    [ "$CP_HTTP_STATUS" = 202 ] || { cp__say "create task: $CP_HTTP_STATUS $CP_BODY"; return 1; }
    printf '%s\n' "$CP_BODY" | cp_json id
}

# cp_collector_id NAME: prints the id of the collector called NAME.
cp_collector_id() {
    cp_api GET "/collectors/name/$1" >/dev/null || return 1
    [ "$CP_HTTP_STATUS" = 200 ] || return 1
    printf '%s\n' "$CP_BODY" | cp_json collector.id
}

# cp_wait_task_status TASK_ID STATUS TIMEOUT_S: poll until the task has STATUS. Fails early when
# the task ends (2 or 3) with another status. Leaves CP_TASK_STATUS and CP_TASK_MESSAGE set.
cp_wait_task_status() {
    local tid=$1 want=$2 end=$((SECONDS + $3))
    CP_TASK_STATUS=
    CP_TASK_MESSAGE=
    while :; do
        cp_api GET "/collectors/upgrades/$tid" >/dev/null || true
        if [ "$CP_HTTP_STATUS" = 200 ]; then
            CP_TASK_STATUS=$(printf '%s' "$CP_BODY" | cp_json upgrade.status)
            CP_TASK_MESSAGE=$(printf '%s' "$CP_BODY" | cp_json upgrade.message)
            [ "$CP_TASK_STATUS" = "$want" ] && return 0
            case "$CP_TASK_STATUS" in
            2 | 3)
                cp__say "task $tid ended with status $CP_TASK_STATUS ($CP_TASK_MESSAGE), not $want"
                return 1
                ;;
            esac
        fi
        if [ "$SECONDS" -ge "$end" ]; then
            cp__say "task $tid: status ${CP_TASK_STATUS:-?} after $3 s, not $want"
            return 1
        fi
        sleep 0.1
    done
}

# cp_fake_build VERSION [MIN_VERSION] [ARCH]: an unsigned stand-in package, statement and .sig in
# CP_BUILDS, for tests of the control plane itself (agents will refuse it: it is not signed).
cp_fake_build() {
    "$CP_PY" - "$CP_BUILDS" "$1" "${2:-}" "${3:-amd64}" <<'EOF'
import hashlib, json, os, sys, time
d, version, minv, arch = sys.argv[1:5]
data = os.urandom(4096)
pkg = "molt-%s-linux-%s.tar.gz" % (version, arch)
st = {"name": "molt", "version": version, "release": "fake", "os": "linux", "arch": arch,
      "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "minVersion": minv,
      "created": int(time.time() * 1000), "package": pkg}
for name, content in ((pkg, data), (pkg + ".statement.json", json.dumps(st).encode()),
                      (pkg + ".sig", b"not a signature")):
    tmp = os.path.join(d, "." + name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(content)
    os.rename(tmp, os.path.join(d, name))
print(pkg)
EOF
}
