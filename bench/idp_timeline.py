"""Where an IdP read's wall goes beyond its latency floor, request by request: `python -m bench.idp_timeline
entra|okta [--scale smoke]` serves the bench's world (bench/entra_bench.py, bench/okta_bench.py) and reads it once
at the bench's concurrency, both processes timestamping every request on the shared monotonic clock.

Per kind of request (user pages, group pages, member reads), mean milliseconds: queued in the reader until a lane
took it, written, waiting in the simulator beyond its latency (a busy event loop), rendered, sent, until the
reader's `Lane` had the whole answer; the lanes in use on average, how many requests reach the simulator within
1 ms of the one before (lanes in step: waves), the time before the first request and after the last answer. A
diagnostic, not a benchmark row: the instrumentation costs some CPU of its own.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
from itertools import pairwise
from pathlib import Path
from typing import Any

from bench.idp_read import served
from tests.support.net import free_port
from tests.support.simproc import ROOT, child_env

_SIM = """
import json, sys, time
from reconcile.sim import middleware as mw
from reconcile.sim.app import build_app
from reconcile.sim.server import serve
a = json.loads(sys.argv[1])
rows, mono, init, call = [], time.monotonic, mw.SimMiddleware.__init__, mw.SimMiddleware.__call__
def traced_init(self, app, ctx):
    async def inner(scope, receive, send):
        row = scope.get("timeline")
        if row is not None:
            row["app"] = mono()
        async def traced_send(message):
            if row is not None and message["type"] == "http.response.start":
                row["start"] = mono()
            await send(message)
            if row is not None and message["type"] == "http.response.body" and not message.get("more_body"):
                row["sent"] = mono()
        await app(scope, receive, traced_send)
    init(self, inner, ctx)
async def traced_call(self, scope, receive, send):
    if scope["type"] == "http" and not scope["path"].startswith("/_sim"):
        scope["timeline"] = {"path": scope["path"] + "?" + scope["query_string"].decode(), "arrive": mono()}
        rows.append(scope["timeline"])
    await call(self, scope, receive, send)
mw.SimMiddleware.__init__, mw.SimMiddleware.__call__ = traced_init, traced_call
sized = (a["users"], a["groups"], a["memberships"])
if a["idp"] == "entra":
    from reconcile.sim.control import SimSettings
    from reconcile.sim.entra_id.generate import generate_entra
    app = build_app(entra=generate_entra(*sized), settings=SimSettings(latency_ms=a["latency_ms"]))
else:
    from reconcile.sim.okta.generate import generate_okta
    app = build_app()
    app.state.ctx.extra["okta"] = generate_okta(*sized, 1)
    app.state.ctx.apply_settings(app.state.ctx.settings.updated({"latency_ms": a["latency_ms"]}))
try:
    serve(app, port=a["port"])
finally:
    open(a["out"], "w").write(json.dumps(rows))
"""

_READER = """
import json, sys, time
from reconcile.aio import run
a = json.loads(sys.argv[1])
from reconcile.http.lane import Lane
rows, mono, handle = [], time.monotonic, Lane.handle_async_request
async def traced(self, request):
    row = {"path": request.url.raw_path.decode(), "lane": mono()}
    rows.append(row)
    outer = request.extensions.get("trace")
    async def trace(event, info):
        if event.endswith(".send_request_body.complete"):  # the one event a Lane reports
            row["wrote"] = mono()
        if outer is not None:
            await outer(event, info)
    request.extensions["trace"] = trace
    response = await handle(self, request)
    row["ret"] = mono()  # a Lane answers once the whole body is in
    return response
Lane.handle_async_request = traced
exec(a["make_source"])
started = mono()
state = run(source.read())
ended = mono()
open(a["out"], "w").write(json.dumps({"start": started, "end": ended, "rows": rows, "users": len(state.users)}))
"""

_ENTRA = """
from reconcile.config.idp_entra import EntraGroupsSettings, EntraSourceSettings
from reconcile.settings import HttpSettings, Secret
from reconcile.sim.entra_id.world import GENERATED_CLIENT_ID, GENERATED_SECRET
from reconcile.sources.entra_id import EntraSource
source = EntraSource(EntraSourceSettings(
    name="bench", tenant="example.onmicrosoft.com", client_id=GENERATED_CLIENT_ID,
    client_secret=Secret(GENERATED_SECRET, "${ENTRA_CLIENT_SECRET}"), authority=a["url"], graph_url=a["url"],
    groups=EntraGroupsSettings(map=(("team-*", "team-*"),)), http=HttpSettings(concurrency=8, timeout=120)))
