"""The simulator as a real server in its own process (`reconcile sim` on a loopback port), and its admin API.

Benchmarks and the crash tests drive it through `/_sim/*`: stats (requests per API), the mutation
log, faults and rate limits at run time, and the world's state for assertions.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[2]
DC_TOKEN = "sim-admin-token"  # a generated world's administrator token (reconcile/sim/confluence_dc/generate.py)
CLOUD_KEY = "sim-cloud-key"  # a generated organization's API key (reconcile/sim/atlassian_cloud/world.py)
CLOUD_ORG = "9a1b2c3d-0000-4000-8000-00000000c10d"
READS = frozenset({"GET", "HEAD", "OPTIONS"})
NON_IDEMPOTENT = frozenset({"POST", "PATCH"})


def reconcile_command() -> list[str]:
    """How to run the `reconcile` CLI of this checkout (the venv's script, else `-m reconcile.cli`)."""
    script = Path(sys.executable).parent / "reconcile"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "reconcile.cli"]


def child_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", **extra}


@dataclass(frozen=True, slots=True)
class World:
    """What `reconcile sim` generates: `--users --groups --memberships --seed`, plus run-time knobs."""

    users: int
    groups: int
    memberships: int
    seed: int = 1
    latency_ms: float = 25.0
    rate_limit: float | None = None
    delete_seconds: float | None = None

    def args(self) -> list[str]:
        out = ["--users", str(self.users), "--groups", str(self.groups), "--memberships", str(self.memberships),
               "--seed", str(self.seed), "--latency-ms", str(self.latency_ms)]
        if self.rate_limit is not None:
            out += ["--rate-limit", str(self.rate_limit)]
        if self.delete_seconds is not None:
            out += ["--delete-seconds", str(self.delete_seconds)]
        return out


@dataclass(frozen=True, slots=True)
class Write:
    """One mutating request from the simulator's log (`kind: request`: it reached the handlers)."""

    method: str
    path: str
    status: int | None
    body: str  # canonical JSON of the logged body

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.method, self.path, self.body)


class Sim:
    """A running simulator process: `url`, the admin API, and `stop()`."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
        self.proc = proc
        self.url = url
        self.log_path = log_path
        self.admin = httpx.Client(base_url=url, timeout=120.0)

    def get(self, path: str, **params: Any) -> Any:
        response = self.admin.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/_sim/stats")
        return result

    def requests(self) -> int:
        """API requests served since the log was last cleared (reads included, `/_sim/*` excluded)."""
        return int(sum(self.stats()["requests"].values()))

    def clear_log(self) -> None:
        self.admin.delete("/_sim/log").raise_for_status()

    def entries(self, kind: str | None = None) -> list[dict[str, Any]]:
        params = {"kind": kind} if kind else {}
        result: list[dict[str, Any]] = self.get("/_sim/log", **params)["entries"]
        return result

    def writes(self) -> list[Write]:
        """Writes that reached the simulated API's handlers (see `writes_of`)."""
        return writes_of(self.get("/_sim/log")["entries"])

    def faults(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        response = self.admin.put("/_sim/faults", json=dict(changes))
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def state(self, api: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/_sim/state", api=api)[api]
        return result

    def stop(self) -> None:
        self.admin.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def writes_of(entries: Iterable[Mapping[str, Any]]) -> list[Write]:
    """Mutating requests that reached the handlers, from `/_sim/log` entries, in order.

    That is every `request` entry plus the faults noted "reset after processing" (the change was
    made, the client never saw the answer). Requests refused by an injected 5xx, a 429 or a reset
    before processing never reached the handlers. Cloud's `POST …/search` reads are left out.
    """
    out = []
    for e in entries:
        reached = e["kind"] == "request" or (e["kind"] == "fault" and e.get("note") == "reset after processing")
        if not reached or e["api"] == "sim" or e["method"] in READS:
            continue
        if e["path"].split("?", 1)[0].endswith("/search"):
            continue
        out.append(Write(e["method"], e["path"], e["status"], json.dumps(e["body"], sort_keys=True)))
    return out


def duplicated(writes: Sequence[Write], *, methods: Collection[str] | None = None) -> dict[tuple[str, str, str], int]:
    """Writes (method, path, body) that reached the handlers more than once, optionally of `methods` only."""
    counts = Counter(w.key for w in writes if methods is None or w.method in methods)
    return {k: n for k, n in counts.items() if n > 1}


def start(world: World | None = None, *, port: int | None = None, scenario: Path | None = None,
          extra: Sequence[str] = (), workdir: Path | None = None, timeout: float = 180.0) -> Sim:
    """Start `reconcile sim` on loopback and wait until `/_sim/stats` answers."""
    port = port or free_port()
    args = [*reconcile_command(), "sim", "--port", str(port), *(world.args() if world else []), *extra]
    if scenario is not None:
        args += ["--scenario", str(scenario)]
    log_dir = workdir or Path(os.environ.get("TMPDIR", "/tmp"))
    log_path = log_dir / f"reconcile-sim-{port}.log"
    handle = log_path.open("wb")
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT,
                            env=child_env(), cwd=str(ROOT))
    handle.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(f"{url}/_sim/stats", timeout=2.0).raise_for_status()
            break
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                raise RuntimeError(f"the simulator did not start on {url}: {log_path.read_text()[-2000:]}") from None
            time.sleep(0.1)
    return Sim(proc, url, log_path)


@contextmanager
def running(world: World | None = None, **kwargs: Any) -> Iterator[Sim]:
    sim = start(world, **kwargs)
    try:
        yield sim
    finally:
        sim.stop()
