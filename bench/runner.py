"""Runs one `reconcile` command as a child process: wall time, peak RSS (os.wait4), exit code, output."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

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
