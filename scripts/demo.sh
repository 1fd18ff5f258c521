#!/usr/bin/env bash
# `make demo`: start the simulator with the example world, plan desired/ against it, stop the simulator.
# usage: scripts/demo.sh [PORT]   (default 8990; desired/confluence.yaml points at 8990)
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${1:-8990}
BIN=.venv/bin
LOG=$(mktemp -t reconcile-sim.XXXXXX.log)

"$BIN/reconcile" sim --port "$PORT" >"$LOG" 2>&1 &
SIM_PID=$!
cleanup() {
  kill "$SIM_PID" 2>/dev/null || true
  wait "$SIM_PID" 2>/dev/null || true
  rm -f "$LOG"
}
trap cleanup EXIT INT TERM

for _ in $(seq 1 100); do   # wait until it answers (≤ 20 s)
  if "$BIN/python" -c "import httpx, sys; httpx.get(sys.argv[1], timeout=1)" \
       "http://127.0.0.1:$PORT/_sim/stats" >/dev/null 2>&1; then
    break
  fi
  if ! kill -0 "$SIM_PID" 2>/dev/null; then
    echo "the simulator did not start:" >&2; cat "$LOG" >&2; exit 1
  fi
  sleep 0.2
done

DESIRED=desired
if [ "$PORT" != 8990 ]; then   # the configuration names port 8990: use a copy pointing at $PORT
  DESIRED=$(mktemp -d -t reconcile-desired.XXXXXX)
  trap 'cleanup; rm -rf "$DESIRED"' EXIT INT TERM
  for f in desired/*.yaml; do sed "s#http://127.0.0.1:8990#http://127.0.0.1:$PORT#" "$f" >"$DESIRED/$(basename "$f")"; done
fi

export CONFLUENCE_TOKEN=example-admin-token   # the example world's administrator PAT (a simulator credential)
echo "Simulator: http://127.0.0.1:$PORT (example world). Planning $DESIRED against it:"
echo
status=0
"$BIN/reconcile" --desired "$DESIRED" plan || status=$?
echo
echo "Next: reconcile --desired desired plan --out plan.json, then reconcile apply plan.json (against a running 'reconcile sim')."
exit "$status"
