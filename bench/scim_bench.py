"""SCIM source benchmark: `ScimSource.read()` of a generated SCIM directory served by `reconcile sim` (/scim/v2)
at a latency, at the source's concurrency and at concurrency 1, against the latency floor.

The simulator runs in one child process and the reader in another (peak RSS is the reader's alone); the CPU
of each is measured (the simulator's from /proc/<pid>/stat), since the floor counts neither. The small
scim2-server row (bench/scim_server_bench.py) shows interoperability with someone else's server.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.idp_read import served
from bench.runner import process_cpu
from tests.support.net import free_port
from tests.support.simproc import ROOT, child_env

SERVER = """
import json, sys
from reconcile.sim.app import build_app
from reconcile.sim.scim.world import ScimWorld
from reconcile.sim.server import serve
a = json.loads(sys.argv[1])
app = build_app()
ctx = app.state.ctx
world = ScimWorld.generate(a["users"], a["groups"], a["memberships"], a["seed"], nested=a["nested"])
world.max_results = a["max_results"]
ctx.extra["scim"] = world
ctx.apply_settings(ctx.settings.updated({"latency_ms": a["latency_ms"]}))
serve(app, port=a["port"])
"""

READER = """
import json, resource, sys, time
from reconcile.aio import run
from reconcile.config.idp_scim import ScimGroupsSettings, ScimSourceSettings
from reconcile.settings import HttpSettings, Secret
from reconcile.sources.scim import ScimSource
a = json.loads(sys.argv[1])
config = ScimSourceSettings(name="bench", url=a["url"], token=Secret(a["token"], "${SCIM_TOKEN}"),
                          page_size=a["page_size"], groups=ScimGroupsSettings(map=(("team-*", "team-*"),)),
                          http=HttpSettings(concurrency=a["concurrency"], timeout=120))
source = ScimSource(config)
cpu_before = time.process_time()
started = time.perf_counter()
state = run(source.read())  # not asyncio.run: it would repr() the result (reconcile/aio.py)
seconds = time.perf_counter() - started
cpu = time.process_time() - cpu_before
print(json.dumps({"seconds": seconds, "cpu_s": cpu, "users": len(state.users), "groups": len(state.groups),
                  "memberships": sum(len(u.groups) for u in state.users.values()), "requests": source.requests,
                  "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _read(url: str, concurrency: int, latency_ms: float, page_size: int, server_pid: int) -> dict[str, Any]:
    from reconcile.sim.scim.world import SCIM_TOKEN

    args = {"url": url, "token": SCIM_TOKEN, "concurrency": concurrency, "page_size": page_size}
    sim_before = process_cpu(server_pid)
    child = subprocess.run([sys.executable, "-c", READER, json.dumps(args)], capture_output=True, text=True,
                           cwd=str(ROOT), env=child_env(), timeout=3600, check=False)
    sim_cpu = process_cpu(server_pid) - sim_before
    if child.returncode != 0:
        raise RuntimeError(f"the SCIM bench reader failed:\n{child.stderr[-3000:]}")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    floor = result["requests"] / concurrency * latency_ms / 1000
    return {"concurrency": concurrency, "wall_s": round(result["seconds"], 2), "requests": result["requests"],
            "latency_floor_s": round(floor, 2), "vs_floor": round(result["seconds"] / floor, 2) if floor else None,
            "reader_cpu_s": round(result["cpu_s"], 2), "simulator_cpu_s": round(sim_cpu, 2),
            "peak_rss_mb": round(result["rss_kb"] / 1024, 1), "users": result["users"],
            "groups": result["groups"], "memberships": result["memberships"]}


def run(users: int = 100_000, groups: int = 2_000, memberships: int = 400_000, *, latency_ms: float = 25.0,
        concurrency: int = 8, max_results: int = 100, seed: int = 1, nested: int = 20,
        workdir: Path | None = None) -> dict[str, Any]:
    """Serve a generated directory (pages of at most `max_results`), read it at `concurrency` and at 1."""
    port = free_port()
    args = {"users": users, "groups": groups, "memberships": memberships, "seed": seed, "latency_ms": latency_ms,
            "port": port, "max_results": max_results, "nested": nested}
    log_path = (workdir or Path("/tmp")) / f"reconcile-scim-sim-{port}.log"
    with served(SERVER, args, name="SCIM", log_path=log_path) as (proc, url, generate_s):
        fast = _read(f"{url}/scim/v2", concurrency, latency_ms, max_results, proc.pid)
        slow = _read(f"{url}/scim/v2", 1, latency_ms, max_results, proc.pid)
    same = all(fast[k] == slow[k] for k in ("users", "groups", "memberships"))
    return {"name": f"SCIM read (reconcile sim, pages of {max_results})", "users": users, "groups": groups,
            "memberships_generated": memberships, "latency_ms": latency_ms, "generate_s": round(generate_s, 1),
            "fast": fast, "concurrency_1": slow, "same_result": same,
            "speedup": round(slow["wall_s"] / fast["wall_s"], 2) if fast["wall_s"] else None}


if __name__ == "__main__":
    print(json.dumps(run(*(int(a) for a in sys.argv[1:4])), indent=2))
