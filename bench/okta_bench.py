"""Okta source benchmark: `OktaSource.read()` of a generated Okta org served by the simulator at a latency.

The simulator runs in one child process and the reader in another (so peak RSS is the reader's alone);
the read runs at the source's concurrency and at concurrency 1, against the latency floor
(requests / concurrency * latency).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.idp_read import measured, served
from bench.runner import process_cpu
from tests.support.net import free_port
from tests.support.simproc import ROOT, child_env

SERVER = """
import json, sys
from reconcile.sim.app import build_app
from reconcile.sim.okta.generate import generate_okta
from reconcile.sim.server import serve
a = json.loads(sys.argv[1])
app = build_app()
ctx = app.state.ctx
ctx.extra["okta"] = generate_okta(a["users"], a["groups"], a["memberships"], a["seed"])
ctx.apply_settings(ctx.settings.updated({"latency_ms": a["latency_ms"]}))
serve(app, port=a["port"])
"""

READER = """
import json, resource, sys, time
from reconcile.aio import run
from reconcile.settings import HttpSettings, Secret
from reconcile.sources.okta.settings import OktaGroupsSettings, OktaSourceSettings
from reconcile.sources.okta.source import OktaSource
a = json.loads(sys.argv[1])
config = OktaSourceSettings(name="bench", url=a["url"], token=Secret(a["token"], "${OKTA_TOKEN}"),
                          groups=OktaGroupsSettings(map=(("team-*", "team-*"),)), concurrency=a["concurrency"],
                          http=HttpSettings(timeout=120))
source = OktaSource(config)
started, cpu = time.perf_counter(), time.process_time()
state = run(source.read())
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "users": len(state.users), "groups": len(state.groups),
                  "memberships": sum(len(u.groups) for u in state.users.values()), "requests": source.requests,
                  "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _read(url: str, concurrency: int, latency_ms: float, sim_pid: int) -> dict[str, Any]:
    from reconcile.sim.okta.generate import OKTA_TOKEN

    args = {"url": url, "token": OKTA_TOKEN, "concurrency": concurrency}
    sim_cpu = process_cpu(sim_pid)
    child = subprocess.run([sys.executable, "-c", READER, json.dumps(args)], capture_output=True, text=True,
                           cwd=str(ROOT), env=child_env(), timeout=3600, check=False)
    if child.returncode != 0:
        raise RuntimeError(f"the Okta bench reader failed:\n{child.stderr[-3000:]}")
    sim_cpu = process_cpu(sim_pid) - sim_cpu
    result = json.loads(child.stdout.strip().splitlines()[-1])
    floor = result["requests"] / concurrency * latency_ms / 1000
    row = {"concurrency": concurrency, "wall_s": round(result["seconds"], 2), "requests": result["requests"],
           "floor_s": round(floor, 2), "ratio_to_floor": round(result["seconds"] / floor, 2) if floor else None,
           "peak_rss_mb": round(result["rss_kb"] / 1024, 1), "users": result["users"],
           "groups": result["groups"], "memberships": result["memberships"],
           "reader_cpu_s": round(result["cpu_seconds"], 2)}
    return measured(row, sim_cpu_s=sim_cpu, concurrency=concurrency, latency_ms=latency_ms, wall_s=result["seconds"],
                    rss_mb=row["peak_rss_mb"])


def run(users: int = 100_000, groups: int = 2_000, memberships: int = 400_000, *, latency_ms: float = 25.0,
        concurrency: int = 4, seed: int = 1, workdir: Path | None = None) -> dict[str, Any]:
    """Serve a generated org, read it at `concurrency` and at 1; the rows and whether both read the same."""
    port = free_port()
    args = {"users": users, "groups": groups, "memberships": memberships, "seed": seed, "latency_ms": latency_ms,
            "port": port}
    log_path = (workdir or Path("/tmp")) / f"reconcile-okta-sim-{port}.log"
    with served(SERVER, args, name="Okta", log_path=log_path) as (proc, url, generate_s):
        fast = _read(f"{url}/okta", concurrency, latency_ms, proc.pid)
        slow = _read(f"{url}/okta", 1, latency_ms, proc.pid)
    same = all(fast[k] == slow[k] for k in ("users", "groups", "memberships"))
    return {"name": "okta source read", "users": users, "groups": groups, "memberships": memberships,
            "latency_ms": latency_ms, "generate_s": round(generate_s, 1), "fast": fast, "concurrency_1": slow,
            "same_read": same, "speedup": round(slow["wall_s"] / fast["wall_s"], 2) if fast["wall_s"] else None}


if __name__ == "__main__":
    print(json.dumps(run(*(int(a) for a in sys.argv[1:4])), indent=2))
