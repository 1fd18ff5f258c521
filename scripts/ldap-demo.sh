#!/usr/bin/env bash
# `make ldap-demo`: run desired/examples/ldap/ as its README section says, without root. Starts a
# throwaway slapd (StartTLS, a fresh self-signed certificate) on a free loopback port with the
# example's directory.ldif, and the simulator's example world; plans the example through the CLI
# (safety limits checked, no --force); stops both.
# usage: scripts/ldap-demo.sh [PORT]   (the simulator's port: default 8990, or a free one if taken)
# env: RECONCILE_BIN (default .venv/bin), RECONCILE_DEMO_DIR (default: a temporary directory, removed)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BIN=$(cd "${RECONCILE_BIN:-.venv/bin}" && pwd)
EXAMPLE=$ROOT/desired/examples/ldap
SLAPD=/usr/sbin/slapd
SLAPADD=/usr/sbin/slapadd
for tool in "$SLAPD" "$SLAPADD" openssl; do
  command -v "$tool" >/dev/null || {
    echo "make ldap-demo: $tool is not installed; run: sudo bash scripts/system-deps.sh (slapd, ldap-utils)" >&2
    exit 1
  }
done
if [ -n "${RECONCILE_DEMO_DIR:-}" ]; then DIR=$RECONCILE_DEMO_DIR; KEEP=1; else DIR=$(mktemp -d); KEEP=0; fi
mkdir -p "$DIR/slapd/db" "$DIR/slapd/tls"
DIR=$(cd "$DIR" && pwd)

SLAPD_PID=""
SIM_PID=""
stop() {
  for pid in $SIM_PID $SLAPD_PID; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  [ "$KEEP" = 1 ] || rm -rf "$DIR"
}
trap stop EXIT INT TERM

# shellcheck source=scripts/sim-lib.sh
. "$ROOT/scripts/sim-lib.sh"

# The directory: the example's LDIF loaded offline, served on ldap://127.0.0.1:<free port> with StartTLS.
S=$DIR/slapd
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$S/tls/key.pem" -out "$S/tls/cert.pem" 2>/dev/null
chmod 600 "$S/tls/key.pem"
cat >"$S/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $S/slapd.pid
TLSCertificateFile $S/tls/cert.pem
TLSCertificateKeyFile $S/tls/key.pem
database mdb
suffix "dc=example,dc=com"
rootdn "cn=admin,dc=example,dc=com"
directory $S/db
maxsize 104857600
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
CONF
"$SLAPADD" -q -f "$S/slapd.conf" -l "$EXAMPLE/directory.ldif" </dev/null >"$S/slapadd.log" 2>&1 \
  || { echo "loading directory.ldif failed:" >&2; cat "$S/slapadd.log" >&2; exit 1; }
LDAP_PORT=$(free_port)
"$SLAPD" -d 0 -f "$S/slapd.conf" -h "ldap://127.0.0.1:$LDAP_PORT/" </dev/null >"$S/slapd.log" 2>&1 &
SLAPD_PID=$!
for _ in $(seq 1 100); do   # wait until it accepts (≤ 20 s)
  kill -0 "$SLAPD_PID" 2>/dev/null || { echo "slapd did not start:" >&2; cat "$S/slapd.log" >&2; exit 1; }
  "$BIN/python" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()' \
    "$LDAP_PORT" 2>/dev/null && break
  sleep 0.2
done

start_sim "${1:-8990}" || { echo "make ldap-demo: nothing was planned" >&2; exit 1; }
DESIRED=$(desired_for_port "$EXAMPLE")

export CONFLUENCE_TOKEN=example-admin-token LDAP_URL="ldap://127.0.0.1:$LDAP_PORT" \
       LDAP_CA_FILE="$S/tls/cert.pem" LDAP_PASSWORD=reconcile-test-pw
echo "Directory: $LDAP_URL (StartTLS; desired/examples/ldap/directory.ldif)."
echo "Simulator: http://127.0.0.1:$PORT (example world). Planning $DESIRED against it:"
echo
"$BIN/reconcile" --desired "$DESIRED" plan
