"""Entra ID source benchmark: `EntraSource.read()` of a generated tenant (reconcile/sim/entra_id/generate.py)
served by the simulator with added latency, at the configured concurrency and at concurrency 1.

The simulator and the reader each run in a child process, so the peak RSS is the reader's alone. The
latency floor is what the requests cost if `concurrency` of them were always in flight:
requests / concurrency x latency. Not part of `make test` (tests/bench/test_bench_smoke.py runs it at toy size).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.idp_read import measured
from bench.runner import process_cpu
from tests.support import simproc
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[1]

SERVER = """
import sys
from reconcile.sim.app import build_app
from reconcile.sim.control import SimSettings
from reconcile.sim.entra_id.generate import generate_entra
from reconcile.sim.server import serve
users, groups, memberships, latency, port = sys.argv[1:6]
world = generate_entra(int(users), int(groups), int(memberships))
serve(build_app(entra=world, settings=SimSettings(latency_ms=float(latency))), port=int(port))
"""

READER = """
import json, resource, sys, time
from reconcile.config.idp_entra import EntraGroupsSettings, EntraSourceSettings
from reconcile.settings import HttpSettings, Secret
from reconcile.sim.entra_id.world import GENERATED_CLIENT_ID, GENERATED_SECRET
from reconcile.aio import run
from reconcile.sources.entra_id import EntraSource
a = json.loads(sys.argv[1])
config = EntraSourceSettings(
    name="bench", tenant="example.onmicrosoft.com", client_id=GENERATED_CLIENT_ID,
    client_secret=Secret(GENERATED_SECRET, "${ENTRA_CLIENT_SECRET}"), authority=a["url"], graph_url=a["url"],
    groups=EntraGroupsSettings(map=(("team-*", "team-*"),)),
    http=HttpSettings(concurrency=a["concurrency"], timeout=120))
source = EntraSource(config)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started, cpu = time.perf_counter(), time.process_time()
state = run(source.read())
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "reader_cpu_s": round(cpu, 2),
                  "users": len(state.users), "groups": len(state.groups),
                  "memberships": sum(len(u.groups) for u in state.users.values()), "requests": source.requests,
                  "notes": [n.message for n in state.notes], "rss_before_kb": before, "rss_after_kb": after}))
"""


def _wait_until_up(url: str, server: subprocess.Popen[bytes], timeout: float = 600.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the simulator exited with {server.returncode}")
        try:
            httpx.get(f"{url}/_sim/state", timeout=2.0)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"the simulator did not answer within {timeout} s")


def _read(url: str, concurrency: int, latency_ms: float, sim_pid: int) -> dict[str, Any]:
    args = json.dumps({"url": url, "concurrency": concurrency})
    sim_cpu = process_cpu(sim_pid)
    done = subprocess.run([sys.executable, "-c", READER, args], env=simproc.child_env(), capture_output=True,
                          text=True, check=False, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"the reader failed: {done.stderr.strip().splitlines()[-1:]}")
    sim_cpu = process_cpu(sim_pid) - sim_cpu
    row: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    floor = row["requests"] / concurrency * latency_ms / 1000
    row.update(concurrency=concurrency, latency_ms=latency_ms, latency_floor_s=round(floor, 3),
               floor_ratio=round(row["seconds"] / floor, 2) if floor else None,
               peak_rss_mb=round(row["rss_after_kb"] / 1024, 1), seconds=round(row["seconds"], 3))
    return measured(row, sim_cpu_s=sim_cpu, concurrency=concurrency, latency_ms=latency_ms, wall_s=row["seconds"],
                    rss_mb=row["peak_rss_mb"])


def run(users: int = 100_000, groups: int = 2_000, memberships: int = 400_000, latency_ms: float = 25.0,
        concurrency: int = 8) -> dict[str, Any]:
    """Serve the tenant, read it at `concurrency` and at 1; the two rows and whether they agree."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/entra"
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(users), str(groups), str(memberships),
                               str(latency_ms), str(port)], env=simproc.child_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until_up(f"http://127.0.0.1:{port}", server)
        setup = time.perf_counter() - started
        fast = _read(url, concurrency, latency_ms, server.pid)
        slow = _read(url, 1, latency_ms, server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    same = all(fast[k] == slow[k] for k in ("users", "groups", "memberships", "notes"))
    return {"available": True, "users": users, "groups": groups, "memberships_generated": memberships,
            "setup_s": round(setup, 1), "fast": fast, "concurrency_1": slow, "same_result": same}
