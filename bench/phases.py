"""Where a plan's time and memory go: desired read, target fetch, diff — wall, CPU and peak RSS per phase.

    python -m bench.phases DESIRED_DIR [--profile OUT.html]

Runs in this process against whatever the desired directory's target points at (e.g. a running
`reconcile sim --users 100000 ...`); `--profile` wraps the whole plan in pyinstrument.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
NOW = datetime(2026, 1, 1, tzinfo=UTC)  # a fixed planning time: benchmarks compare runs


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measured(name: str, work: Callable[[], T], report: list[str]) -> T:
    wall, cpu = time.perf_counter(), _cpu()
    result = work()
    report.append(f"{name:<8} wall {time.perf_counter() - wall:7.2f} s  cpu {_cpu() - cpu:7.2f} s  "
                  f"peak RSS so far {_rss_mb():6.0f} MB")
    return result


def phases(directory: Path) -> list[str]:
    from reconcile import aio, config
    from reconcile.desired import read_desired
    from reconcile.diff import diff
    from reconcile.targets.factory import build_target

    report: list[str] = [f"start    peak RSS {_rss_mb():.0f} MB"]
    cfg = measured("config", lambda: config.load(directory), report)
    wanted = measured("desired", lambda: read_desired(cfg), report)

    async def fetch() -> object:
        target = build_target(cfg.target)
        try:
            return await target.fetch(cfg.scope)
        finally:
            await target.aclose()

    actual = measured("fetch", lambda: aio.run(fetch()), report)  # as `reconcile plan` runs it (uvloop; no result repr)
    plan = measured("diff", lambda: diff(wanted, actual, scope=cfg.scope, policy=cfg.policy,  # type: ignore[arg-type]
                                         target=cfg.target.address(), now=NOW), report)
    measured("dumps", plan.dumps, report)
    report.append(f"actions  {len(plan.actions)}")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.phases", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--profile", type=Path, default=None, help="write a pyinstrument HTML profile here")
    args = parser.parse_args(argv)
    if args.profile is None:
        print("\n".join(phases(args.directory)))
        return 0
    from pyinstrument import Profiler

    with Profiler(async_mode="disabled") as profiler:
        report = phases(args.directory)
    args.profile.write_text(profiler.output_html(), encoding="utf-8")
    print("\n".join(report))
    print(profiler.output_text(unicode=False, color=False, show_all=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
