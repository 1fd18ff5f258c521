"""Runs one `reconcile` command as a child process: wall time, peak RSS (os.wait4), exit code, output."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.simproc import ROOT, child_env, reconcile_command


@dataclass(frozen=True, slots=True)
class Run:
    args: tuple[str, ...]
    returncode: int
    seconds: float
    peak_rss_mb: float  # of this child alone (wait4's rusage), not the benchmark driver
    cpu_seconds: float  # user + system time of the child
    stdout: str
    stderr: str


def reconcile(args: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None,
              timeout: float = 900.0) -> Run:
    """`reconcile ARGS` with `env` added to this environment; never raises for a non-zero exit."""
    command = [*reconcile_command(), *args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                env=child_env(**env), cwd=str(cwd or ROOT))
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(tuple(command), proc.returncode, seconds, usage.ru_maxrss / 1024.0,
                   usage.ru_utime + usage.ru_stime,
                   out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"))


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (/proc/<pid>/stat utime + stime); 0 if unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # fields 14 and 15 of stat(5)


def floor_row(*, wall: float, client_cpu: float, sim_cpu: float, peak_rss_mb: float, requests: int,
              floor_s: float, floor_how: str) -> dict[str, Any]:
    """The columns every bench row reports (section files add theirs beside them): wall, client CPU,
    simulator CPU, peak RSS, requests, the latency floor, how it is computed, and wall / floor."""
    return {"wall_s": round(wall, 3), "client_cpu_s": round(client_cpu, 2), "sim_cpu_s": round(sim_cpu, 2),
            "peak_rss_mb": round(peak_rss_mb, 1), "requests": requests, "floor_s": round(floor_s, 3),
            "floor_how": floor_how, "vs_floor": round(wall / floor_s, 3) if floor_s > 0 else None}
