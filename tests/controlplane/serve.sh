#!/bin/sh
# serve.sh: runs the reference control plane (server.py) on a host, outside the
# tests, to try molt against: it makes a CA and a server certificate for NAME
# (or takes yours), an access id and key (kept in DIR for the next run), prints
# what molt.conf needs, then serves in the foreground until Ctrl-C. It is the
# reference server of the tests: one process, SQLite, no users, no high
# availability, no hardening. For trials and development, not for a fleet.
set -eu

usage() {
    cat <<'USAGE'
Usage: serve.sh --dir DIR [--listen HOST:PORT] [--name NAME] [--tls-cert F --tls-key F]
                [--builds DIR] [-- SERVER-OPTIONS...]
Runs the reference control plane: state, CA and credentials in DIR; builds (signed
packages to offer, see molt-pack(1)) in --builds (default DIR/builds).

  --listen HOST:PORT   where to listen (default 127.0.0.1:8443)
  --name NAME          the host name agents use in server.url (default: HOST); the
                       certificate made here is for it
  --tls-cert, --tls-key  your server certificate and key instead of a CA made here
Prints the url, access id, access key and CA file for molt.conf.
USAGE
}

DIR='' LISTEN=127.0.0.1:8443 NAME='' CERT='' KEY='' BUILDS=''
while [ $# -gt 0 ]; do
    case "$1" in
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    --dir | --listen | --name | --tls-cert | --tls-key | --builds)
        [ $# -ge 2 ] || { echo "serve.sh: $1 needs a value" >&2; exit 2; }
        case "$1" in
        --dir) DIR=$2 ;; --listen) LISTEN=$2 ;; --name) NAME=$2 ;;
        --tls-cert) CERT=$2 ;; --tls-key) KEY=$2 ;; --builds) BUILDS=$2 ;;
        esac
        shift 2 ;;
    *) echo "serve.sh: unknown argument '$1'; try --help" >&2; exit 2 ;;
    esac
done
[ -n "$DIR" ] || { echo "serve.sh: --dir DIR is required; try --help" >&2; exit 2; }
if [ -n "$CERT$KEY" ] && { [ -z "$CERT" ] || [ -z "$KEY" ]; }; then
    echo "serve.sh: --tls-cert and --tls-key go together" >&2
    exit 2
fi
HOST=${LISTEN%:*}
PORT=${LISTEN##*:}
[ -n "$NAME" ] || NAME=$HOST
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
BUILDS=${BUILDS:-$DIR/builds}
mkdir -p "$BUILDS" "$DIR/data"
umask 077

if [ -z "$CERT" ]; then
    CERT=$DIR/server.pem KEY=$DIR/server.key
    if [ ! -s "$CERT" ]; then
        case "$NAME" in *[!0-9.]*) san="DNS:$NAME" ;; *) san="IP:$NAME" ;; esac
        sh "$(dirname "$0")/mkcert.sh" "$DIR" "molt reference CA" "$NAME" "$san" 365 \
            >"$DIR/openssl.log" 2>&1 ||
            { echo "serve.sh: openssl failed: see $DIR/openssl.log" >&2; exit 1; }
    fi
    CA="$DIR/ca.pem"
else
    CA="(the CA that signed $CERT; unset server.ca_file if the system trusts it)"
fi
[ -s "$DIR/access-id" ] || printf 'su%s\n' "$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')" >"$DIR/access-id"
[ -s "$DIR/access-key" ] || od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$DIR/access-key"

cat <<INFO
url          https://$NAME:$PORT
access id    $(cat "$DIR/access-id")
access key   $(cat "$DIR/access-key")   (also in $DIR/access-key)
ca file      $CA
builds       $BUILDS (offer a release: copy molt-V-linux-ARCH.tar.gz with its .statement.json and .sig here)
INFO
exec "${PYTHON3:-/usr/bin/python3}" "$(dirname "$0")/server.py" --listen "$LISTEN" --data "$DIR/data" \
    --builds "$BUILDS" --access-id "$(cat "$DIR/access-id")" --access-key-file "$DIR/access-key" \
    --tls-cert "$CERT" --tls-key "$KEY" "$@"
