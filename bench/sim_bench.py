"""The simulator's own costs (issue 15 item 1): how long a generated world takes to start, and the CPU one page
of each read route the DC and Cloud readers use costs the app (in-process, no latency: the app alone).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.runner import process_cpu
from reconcile.sim.app import build_app, cloud_generated
from reconcile.sim.atlassian_cloud.world import DEFAULT_DIRECTORY
from reconcile.sim.confluence_dc.generate import ADMIN_PASSWORD, ADMIN_TOKEN, generate_dc
from reconcile.sim.scenario import load_scenario
from tests.support import simproc
from tests.support.net import free_port

START_TARGET_S = 3.0
PAGE_TARGET_MS = 2.0
CLOUD_KEY = "sim-cloud-key"  # a generated organization's API key


@dataclass(frozen=True, slots=True)
class Probe:
    """One read route as a reader calls it; `{page}` in `query`/`body` is replaced by the page's offset."""

    name: str
    method: str
    path: str
    query: str = ""
    body: Mapping[str, Any] | None = None
    step: int = 100  # items per page (the offset advance)
    websudo: bool = False  # the admin UI: a JSESSIONID with websudo (POST /doauthenticate.action) first


def probes(org: str, directory: str) -> list[Probe]:
    v2 = f"/admin/v2/orgs/{org}/directories"
    return [
        Probe("DC user list (expand=status)", "GET", "/rest/api/user/list", "expand=status&limit=100&start={page}"),
        Probe("DC group list", "GET", "/rest/api/group", "limit=200&start={page}", step=200),
        Probe("DC group members", "GET", "/rest/api/group/confluence-users/member", "limit=200&start={page}",
              step=200),
        Probe("DC active users (lastLogin)", "GET", "/rest/api/admin/users/list/active",
              "expand=lastLogin&limit=100&start={page}"),
        Probe("DC unsynced users (admin UI page)", "GET", "/admin/users/showallunsyncedusers.action",
              "startIndex={page}", websudo=True),
        Probe("DC licence count", "GET", "/rest/license/1.0/license/userCount", step=0),
        Probe("DC global permissions", "GET", "/rest/api/permissions", step=0),
        Probe("Cloud users search (expand groups, productAccess, platformRoles)", "POST", f"{v2}/-/users/search",
              body={"expand": ["groups", "productAccess", "platformRoles"], "limit": 100}),
        Probe("Cloud groups search", "POST", f"{v2}/{directory}/groups/search", body={"limit": 100}),
        Probe("Cloud directories", "GET", f"/admin/v2/orgs/{org}/directories", "limit=100", step=0),
    ]


def _cursor(offset: int) -> str:
    from reconcile.sim.atlassian_cloud.shapes import encode_cursor

    return encode_cursor(offset, 100)


def _totals(users: int, groups: int, memberships: int) -> dict[str, int]:
    """Items each probe's listing holds in a generated world (the rest list users)."""
    return {"DC group list": groups, "DC group members": memberships // 4,
            "DC unsynced users (admin UI page)": max(1, users // 200)}


async def _websudo(app: Any) -> bytes:
    """A `JSESSIONID=...` cookie with websudo, from the generated admin's password."""
    form = f"password={ADMIN_PASSWORD}".encode()
    headers = [(b"host", b"sim.local"), (b"authorization", f"Bearer {ADMIN_TOKEN}".encode()),
               (b"content-type", b"application/x-www-form-urlencoded")]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": form, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    path = "/doauthenticate.action"
    await app({"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
               "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
               "server": ("sim.local", 80), "client": ("127.0.0.1", 1)}, receive, send)
    cookie: bytes = next(v for k, v in sent[0]["headers"] if k == b"set-cookie")
    return cookie.split(b";", 1)[0]


async def _measure(app: Any, probe: Probe, pages: int, total: int) -> list[float]:
    """CPU seconds of each request of `probe`, driven straight through the ASGI app."""
    headers = [(b"host", b"sim.local"), (b"content-type", b"application/json")]
    if probe.websudo:
        headers.append((b"cookie", await _websudo(app)))
    if probe.path.startswith("/admin/v"):
        headers.append((b"authorization", f"Bearer {CLOUD_KEY}".encode()))
    else:
        headers.append((b"authorization", f"Bearer {ADMIN_TOKEN}".encode()))
    out: list[float] = []
    for i in range(pages):
        offset = (i * probe.step) % max(1, total - probe.step) if probe.step else 0
        query = probe.query.replace("{page}", str(offset)).encode()
        body = b""
        if probe.body is not None:
            data = dict(probe.body)
            if offset:
                data["cursor"] = _cursor(offset)
            body = json.dumps(data).encode()
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": probe.method,
                 "scheme": "http", "path": probe.path, "raw_path": probe.path.encode(), "query_string": query,
                 "root_path": "", "headers": headers, "server": ("sim.local", 80), "client": ("127.0.0.1", 1)}
        sent: list[dict[str, Any]] = []

        async def receive(body: bytes = body) -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any], sent: list[dict[str, Any]] = sent) -> None:
            sent.append(message)

        started = time.process_time()
        await app(scope, receive, send)
        out.append(time.process_time() - started)
        status = sent[0]["status"]
        if status != 200:
            raise RuntimeError(f"{probe.method} {probe.path}?{query.decode()} -> {status}: {sent[-1].get('body')!r}")
    return out


def _ms(costs: list[float]) -> tuple[float, float]:
    ms = sorted(c * 1000 for c in costs)
    return round(statistics.median(ms), 3), round(ms[max(0, int(len(ms) * 0.9) - 1)], 3)


