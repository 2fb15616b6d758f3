#!/bin/sh
# mkcert.sh: makes a CA and a server certificate signed by it, for the
# reference control plane (serve.sh on a host, cp.sh in the tests): in DIR,
# ca.key, ca.pem, server.key and server.pem (P-256; keys 0600, certificates 0644).
# The CA key is kept so that tests can sign further (bad) certificates with it.
#   mkcert.sh DIR CA_NAME SERVER_NAME SUBJECT_ALT_NAMES DAYS
set -eu
[ $# -eq 5 ] || { echo "usage: mkcert.sh DIR CA_NAME SERVER_NAME SUBJECT_ALT_NAMES DAYS" >&2; exit 2; }
dir=$1 ca_name=$2 server_name=$3 san=$4 days=$5
umask 077
cd "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout ca.key -out ca.pem -days "$days" -subj "/CN=$ca_name" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout server.key -out server.csr -subj "/CN=$server_name"
printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" "subjectAltName=$san" >server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
    -out server.pem -days "$days" -extfile server.ext
rm -f server.csr server.ext
chmod 644 ca.pem server.pem
