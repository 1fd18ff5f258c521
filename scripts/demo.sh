#!/usr/bin/env bash
# `make demo`: start the simulator with the example world, check that it is the one answering, plan
# desired/ against it, and leave it running for the "Next:" lines (which say how to stop it).
# usage: scripts/demo.sh [PORT]   (default 8990, where desired/confluence.yaml points; if that port is
#   taken, a free one is used with a copy of desired/ pointing at it)
# env: RECONCILE_BIN (default .venv/bin), RECONCILE_DEMO_DIR (default .venv/demo: pid, log, plan, copy)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ASKED=${1:-8990}
BIN=$(cd "${RECONCILE_BIN:-.venv/bin}" && pwd)
DIR=${RECONCILE_DEMO_DIR:-$ROOT/.venv/demo}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
PY=$BIN/python
TOKEN=example-admin-token   # the example world's administrator PAT (a simulator credential)

probe() {   # what answers /_sim/stats on port $1: ours (instance $2, pid $3), foreign, or none
  "$PY" - "$@" <<'PY'
import sys
import httpx
port, instance, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    got = httpx.get(f"http://127.0.0.1:{port}/_sim/stats", timeout=1).json()
except (httpx.HTTPError, ValueError):
    print("none")
else:
    ours = isinstance(got, dict) and got.get("instance") == instance and got.get("pid") == pid
    print("ours" if ours else "foreign")
PY
}

free() {   # exit 0 when nothing listens on 127.0.0.1:$1 (SO_REUSEADDR: TIME_WAIT leftovers do not count)
  "$PY" -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try: s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError: sys.exit(1)' "$1"
}

# A simulator left running by an earlier `make demo` is ours to replace: stop it (checked by pid and label).
if [ -f "$DIR/sim.pid" ]; then
  read -r OLD_PID OLD_PORT OLD_INSTANCE <"$DIR/sim.pid" || true
  if [ -n "${OLD_INSTANCE:-}" ] && [ "$(probe "$OLD_PORT" "$OLD_INSTANCE" "$OLD_PID")" = ours ]; then
    kill "$OLD_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$OLD_PID" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$DIR/sim.pid"
fi

PORT=$ASKED
if ! free "$PORT"; then
  PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  echo "Port $ASKED is in use by another program: using port $PORT instead."
fi

INSTANCE=$("$PY" -c 'import secrets; print(secrets.token_hex(8))')
rm -rf "$DIR/state"   # a fresh world: no journal of an earlier demo's apply
"$BIN/reconcile" sim --port "$PORT" --instance "$INSTANCE" </dev/null >"$DIR/sim.log" 2>&1 &
SIM_PID=$!
stop() { kill "$SIM_PID" 2>/dev/null || true; wait "$SIM_PID" 2>/dev/null || true; }
trap stop EXIT INT TERM

answer=none
for _ in $(seq 1 150); do   # wait until it answers (≤ 30 s)
  if ! kill -0 "$SIM_PID" 2>/dev/null; then
    echo "the simulator did not start on port $PORT:" >&2; cat "$DIR/sim.log" >&2; exit 1
  fi
  answer=$(probe "$PORT" "$INSTANCE" "$SIM_PID")
  [ "$answer" = none ] || break
  sleep 0.2
done
if [ "$answer" != ours ]; then
  echo "make demo: something other than the simulator this demo started answers on 127.0.0.1:$PORT" \
       "($answer); nothing was planned. Stop that program or run: make demo PORT=<a free port>" >&2
  exit 1
fi
echo "$SIM_PID $PORT $INSTANCE" >"$DIR/sim.pid"

DESIRED=$ROOT/desired
if [ "$PORT" != 8990 ]; then   # the configuration names port 8990: plan a copy pointing at $PORT
  DESIRED=$DIR/desired-$PORT
  rm -rf "$DESIRED" && mkdir -p "$DESIRED"
  for f in desired/*.yaml; do
    sed "s#http://127.0.0.1:8990#http://127.0.0.1:$PORT#" "$f" >"$DESIRED/$(basename "$f")"
  done
fi

export CONFLUENCE_TOKEN=$TOKEN
echo "Simulator: http://127.0.0.1:$PORT (example world, pid $SIM_PID). Planning $DESIRED against it:"
echo
rm -f "$DIR/plan.json"
"$BIN/reconcile" --desired "$DESIRED" plan --out "$DIR/plan.json"   # set -e: a failed plan stops the simulator
DIGEST=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1], encoding="utf-8"))["digest"])' \
         "$DIR/plan.json")
trap - EXIT INT TERM   # from here on the simulator keeps running for the lines below

echo
echo "Next: the simulator keeps running (log: $DIR/sim.log). In a shell, apply this plan, plan again, stop it:"
printf '  export CONFLUENCE_TOKEN=%s\n' "$TOKEN"
printf '  %q --desired %q --state-dir %q apply %q --approve %s\n' \
  "$BIN/reconcile" "$DESIRED" "$DIR/state" "$DIR/plan.json" "$DIGEST"
printf '  %q --desired %q plan --detailed-exitcode   # exit 0: nothing left to change\n' \
  "$BIN/reconcile" "$DESIRED"
printf '  kill %s   # stop the simulator (the next make demo replaces it too)\n' "$SIM_PID"
