"""`make bench` (`python -m bench`): SPEC §11's performance table, printed and written to bench/results.json.

Sections: plan (a; `--only plan-dc` or `plan-cloud`: one target's rows alone), apply under a rate limit (b),
serialized DC deletions (c), planner alone (d), LDAP read (e), Entra ID (f), Okta (g), SCIM (h) and Google
Workspace (i) source reads, and the simulator's own start time and CPU per page (sim). `--scale smoke`
runs every section at toy sizes in seconds (tests/bench/test_bench_smoke.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import apply_bench, plan_bench, planner, report
from tests.support import desired, simproc

log = logging.getLogger("bench")
SECTIONS = ("plan", "apply", "delete", "planner", "ldap", "entra", "okta", "scim", "google", "sim")  # a whole run
PLAN_PARTS = {"plan-dc": (desired.DC,), "plan-cloud": (desired.CLOUD,)}  # one target's rows of `plan`, for --only


@dataclass(frozen=True, slots=True)
class Scale:
    plan: simproc.World
    apply: simproc.World
    changes: int
    rate: float
    delete: simproc.World
    deletions: int
    planner: tuple[int, int, int]
    ldap: tuple[int, int] | None  # users, groups; None: skipped
    repeat: int
    google: simproc.World  # a generated Google Workspace account and its latency
    entra: tuple[int, int, int] = (100_000, 2_000, 400_000)  # users, groups, memberships of the Entra tenant
    okta: tuple[int, int, int, float] = (100_000, 2_000, 400_000, 25.0)  # users, groups, memberships, latency ms
    scim: tuple[int, int, int, float] = (100_000, 2_000, 400_000, 25.0)  # the SCIM simulator: + latency ms
    scim_server: tuple[int, int, int] = (2_000, 40, 1000)  # scim2-server (interoperability): users, groups, page
    sim_pages: int = 100  # pages per read route the `sim` section measures (its world: `plan`'s)


FULL = Scale(
    plan=simproc.World(100_000, 2_000, 400_000, latency_ms=25),
    apply=simproc.World(2_000, 60, 8_000, latency_ms=25, rate_limit=100),
    changes=2_000, rate=100,
    delete=simproc.World(2_000, 20, 4_000, latency_ms=25, delete_seconds=0.25),
    deletions=200,
    planner=(100_000, 2_000, 400_000),
    ldap=(100_000, 2_000),
    repeat=3,
    google=simproc.World(100_000, 2_000, 400_000, latency_ms=25),
)
SMOKE = Scale(
    plan=simproc.World(300, 12, 1_200, latency_ms=2),
    apply=simproc.World(200, 12, 800, latency_ms=2, rate_limit=50),
    changes=40, rate=50,
    delete=simproc.World(200, 6, 400, latency_ms=2, delete_seconds=0.05),
    deletions=5,
    planner=(2_000, 40, 8_000),
    ldap=None,
    repeat=1,
    entra=(300, 12, 1_200),
    okta=(300, 12, 1_200, 2.0),
    scim=(300, 12, 1_200, 2.0),
    scim_server=(60, 6, 10),
    google=simproc.World(300, 12, 1_200, latency_ms=2),
    sim_pages=5,
)


def _plan(scale: Scale, work: Path, targets: Sequence[str] = (desired.DC, desired.CLOUD)) -> list[dict[str, Any]]:
    rows = []
    with simproc.running(scale.plan, workdir=work) as sim:
        for target in targets:
            log.info("plan %s ...", target)
            rows.append(plan_bench.run(sim, target, work, latency_s=scale.plan.latency_ms / 1000))
    return rows


def _apply(scale: Scale, work: Path) -> list[dict[str, Any]]:
    rows = []
    for target in (desired.DC, desired.CLOUD):
        with simproc.running(scale.apply, workdir=work) as sim:
            log.info("apply %d membership changes on %s ...", scale.changes, target)
            rows.append(apply_bench.memberships(sim, target, work, changes=scale.changes, rate=scale.rate))
    return rows


def _delete(scale: Scale, work: Path) -> list[dict[str, Any]]:
    with simproc.running(scale.delete, workdir=work) as sim:
        log.info("%d deletions ...", scale.deletions)
        seconds = scale.delete.delete_seconds or 0.0
        return [apply_bench.deletions(sim, work, count=scale.deletions, task_seconds=seconds)]


def _planner(scale: Scale) -> dict[str, Any]:
    users, groups, memberships = scale.planner
    return planner.run(users, groups, memberships, repeat=scale.repeat)


def _ldap(scale: Scale) -> dict[str, Any]:
    if scale.ldap is None:
        return {"available": False, "why": "skipped at this scale"}
    try:
        from bench import ldap_bench
    except ImportError as exc:
        return {"available": False, "why": f"bench/ldap_bench.py is not there ({exc})"}
    run: Callable[..., dict[str, Any]] | None = getattr(ldap_bench, "run", None)
    if run is None:
        return {"available": False, "why": "bench/ldap_bench.py has no run()"}
    users, groups = scale.ldap
    try:
        return run(users=users, groups=groups)
    except Exception as exc:  # slapd missing, etc.: a row saying why, not a crashed benchmark
        return {"available": False, "why": f"{type(exc).__name__}: {exc}"[:300]}


def _entra(scale: Scale) -> dict[str, Any]:
    from bench import entra_bench

    users, groups, memberships = scale.entra
    return entra_bench.run(users, groups, memberships, latency_ms=scale.plan.latency_ms)


def _okta(scale: Scale, work: Path) -> dict[str, Any]:
    from bench import okta_bench

    users, groups, memberships, latency_ms = scale.okta
    log.info("okta source read of %d users ...", users)
    return okta_bench.run(users, groups, memberships, latency_ms=latency_ms, workdir=work)


def _scim(scale: Scale, work: Path) -> dict[str, Any]:
    from bench import scim_bench

    users, groups, memberships, latency_ms = scale.scim
    log.info("scim source read of %d users (simulator) ...", users)
    return scim_bench.run(users, groups, memberships, latency_ms=latency_ms, workdir=work)


def _scim_server(scale: Scale) -> dict[str, Any]:
    from bench import scim_server_bench

    users, groups, page = scale.scim_server
    try:
        return scim_server_bench.run(users=users, groups=groups, max_results=page)
    except Exception as exc:  # scim2-server missing, etc.: a row saying why, not a crashed benchmark
        return {"available": False, "why": f"{type(exc).__name__}: {exc}"[:300]}


def _google(scale: Scale, work: Path) -> dict[str, Any]:
    from bench import google_bench

    world = scale.google
    return google_bench.run(world.users, world.groups, world.memberships, latency_ms=world.latency_ms, work=work)


def run(scale: Scale, sections: Sequence[str], work: Path, out: Path | None = None) -> dict[str, Any]:
    """Every requested section, in order; the results as one JSON-able mapping (saved to `out` as it grows)."""
    results: dict[str, Any] = {"machine": report.machine(), "scale": scale.plan.users, "started": time.time()}
    timings: dict[str, float] = {}
    for name in sections:
        started = time.perf_counter()
        if name == "plan":
            results["plan"] = _plan(scale, work)
        elif name in PLAN_PARTS:
            results["plan"] = _plan(scale, work, PLAN_PARTS[name])
        elif name == "apply":
            results["apply"] = _apply(scale, work)
        elif name == "delete":
            results["delete"] = _delete(scale, work)
        elif name == "planner":
            results["planner"] = _planner(scale)
        elif name == "ldap":
            results["ldap"] = _ldap(scale)
        elif name == "entra":
            results["entra"] = _entra(scale)
        elif name == "okta":
            results["okta"] = _okta(scale, work)
        elif name == "scim":
            results["scim"] = _scim(scale, work)
            results["scim_server"] = _scim_server(scale)
        elif name == "google":
            results["google"] = _google(scale, work)
        elif name == "sim":
            from bench import sim_bench

            results["sim"] = sim_bench.run(scale.plan, scale.sim_pages, work)
        timings[name] = round(time.perf_counter() - started, 1)
        results["section_seconds"] = timings
        if out is not None:  # a later section failing keeps what was measured
            out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scale", choices=("full", "smoke"), default="full")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated subset of {SECTIONS} (or {tuple(PLAN_PARTS)})")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results.json")
    parser.add_argument("--work", type=Path, default=None, help="keep generated files here (default: a temp dir)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS) - set(PLAN_PARTS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    scale = FULL if args.scale == "full" else SMOKE
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
        results = run(scale, sections, args.work, args.out)
    else:
        with tempfile.TemporaryDirectory(prefix="reconcile-bench-") as tmp:
            results = run(scale, sections, Path(tmp), args.out)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(report.table(report.lines(results), results["machine"]))
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