def page_costs(users: int, groups: int, memberships: int, pages: int) -> list[dict[str, Any]]:
    """CPU ms per request of each probe in-process: `pages` distinct pages read once, then read again (cached)."""
    dc = generate_dc(users, groups, memberships, 1)
    cloud = cloud_generated(users, groups, memberships, 1)
    app = build_app(load_scenario(), dc=dc, cloud=cloud)
    world = app.state.ctx.cloud
    rows = []
    for probe in probes(world.org_id, next(iter(world.directories))):
        total = _totals(users, groups, memberships).get(probe.name, users)
        count = min(pages, max(1, total // probe.step)) if probe.step else pages
        first = asyncio.run(_measure(app, probe, count, total))
        again = asyncio.run(_measure(app, probe, count, total))
        median, p90 = _ms(first)
        rows.append({"route": probe.name, "requests": count, "median_ms": median, "p90_ms": p90,
                     "cached_median_ms": _ms(again)[0], "target_ms": PAGE_TARGET_MS})
    return rows


def served(world: simproc.World, workdir: Path, pages: int) -> dict[str, Any]:
    """Spawn `reconcile sim --users ...`: seconds and CPU to its first answer, then its CPU per page over HTTP

    (uvicorn included) for each GET/POST probe, `pages` distinct pages each (`cpu_seconds` of /_sim/stats).
    """
    port = free_port()
    command = [*simproc.reconcile_command(), "sim", "--port", str(port), *world.args()]
    log = (workdir / "sim-start.log").open("wb")
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=simproc.child_env())
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the simulator exited with {process.returncode} (log: {workdir / 'sim-start.log'})")
            try:
                httpx.get(f"{base}/_sim/stats", timeout=1.0).raise_for_status()
                break
            except httpx.TransportError:
                time.sleep(0.02)
        seconds = time.perf_counter() - started
        cpu = process_cpu(process.pid)
        httpx.put(f"{base}/_sim/faults", json={"latency_ms": 0}).raise_for_status()  # CPU, not latency
        rows = []
        with httpx.Client(base_url=base, timeout=30) as client:
            for probe in probes(simproc.CLOUD_ORG, DEFAULT_DIRECTORY):
                rows.append(_served_probe(client, probe, world, pages))
    finally:
        process.terminate()
        process.wait(10)
        log.close()
    start = {"users": world.users, "seconds": round(seconds, 2), "cpu_s": round(cpu, 2), "target_s": START_TARGET_S}
    return {"start": start, "served": rows}


def _served_probe(client: httpx.Client, probe: Probe, world: simproc.World, pages: int) -> dict[str, Any]:
    key = CLOUD_KEY if probe.path.startswith("/admin/v") else ADMIN_TOKEN
    headers = {"authorization": f"Bearer {key}"}
    total = _totals(world.users, world.groups, world.memberships).get(probe.name, world.users)
    if probe.websudo:
        login = client.post("/doauthenticate.action", data={"password": ADMIN_PASSWORD}, headers=headers)
        assert login.status_code == 302 and "JSESSIONID" in client.cookies, login.text
    count = min(pages, max(1, total // probe.step)) if probe.step else pages
    before = first = _served_cpu(client)
    for i in range(count + 1):  # the first request alone: it pays for indexes built once per world version
        if i == 1:
            first = _served_cpu(client)
        offset = i * probe.step if i < count else 0
        if probe.body is not None:
            body = dict(probe.body) | ({"cursor": _cursor(offset)} if offset else {})
            response = client.post(probe.path, json=body, headers=headers)
        else:
            response = client.get(f"{probe.path}?{probe.query.replace('{page}', str(offset))}", headers=headers)
        response.raise_for_status()
    per = (_served_cpu(client) - first) / count * 1000
    return {"route": probe.name, "requests": count + 1, "first_ms": round((first - before) * 1000, 2),
            "ms": round(per, 2), "target_ms": PAGE_TARGET_MS}


def _served_cpu(client: httpx.Client) -> float:
    """The simulator's own CPU seconds (`/_sim/stats`, microseconds; /proc's ticks are too coarse for a page)."""
    return float(client.get("/_sim/stats").json()["cpu_seconds"])


def run(world: simproc.World, pages: int, workdir: Path) -> dict[str, Any]:
    return {**served(world, workdir, pages), "pages": page_costs(world.users, world.groups, world.memberships, pages)}


def lines(row: Mapping[str, Any]) -> list[Any]:
    """The table's lines for the `sim` section (bench/report.py prints them)."""
    from bench.report import Line

    start = row["start"]
    out = [Line(f"simulator start, {start['users']} users (process start to first answer; CPU {start['cpu_s']:.1f} s)",
                f"{start['seconds']:.2f} s", f"<= {START_TARGET_S:.0f} s",
                "PASS" if start["seconds"] <= START_TARGET_S else "MISS")]
    in_app = {r["route"]: r for r in row["pages"]}
    for served_row in row["served"]:
        app_row = in_app[served_row["route"]]
        out.append(Line(f"sim CPU per page (HTTP): {served_row['route']} (first page "
                        f"{served_row['first_ms']:.0f} ms; app alone {app_row['median_ms']:.2f} ms, cached "
                        f"{app_row['cached_median_ms']:.2f} ms)", f"{served_row['ms']:.2f} ms",
                        f"<= {PAGE_TARGET_MS:.0f} ms", "PASS" if served_row["ms"] <= PAGE_TARGET_MS else "MISS"))
    return out
