"""Where each serialized DC deletion's time goes, on the simulator's clock (docs/performance.md, long tasks).

    python -m bench.delete_timeline [--count 200] [--task-seconds 0.25] [--latency-ms 25] [--work DIR]

Runs bench (c)'s world in a simulator process wrapped by an outer ASGI layer that records each request's
arrival (before the simulated latency) and the start of its answer (when it was handled), runs (c)'s
plan and apply against it, and splits the time from each task's finish to the next deletion's handling.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from starlette.types import Message, Receive, Scope, Send

from bench.apply_bench import delete_users
from tests.support import simproc
from tests.support.net import free_port

Row = dict[str, Any]


def serve(port: int, out: Path, task_seconds: float, latency_ms: float) -> None:
    """The simulator of bench (c), each request recorded as one JSON line in `out`."""
    import uvicorn

    from reconcile.sim.server import SimOptions, configured_app

    app = configured_app(SimOptions(users=2_000, groups=20, memberships=4_000, seed=1,
                                          delete_seconds=task_seconds, overrides={"latency_ms": latency_ms}))
    sink = out.open("w", encoding="utf-8", buffering=1)

    async def recorded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        row: Row = {"method": scope["method"], "path": scope["path"], "arrived": time.monotonic()}

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                row["handled"], row["status"] = time.monotonic(), message["status"]
            elif message["type"] == "http.response.body" and "/longtask/" in row["path"]:
                row["finished"] = b'"percentageComplete":100' in message.get("body", b"").replace(b" ", b"")
            await send(message)

        await app(scope, receive, answer)
        sink.write(json.dumps(row) + "\n")

    uvicorn.run(recorded, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")


def breakdown(rows: Sequence[Row], task_seconds: float) -> dict[str, Any]:
    """Per deletion after the first: finish → the poll that sees it → the next DELETE's arrival → its handling."""
    deletes = [r for r in rows if r["method"] == "DELETE" and r.get("status") == 202]
    polls = [r for r in rows if "/longtask/" in r["path"] and "handled" in r]
    parts: dict[str, list[float]] = {"poll_late": [], "turnaround": [], "latency": [], "between": []}
    early = 0
    for done, after in itertools.pairwise(deletes):
        finish = done["handled"] + task_seconds  # the task starts while its DELETE is handled
        mine = [p for p in polls if done["handled"] < p["handled"] <= after["arrived"]]
        seen = min((p for p in mine if p.get("finished")), key=lambda p: float(p["handled"]))
        early += sum(1 for p in mine if not p.get("finished"))
        parts["poll_late"].append(seen["handled"] - finish)
        parts["turnaround"].append(after["arrived"] - seen["handled"])
        parts["latency"].append(after["handled"] - after["arrived"])
        parts["between"].append(after["handled"] - finish)
    out: dict[str, Any] = {"deletions": len(deletes), "polls": len(polls),
                           "polls_before_finish_per_deletion": round(early / max(1, len(deletes) - 1), 2)}
    for name, values in parts.items():
        ordered = sorted(1000 * v for v in values)
        if ordered:
            out[f"{name}_ms"] = {"mean": round(statistics.mean(ordered), 2),
                                 "median": round(statistics.median(ordered), 2),
                                 "p90": round(ordered[int(0.9 * len(ordered))], 2), "max": round(ordered[-1], 2)}
    return out


def measure(count: int, task_seconds: float, latency_ms: float, work: Path) -> dict[str, Any]:
    port, record = free_port(), work / "requests.jsonl"
    log_path = work / "sim.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "bench.delete_timeline", "--serve", str(port),
                                 "--work", str(work), "--task-seconds", str(task_seconds),
                                 "--latency-ms", str(latency_ms)],
                                env=simproc.child_env(), cwd=str(simproc.ROOT), stdout=log, stderr=subprocess.STDOUT)
    sim = simproc.Sim(proc, f"http://127.0.0.1:{port}", log_path)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                sim.stats()
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the simulator did not start: {log_path.read_text()[-2000:]}") from None
                time.sleep(0.2)
        applied = delete_users(sim, work, count)
        violations = len(sim.entries("violation"))
    finally:
        sim.stop()
    rows = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines() if line.strip()]
    total = count * task_seconds
    return {"execution_s": round(applied.execution_seconds, 3), "ratio": round(applied.execution_seconds / total, 4),
            "client_cpu_s": round(applied.applied.cpu_seconds, 2), "violations": violations,
            **breakdown(rows, task_seconds)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--task-seconds", type=float, default=0.25)
    parser.add_argument("--latency-ms", type=float, default=25.0)
    parser.add_argument("--work", type=Path)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the simulator process itself
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve(args.serve, args.work / "requests.jsonl", args.task_seconds, args.latency_ms)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        print(json.dumps(measure(args.count, args.task_seconds, args.latency_ms, work), indent=2))


if __name__ == "__main__":
    main()
