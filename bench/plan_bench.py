"""(a) `reconcile plan` of a large world for each target, against the simulator in its own process.

Each run is a real `reconcile plan` child process at the target's default concurrency (Confluence DC 16,
Cloud 8: the desired file does not set it): wall time, its peak RSS and CPU, the requests the simulator
served, and the same plan again with `target.http.concurrency: 1` (same digest required).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.runner import Run, floor_row, process_cpu, reconcile
from reconcile.settings import DC_CONCURRENCY, HttpSettings
from tests.support import desired
from tests.support.simproc import Sim

CLOUD_PAGE = 100  # users per users/search page (the reader's limit, the document's maximum)


@dataclass(frozen=True, slots=True)
class PlanRun:
    concurrency: int
    run: Run
    requests: int
    digest: str
    actions: int
    sim_cpu: float
    latency_s: float
    chain: int  # requests on the longest cursor chain (each needs the page before it)

    def to_json(self) -> dict[str, Any]:
        # Floor: at most `concurrency` requests in flight, and a cursor chain's pages one after another.
        spread = self.requests / self.concurrency
        floor = max(spread, self.chain) * self.latency_s
        how = (f"max({self.requests} requests / concurrency {self.concurrency}, longest cursor chain "
               f"{self.chain}) x latency")
        return {"concurrency": self.concurrency, "cpu_s": round(self.run.cpu_seconds, 2), "cursor_chain": self.chain,
                **floor_row(wall=self.run.seconds, client_cpu=self.run.cpu_seconds, sim_cpu=self.sim_cpu,
                            peak_rss_mb=self.run.peak_rss_mb, requests=self.requests, floor_s=floor,
                            floor_how=how),
                "digest": self.digest, "actions": self.actions, "exit_code": self.run.returncode}


def plan_once(sim: Sim, want: desired.Desired, out: Path, concurrency: int, latency_s: float = 0.0) -> PlanRun:
    sim.clear_log()
    before = process_cpu(sim.proc.pid)
    run = reconcile(["--desired", str(want.directory), "plan", "--out", str(out)], env=want.env)
    sim_cpu = process_cpu(sim.proc.pid) - before
    if run.returncode != 0:
        raise RuntimeError(f"reconcile plan exited {run.returncode}: {run.stderr[-2000:]}")
    data = json.loads(out.read_text(encoding="utf-8"))
    return PlanRun(concurrency, run, sim.requests(), data["digest"], len(data["actions"]), sim_cpu,
                   latency_s, longest_cursor_chain(sim.entries("request")))


def longest_cursor_chain(entries: Iterable[Mapping[str, Any]]) -> int:
    """The most requests of one cursor-paged search (same method, path and body but the `cursor`):
    each page's cursor comes from the page before, so they cannot overlap. The simulator logs
    POSTs with their bodies (Cloud's searches), not GETs: a GET chain is not counted."""
    chains: Counter[str] = Counter()
    paged: set[str] = set()
    for e in entries:
        body = e.get("body")
        if e.get("api") == "sim" or e.get("method") != "POST" or not isinstance(body, dict):
            continue
        key = json.dumps([e.get("path"), {k: v for k, v in body.items() if k != "cursor"}], sort_keys=True)
        chains[key] += 1
        if body.get("cursor"):
            paged.add(key)
    return max((n for key, n in chains.items() if key in paged), default=0)


def default_concurrency(target: str) -> int:
    """The requests in flight a target's plan uses when `http.concurrency` is not given."""
    return DC_CONCURRENCY if target == desired.DC else HttpSettings().concurrency


def run(sim: Sim, target: str, work: Path, *, concurrency: int | None = None, compare: bool = True,
        latency_s: float = 0.0) -> dict[str, Any]:
    """Plan `target` at `concurrency` (None: the target's default, not written in the desired file), then
    (when `compare`) at concurrency 1; returns the result row."""
    state = sim.state(target)
    people, groups = desired.people_of(state, target)
    want = desired.drifted(people, groups)
    used = concurrency or default_concurrency(target)
    fast_dir = desired.write(work / f"plan-{target}-c{used}", target, sim.url, want, groups,
                             concurrency=concurrency)
    fast = plan_once(sim, fast_dir, work / f"plan-{target}-c{used}.json", used, latency_s)
    row: dict[str, Any] = {"name": f"plan {target}", "target": target, "users": len(people),
                           "groups": len(groups), "desired_users": len(want), "fast": fast.to_json()}
    if compare:
        slow_dir = desired.write(work / f"plan-{target}-c1", target, sim.url, want, groups, concurrency=1)
        slow = plan_once(sim, slow_dir, work / f"plan-{target}-c1.json", 1, latency_s)
        row["concurrency_1"] = slow.to_json()
        row["speedup"] = round(slow.run.seconds / fast.run.seconds, 2)
        row["same_plan"] = slow.digest == fast.digest
    if target == desired.CLOUD:  # the user read as one unsplit cursor chain: issue 15's fallback floor
        row["single_chain"] = math.ceil(len(state["users"]) / CLOUD_PAGE)
        row["single_chain_floor_s"] = round(row["single_chain"] * latency_s, 2)
    return row
