"""A timeline of one IdP bench read, `python -m bench.lane_timeline scim|google [USERS GROUPS MEMBERSHIPS
[CONCURRENCY]]`: the bench's simulator and reader script (bench/scim_bench.py, bench/google_bench.py), with each
request's lane wait, write and answer recorded in the reader (httpcore's trace), then summarised: start-up,
requests in flight per 0.5 s, time per request, the group pages' span, and what happens after the last answer.
A measuring tool, not a bench row (bench/idp_timeline.py: the same for Entra ID and Okta, on both processes'
clocks).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import google_bench, scim_bench
from bench.idp_read import served
from bench.runner import process_cpu
from tests.support.net import free_port
from tests.support.simproc import ROOT, child_env

# Run in the reader before the bench's script: wraps `Lanes.handle_async_request` (queued, lane taken, request
# written, answer's headers, returned) and notes when the timed read starts and ends.
PRELUDE = r'''
import atexit as _atexit, json as _json, os as _os, time as _t
import reconcile.http.transport as _transport
_EVENTS, MARKS = [], {}
async def _timed(self, request):
    queued, marks = _t.perf_counter(), {}
    async def trace(event, info):
        marks[event.rsplit(".", 2)[-2] + "." + event.rsplit(".", 1)[-1]] = _t.perf_counter()
    request.extensions["trace"] = trace
    async with self._slots:
        lane, taken = self._free.pop(), _t.perf_counter()
        try:
            return await lane.handle_async_request(request)
        finally:
            done = _t.perf_counter()  # `Lane` reads whole answers and says only "written": the answer is the return
            _EVENTS.append((queued, taken, done, request.url.path, marks.get("send_request_body.complete"),
                            marks.get("receive_response_headers.complete") or done))
            self._free.append(lane)
_transport.Lanes.handle_async_request = _timed
_atexit.register(lambda: open(_os.environ["TIMELINE_OUT"], "w").write(_json.dumps({"events": _EVENTS, "marks": MARKS})))
'''


def timeline(source: str, users: int, groups: int, memberships: int, concurrency: int = 8, *,
             latency_ms: float = 25.0) -> dict[str, Any]:
    """Serve the bench's world of `source` (scim, google), read it once at `concurrency` with the timeline
    recorded; the summary."""
    from reconcile.sim.scim.world import SCIM_TOKEN

    bench = {"scim": scim_bench, "google": google_bench}[source]
    timed = "state = run(source.read())"
    assert timed in bench.READER
    reader = PRELUDE + bench.READER.replace(
        timed, f"MARKS['start'] = time.perf_counter(); {timed}; MARKS['end'] = time.perf_counter()")
    port = free_port()
    args = {"users": users, "groups": groups, "memberships": memberships, "seed": 1, "latency_ms": latency_ms,
            "port": port, "max_results": 100, "nested": 20}
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "timeline.json"
        with served(bench.SERVER, args, name=source, log_path=Path(work) / "sim.log") as (proc, url, _):
            read: dict[str, Any] = {"concurrency": concurrency}
            if source == "scim":
                read.update(url=f"{url}/scim/v2", token=SCIM_TOKEN, page_size=100)
            else:
                read.update(url=url, key=str(google_bench.KEY), subject=google_bench.ADMIN)
            sim_before = process_cpu(proc.pid)
            child = subprocess.run([sys.executable, "-c", reader, json.dumps(read)], capture_output=True, text=True,
                                   cwd=str(ROOT), env={**child_env(), "TIMELINE_OUT": str(out)}, check=False)
            sim_cpu = process_cpu(proc.pid) - sim_before
        if child.returncode != 0:
            raise RuntimeError(f"the reader failed:\n{child.stderr[-3000:]}")
        result = json.loads(child.stdout.strip().splitlines()[-1])
        recorded = json.loads(out.read_text())
    return summary(recorded, result, concurrency, latency_ms, sim_cpu)


def summary(recorded: dict[str, Any], result: dict[str, Any], concurrency: int, latency_ms: float,
            sim_cpu: float) -> dict[str, Any]:
    start, end = recorded["marks"]["start"], recorded["marks"]["end"]
    cpu = float(result["cpu_s"] if "cpu_s" in result else result["cpu_seconds"])
    events = sorted(recorded["events"], key=lambda e: e[1])
    n = len(events)
    first_written = min(e[4] or e[1] for e in events) - start
    last_answer = max(e[2] for e in events) - start
    busy = sum(e[2] - e[1] for e in events)
    span = last_answer - (events[0][1] - start)
    buckets = [0.0] * (int((end - start) / 0.5) + 1)
    for _, taken, done, *_rest in events:
        a, b = taken - start, done - start
        for k in range(int(a / 0.5), min(len(buckets), int(b / 0.5) + 1)):
            overlap = min(b, (k + 1) * 0.5) - max(a, k * 0.5)
            buckets[k] += max(0.0, overlap) / 0.5
    written = [e for e in events if e[4] and e[5]]
    group_pages = [e for e in events if "/Groups" in e[3] or e[3].endswith("/groups")]
    floor = n / concurrency * latency_ms / 1000
    return {
        "wall_s": round(result["seconds"], 2), "floor_s": round(floor, 2),
        "vs_floor": round(result["seconds"] / floor, 2),
        "requests": n, "reader_cpu_s": round(cpu, 2), "sim_cpu_s": round(sim_cpu, 2),
        "first_request_written_ms": round(first_written * 1000), "last_answer_s": round(last_answer, 2),
        "after_last_answer_s": round(end - start - last_answer, 2), "mean_in_flight": round(busy / span, 2),
        "mean_request_ms": round(busy / n * 1000, 1),
        "lane_to_written_ms": round(sum(e[4] - e[1] for e in written) / len(written) * 1000, 1) if written else None,
        "written_to_answer_ms": round(sum(e[5] - e[4] for e in written) / len(written) * 1000, 1) if written else None,
        "in_flight_per_half_second": [round(b, 1) for b in buckets],
        "group_pages_s": [round(min(e[1] for e in group_pages) - start, 2),
                          round(max(e[2] for e in group_pages) - start, 2)] if group_pages else None,
        "first_requests": [(e[3], round((e[1] - start) * 1000), round((e[2] - start) * 1000)) for e in events[:24]],
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


if __name__ == "__main__":
    numbers = [int(a) for a in sys.argv[2:6]] or [100_000, 2_000, 400_000]
    print(json.dumps(timeline(sys.argv[1], *numbers), indent=1))
