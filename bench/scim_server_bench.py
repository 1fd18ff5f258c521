"""SCIM interoperability row: `ScimSource.read()` of a seeded scim2-server, someone else's SCIM implementation.

`run()` starts scim2-server (tests/support/scim_server.py; pages of at most `max_results`), seeds it through its own
Bulk endpoint, then reads it in a child process (so peak RSS is the reader's alone) at concurrency 8 and 1.
scim2-server keeps everything in memory and answers from one thread, so seeding 100,000 users is out of
reach here: this row is small and shows interoperability, not speed; the 100,000-user row reads the simulator
(bench/scim_bench.py; docs/performance.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
MEMBERSHIPS_PER_USER = 4
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"

READER = """
import json, resource, sys, time
from reconcile.aio import run
from reconcile.config.idp_scim import ScimGroupsSettings, ScimSourceSettings
from reconcile.settings import HttpSettings, Secret
from reconcile.sources.scim import ScimSource
a = json.loads(sys.argv[1])
config = ScimSourceSettings(name="bench", url=a["url"], token=Secret(a["token"], "${SCIM_TOKEN}"),
                          page_size=a["page_size"], groups=ScimGroupsSettings(map=(("g*", "team-*"),)),
                          http=HttpSettings(concurrency=a["concurrency"], timeout=120))
source = ScimSource(config)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
state = run(source.read())  # not asyncio.run: it would repr() the result (reconcile/aio.py)
seconds = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
after, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "users": len(state.users), "groups": len(state.groups),
                  "memberships": sum(len(u.groups) for u in state.users.values()), "requests": source.requests,
                  "rss_before_kb": before, "rss_after_kb": after}))
"""


def _fixture() -> ModuleType:
    """The real scim2-server fixture the tests use (tests/support/scim_server.py)."""
    from tests.support import scim_server

    return scim_server


def _chunks(operations: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """At most 1,000 operations and 900 kB per request (the server's maxOperations and maxPayloadSize)."""
    chunks: list[list[dict[str, Any]]] = [[]]
    size = 0
    for operation in operations:
        length = len(json.dumps(operation))
        if chunks[-1] and (len(chunks[-1]) == 1000 or size + length > 900_000):
            chunks.append([])
            size = 0
        chunks[-1].append(operation)
        size += length
    return chunks


def _bulk(client: httpx.Client, operations: list[dict[str, Any]]) -> list[str]:
    """POST /Bulk in chunks the server accepts; the ids created, in order."""
    ids: list[str] = []
    for chunk in _chunks(operations):
        response = client.post("/Bulk", json={"schemas": [BULK], "Operations": chunk}, timeout=600)
        response.raise_for_status()
        for result in response.json()["Operations"]:
            if str(result.get("status")) != "201":
                raise RuntimeError(f"bulk create failed: {result}")
            ids.append(result["location"].rstrip("/").rsplit("/", 1)[-1])
    return ids


def seed(client: httpx.Client, users: int, groups: int) -> None:
    """`users` users (every tenth inactive) and `groups` groups holding 4 memberships per user."""
    user_ops = [{"method": "POST", "path": "/Users", "bulkId": f"u{i}",
                 "data": {"schemas": [USER], "userName": f"p{i:06d}", "active": i % 10 != 0,
                          "emails": [{"value": f"p{i:06d}@bench.example.org", "primary": True}]}}
                for i in range(users)]
    user_ids = _bulk(client, user_ops)
    members: list[list[str]] = [[] for _ in range(groups)]
    step = max(1, groups // MEMBERSHIPS_PER_USER)
    for i, uid in enumerate(user_ids):
        for k in {(i + k * step) % groups for k in range(MEMBERSHIPS_PER_USER)}:
            members[k].append(uid)
    group_ops = [{"method": "POST", "path": "/Groups", "bulkId": f"g{g}",
                  "data": {"schemas": [GROUP], "displayName": f"g{g:05d}",
                           "members": [{"value": m, "type": "User"} for m in ms]}}
                 for g, ms in enumerate(members)]
    _bulk(client, group_ops)


def run(users: int = 10_000, groups: int = 200, max_results: int = 1000) -> dict[str, Any]:
    """Seed the server, read it with ScimSource at concurrency 8 and 1; wall seconds, requests, peak RSS."""
    fixture = _fixture()
    fixture.SERVICE_PROVIDER_CONFIG["filter"]["maxResults"] = max_results
    with tempfile.TemporaryDirectory(prefix="reconcile-scim-bench-") as tmp:
        server = fixture.start_scim_server(Path(tmp), token="bench-token")
        try:
            started = time.perf_counter()
            with server.client() as client:
                seed(client, users, groups)
            seed_seconds = time.perf_counter() - started
            reads = {}
            for concurrency in (8, 1):
                args = {"url": server.base, "token": server.token, "page_size": max_results, "concurrency": concurrency}
                child = subprocess.run([sys.executable, "-c", READER, json.dumps(args)], capture_output=True,
                                       text=True, cwd=str(ROOT), timeout=1800, check=False)
                if child.returncode != 0:
                    raise RuntimeError(f"SCIM bench reader failed:\n{child.stderr[-3000:]}")
                reads[concurrency] = json.loads(child.stdout.strip().splitlines()[-1])
        finally:
            server.stop()
    fast, slow = reads[8], reads[1]
    return {
        "name": "scim source read of scim2-server (interoperability)",
        "users": fast["users"], "groups": fast["groups"], "memberships": fast["memberships"],
        "seed_seconds": round(seed_seconds, 1),
        "requests": fast["requests"],
        "wall_seconds": round(fast["seconds"], 2),
        "wall_seconds_concurrency_1": round(slow["seconds"], 2),
        "reader_cpu_seconds": round(fast["cpu_seconds"], 2),  # the client's own share (imports included)
        "same_result": (fast["users"], fast["memberships"]) == (slow["users"], slow["memberships"]),
        "peak_rss_mb": round(fast["rss_after_kb"] / 1024, 1),
    }


if __name__ == "__main__":
    print(json.dumps(run(*(int(a) for a in sys.argv[1:3])), indent=2))
