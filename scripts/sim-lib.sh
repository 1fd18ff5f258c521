# Sourced by scripts/demo.sh and scripts/ldap-demo.sh: start `reconcile sim` on a free loopback port
# and make sure the server answering there is the one started (its /_sim/stats instance and pid).
# Needs BIN (the venv's bin directory) and DIR (a working directory); sets PORT, SIM_PID, INSTANCE.

probe() {   # what answers /_sim/stats on port $1: ours (instance $2, pid $3), foreign, or none
  "$BIN/python" - "$@" <<'PY'
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

port_free() {   # exit 0 when nothing listens on 127.0.0.1:$1 (SO_REUSEADDR: TIME_WAIT leftovers do not count)
  "$BIN/python" -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try: s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError: sys.exit(1)' "$1"
}

free_port() {
  "$BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_sim() {   # start_sim ASKED_PORT: the simulator on that port, or on a free one if it is taken
  PORT=$1
  if ! port_free "$PORT"; then
    PORT=$(free_port)
    echo "Port $1 is in use by another program: using port $PORT instead."
  fi
  INSTANCE=$("$BIN/python" -c 'import secrets; print(secrets.token_hex(8))')
  "$BIN/reconcile" sim --port "$PORT" --instance "$INSTANCE" </dev/null >"$DIR/sim.log" 2>&1 &
  SIM_PID=$!
  local answer=none
  for _ in $(seq 1 150); do   # wait until it answers (≤ 30 s)
    if ! kill -0 "$SIM_PID" 2>/dev/null; then
      echo "the simulator did not start on port $PORT:" >&2; cat "$DIR/sim.log" >&2; return 1
    fi
    answer=$(probe "$PORT" "$INSTANCE" "$SIM_PID")
    [ "$answer" = none ] || break
    sleep 0.2
  done
  if [ "$answer" != ours ]; then
    echo "something other than the simulator just started answers on 127.0.0.1:$PORT ($answer);" \
         "nothing was planned. Stop that program, or ask for another port." >&2
    return 1
  fi
}

desired_for_port() {   # desired_for_port SRC_DIR: SRC_DIR, or a copy under $DIR naming $PORT instead of 8990
  if [ "$PORT" = 8990 ]; then echo "$1"; return; fi
  local copy
  copy=$DIR/desired-$PORT
  rm -rf "$copy" && mkdir -p "$copy"
  for f in "$1"/*.yaml; do
    sed "s#http://127.0.0.1:8990#http://127.0.0.1:$PORT#" "$f" >"$copy/$(basename "$f")"
  done
  echo "$copy"
}
