"""Google Workspace source benchmark: `GoogleSource.read()` of a generated account
(reconcile/sim/google_workspace/generate.py) served by the simulator at a set latency, at the default
concurrency and at concurrency 1: wall, peak RSS, requests and the latency floor.

The simulator and each read run in their own processes, so the RSS is the reader's alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.idp_read import measured
from bench.runner import process_cpu
from tests.support import simproc
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[1]
KEY = ROOT / "desired" / "examples" / "google-workspace" / "service-account.json"
ADMIN = "user000001@example.com"  # the generated account's admin (GoogleWorld.generate)

SERVER = """
import json, sys, threading
from reconcile.sim.app import build_app
from reconcile.sim.google_workspace.auth import world_of
from reconcile.sim.google_workspace.generate import generate_google_workspace
from reconcile.sim.scenario import EXAMPLE, parse_scenario
from reconcile.sim.server import running
a = json.loads(sys.argv[1])
text = EXAMPLE.read_text(encoding="utf-8").replace("latency_ms: 0", f"latency_ms: {a['latency_ms']}")
app = build_app(parse_scenario(text))
world = generate_google_workspace(a["users"], a["groups"], a["memberships"], seed=1)
world.service_accounts = world_of(app.state.ctx).service_accounts  # the example's key signs in
app.state.ctx.extra["google_workspace"] = world
with running(app, port=a["port"], timeout=60):
    threading.Event().wait()
"""

READER = """
import json, resource, sys, time
from reconcile.config.idp_google import GoogleGroupsSettings, GoogleSourceSettings
from reconcile.aio import run
from reconcile.settings import HttpSettings, Secret
from reconcile.sources.google_workspace import GoogleSource
a = json.loads(sys.argv[1])
config = GoogleSourceSettings(
    name="bench", credentials=Secret(open(a["key"]).read(), "bench"), subject=a["subject"],
    api_url=a["url"] + "/google", token_uri=a["url"] + "/google/token",
    groups=GoogleGroupsSettings(map=(("team-*", "team-*"),)), http=HttpSettings(concurrency=a["concurrency"]))
source = GoogleSource(config)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started, cpu = time.perf_counter(), time.process_time()
state = run(source.read())
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "users": len(state.users), "groups": len(state.groups),
                  "memberships": sum(len(u.groups) for u in state.users.values()), "requests": source.requests,
                  "cpu_seconds": cpu, "rss_before_kb": before, "rss_after_kb": after}))
"""


def _read(url: str, concurrency: int, latency_ms: float, sim_pid: int) -> dict[str, Any]:
    args = {"url": url, "key": str(KEY), "subject": ADMIN, "concurrency": concurrency}
    sim_cpu = process_cpu(sim_pid)
    child = subprocess.run([sys.executable, "-c", READER, json.dumps(args)], capture_output=True, text=True,
                           cwd=str(ROOT), env=simproc.child_env(), timeout=3600, check=False)
    if child.returncode != 0:
        raise RuntimeError(f"the Google reader failed:\n{child.stderr[-3000:]}")
    sim_cpu = process_cpu(sim_pid) - sim_cpu
    result = json.loads(child.stdout.strip().splitlines()[-1])
    floor = result["requests"] / concurrency * latency_ms / 1000
    row = {
        "concurrency": concurrency,
        "wall_s": round(result["seconds"], 2),
        "requests": result["requests"],
        "latency_floor_s": round(floor, 2),
        "reader_cpu_s": round(result["cpu_seconds"], 2),  # the rest of the wall: the simulator, the latency
        "vs_floor": round(result["seconds"] / floor, 2) if floor else None,
        "users": result["users"], "groups": result["groups"], "memberships": result["memberships"],
        "peak_rss_mb": round(result["rss_after_kb"] / 1024, 1),
    }
    return measured(row, sim_cpu_s=sim_cpu, concurrency=concurrency, latency_ms=latency_ms, wall_s=result["seconds"],
                    rss_mb=row["peak_rss_mb"])


def run(users: int = 100_000, groups: int = 2_000, memberships: int = 400_000, *, latency_ms: float = 25.0,
        concurrency: int = 8, work: Path | None = None) -> dict[str, Any]:
    """Serve a generated account, read it at `concurrency` and at 1; the two rows and whether they agree."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = {"users": users, "groups": groups, "memberships": memberships, "latency_ms": latency_ms, "port": port}
    log_path = (work or Path("/tmp")) / f"reconcile-google-sim-{port}.log"
    with log_path.open("wb") as handle:
        proc = subprocess.Popen([sys.executable, "-c", SERVER, json.dumps(args)], stdin=subprocess.DEVNULL,
                                stdout=handle, stderr=subprocess.STDOUT, env=simproc.child_env(), cwd=str(ROOT))
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                httpx.get(f"{url}/_sim/stats", timeout=2.0).raise_for_status()
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the Google simulator did not start: {log_path.read_text()[-2000:]}") from None
                time.sleep(0.2)
        fast = _read(url, concurrency, latency_ms, proc.pid)
        slow = _read(url, 1, latency_ms, proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    same = all(fast[k] == slow[k] for k in ("users", "groups", "memberships"))
    return {"name": f"google-workspace source read ({latency_ms:g} ms latency)", "users": users, "groups": groups,
            "memberships_generated": memberships, "fast": fast, "concurrency_1": slow, "same_result": same,
            "speedup": round(slow["wall_s"] / fast["wall_s"], 1) if fast["wall_s"] else None}


if __name__ == "__main__":
    sizes = [int(a) for a in sys.argv[1:4]] or [100_000, 2_000, 400_000]
    print(json.dumps(run(*sizes), indent=2))
