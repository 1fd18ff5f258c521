"""What the three IdP read rows (entra, okta, google) share: the simulator's CPU from /proc/<pid>/stat,
the latency floor (requests / concurrency x latency) and the targets of issue 13 (<= 1.3x floor, <= 400 MB).
"""

from __future__ import annotations

import os
from typing import Any

FLOOR_RATIO, RSS_MB = 1.3, 400.0


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live child process (0.0 where /proc is not there)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


def measured(row: dict[str, Any], *, sim_cpu_s: float, concurrency: int, latency_ms: float, wall_s: float,
             rss_mb: float) -> dict[str, Any]:
    """The common columns of one read: floor, ratio, simulator CPU and whether the targets are met."""
    floor = row["requests"] / concurrency * latency_ms / 1000
    ratio = round(wall_s / floor, 2) if floor else None
    return {**row, "sim_cpu_s": round(sim_cpu_s, 2), "floor_s": round(floor, 2), "wall_over_floor": ratio,
            "targets_met": ratio is not None and ratio <= FLOOR_RATIO and rss_mb <= RSS_MB}
