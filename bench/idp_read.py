"""What the three IdP read rows (entra, okta, google) share: the simulator's CPU from /proc/<pid>/stat,
the latency floor (requests / concurrency x latency) and the targets of issue 13 (<= 1.3x floor, <= 400 MB).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support.simproc import ROOT, child_env

FLOOR_RATIO, RSS_MB = 1.3, 400.0


def measured(row: dict[str, Any], *, sim_cpu_s: float, concurrency: int, latency_ms: float, wall_s: float,
             rss_mb: float) -> dict[str, Any]:
    """The common columns of one read: floor, ratio, simulator CPU and whether the targets are met."""
    floor = row["requests"] / concurrency * latency_ms / 1000
    ratio = round(wall_s / floor, 2) if floor else None
    return {**row, "sim_cpu_s": round(sim_cpu_s, 2), "floor_s": round(floor, 2), "wall_over_floor": ratio,
            "targets_met": ratio is not None and ratio <= FLOOR_RATIO and rss_mb <= RSS_MB}


@contextmanager
def served(script: str, args: dict[str, Any], *, name: str,
           log_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, float]]:
    """Run `python -c script json(args)` (a simulator serving `args["port"]`) until it answers `/_sim/stats`;
    yields the process, its URL and the seconds it took to start; stops it afterwards."""
    with log_path.open("wb") as handle:
        proc = subprocess.Popen([sys.executable, "-c", script, json.dumps(args)], stdin=subprocess.DEVNULL,
                                stdout=handle, stderr=subprocess.STDOUT, env=child_env(), cwd=str(ROOT))
    url = f"http://127.0.0.1:{args['port']}"
    try:
        started = time.monotonic()
        while True:
            try:
                httpx.get(f"{url}/_sim/stats", timeout=2.0).raise_for_status()
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() - started > 300:
                    raise RuntimeError(f"the {name} simulator did not start: {log_path.read_text()[-2000:]}") from None
                time.sleep(0.2)
        yield proc, url, time.monotonic() - started
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