"""

_OKTA = """
from reconcile.settings import HttpSettings, Secret
from reconcile.sim.okta.generate import OKTA_TOKEN
from reconcile.sources.okta.settings import OktaGroupsSettings, OktaSourceSettings
from reconcile.sources.okta.source import OktaSource
source = OktaSource(OktaSourceSettings(
    name="bench", url=a["url"], token=Secret(OKTA_TOKEN, "${OKTA_TOKEN}"),
    groups=OktaGroupsSettings(map=(("team-*", "team-*"),)), concurrency=4, http=HttpSettings(timeout=120)))
"""

SIZES = {"full": (100_000, 2_000, 400_000), "smoke": (300, 12, 1_200)}
LANES = {"entra": 8, "okta": 4}


def _kind(path: str) -> str:
    path = path.partition("?")[0]
    if path.endswith(("/members", "/transitiveMembers")) or ("/groups/" in path and path.endswith("/users")):
        return "members"
    return "users" if "/users" in path else "groups" if "/groups" in path else "token"


def summary(reader: dict[str, Any], sim_rows: list[dict[str, Any]], *, lanes: int, latency_ms: float) -> list[str]:
    """The report's lines (milliseconds) from the two processes' rows, matched by path and query."""
    served_at = {row["path"].rstrip("?"): row for row in sim_rows if "sent" in row}
    lines, late = [], latency_ms / 1000
    for kind in ("users", "groups", "members"):
        pairs = [(r, served_at[r["path"].rstrip("?")]) for r in reader["rows"]
                 if _kind(r["path"]) == kind and r["path"].rstrip("?") in served_at and "ret" in r]
        if not pairs:
            continue

        def mean(values: list[float]) -> str:
            return f"{statistics.fmean(values) * 1000:5.1f}"

        lines.append(f"{kind:8s} n={len(pairs):5d}  write {mean([r['wrote'] - r['lane'] for r, _ in pairs])}"
                     f"  sim late {mean([s['app'] - s['arrive'] - late for _, s in pairs])}"
                     f"  render {mean([s['start'] - s['app'] for _, s in pairs])}"
                     f"  send {mean([s['sent'] - s['start'] for _, s in pairs])}"
                     f"  to reader {mean([r['ret'] - s['sent'] for r, s in pairs])}"
                     f"  lane held {mean([r['ret'] - r['lane'] for r, _ in pairs])}")
    events = sorted([(r["lane"], 1) for r in reader["rows"]] + [(r["ret"], -1) for r in reader["rows"]])
    held, level, last = 0.0, 0, events[0][0]
    for at, step in events:
        held, level, last = held + level * (at - last), level + step, at
    arrivals = sorted(row["arrive"] for row in sim_rows)
    together = sum(1 for a, b in pairwise(arrivals) if b - a < 0.001)
    lines.append(f"lanes in use {held / (events[-1][0] - events[0][0]):.2f} of {lanes}; "
                 f"{together} of {len(arrivals) - 1} requests reached the simulator within 1 ms of the one before")
    lines.append(f"before the first request {(events[0][0] - reader['start']) * 1000:.0f} ms; "
                 f"after the last answer {(reader['end'] - events[-1][0]) * 1000:.0f} ms; "
                 f"wall {(reader['end'] - reader['start']) * 1000:.0f} ms, {len(reader['rows'])} requests")
    return lines


def trace(idp: str, scale: str = "full", latency_ms: float = 25.0) -> list[str]:
    users, groups, memberships = SIZES[scale]
    with tempfile.TemporaryDirectory() as tmp:
        sim_out, reader_out = Path(tmp) / "sim.json", Path(tmp) / "reader.json"
        args = {"idp": idp, "users": users, "groups": groups, "memberships": memberships, "latency_ms": latency_ms,
                "port": free_port(), "out": str(sim_out)}
        with served(_SIM, args, name=idp, log_path=Path(tmp) / "sim.log") as (simulator, url, _started):
            source = _ENTRA if idp == "entra" else _OKTA
            reading = {"url": f"{url}/{idp}", "out": str(reader_out), "make_source": source}
            done = subprocess.run([sys.executable, "-c", _READER, json.dumps(reading)], capture_output=True,
                                  text=True, cwd=str(ROOT), env=child_env(), check=False, timeout=3600)
            if done.returncode != 0:
                raise RuntimeError(f"the reader failed: {done.stderr[-2000:]}")
            simulator.send_signal(signal.SIGINT)  # uvicorn re-raises it once stopped: the script's `finally` runs
            simulator.wait(60)
        if not sim_out.exists():
            raise RuntimeError(f"the simulator wrote no timeline: {(Path(tmp) / 'sim.log').read_text()[-2000:]}")
        return summary(json.loads(reader_out.read_text()), json.loads(sim_out.read_text()), lanes=LANES[idp],
                       latency_ms=latency_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("idp", choices=sorted(LANES))
    parser.add_argument("--scale", choices=sorted(SIZES), default="full")
    options = parser.parse_args()
    print("\n".join(trace(options.idp, options.scale)))


if __name__ == "__main__":
    main()
