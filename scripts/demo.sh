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

# shellcheck source=scripts/sim-lib.sh
. "$ROOT/scripts/sim-lib.sh"

# A simulator left running by an earlier `make demo` is ours to replace: stop it (checked by pid and label).
if [ -f "$DIR/sim.pid" ]; then
  read -r OLD_PID OLD_PORT OLD_INSTANCE <"$DIR/sim.pid" || true
  if [ -n "${OLD_INSTANCE:-}" ] && [ "$(probe "$OLD_PORT" "$OLD_INSTANCE" "$OLD_PID")" = ours ]; then
    kill "$OLD_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$OLD_PID" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$DIR/sim.pid"
fi

rm -rf "$DIR/state"   # a fresh world: no journal of an earlier demo's apply
stop() { [ -z "${SIM_PID:-}" ] || { kill "$SIM_PID" 2>/dev/null || true; wait "$SIM_PID" 2>/dev/null || true; }; }
trap stop EXIT INT TERM
start_sim "$ASKED" || { echo "make demo: nothing was planned" >&2; exit 1; }
echo "$SIM_PID $PORT $INSTANCE" >"$DIR/sim.pid"

DESIRED=$(desired_for_port "$ROOT/desired")   # desired/ names port 8990: elsewhere, a copy

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
