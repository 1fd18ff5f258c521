"""The simulator as a real HTTP server: the background-thread helper and the `reconcile sim` command."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from reconcile.sim.app import build_app
from reconcile.sim.scenario import parse_scenario
from reconcile.sim.server import running, runtime
from tests.support.cli import reconcile
from tests.support.net import free_port
from tests.support.sim import ADMIN_TOKEN, WORLD

ROOT = Path(__file__).resolve().parents[2]


def test_running_serves_the_api_on_a_free_loopback_port() -> None:
    with running(build_app(parse_scenario(WORLD))) as url:
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
            me = client.get("/rest/api/user/current").json()
            assert me["username"] == "admin"
            assert client.put("/rest/api/user/dave/group/team-docs").status_code == 204
            state = client.get("/_sim/state").json()["confluence-dc"]
    assert next(g for g in state["groups"] if g["name"] == "team-docs")["members"] == ["alice", "bob", "dave"]
    with pytest.raises(httpx.ConnectError):  # stopped on exit
        httpx.get(url + "/rest/api/user/current", timeout=2)


def test_a_reset_over_real_tcp_drops_the_connection() -> None:
    with running(build_app(parse_scenario(WORLD))) as url, httpx.Client(base_url=url) as client:
        client.put("/_sim/faults", json={"reset_rate": 1.0, "paths": ["/rest/api/group"]})
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            client.get("/rest/api/group", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert client.get("/rest/api/user/current").status_code == 200  # other paths unaffected


@pytest.mark.slow
def test_reconcile_sim_serves_the_example_world() -> None:
    port = free_port()
    command = [sys.executable, "-m", "reconcile.cli", "sim", "--port", str(port), "--latency-ms", "1"]
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                me = httpx.get(url + "/rest/api/user/current", timeout=1,
                               headers={"Authorization": "Bearer example-admin-token"})
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
                assert time.monotonic() < deadline, "reconcile sim did not answer within 30 s"
                time.sleep(0.1)
        assert me.json()["username"] == "admin"
        settings = httpx.get(url + "/_sim/faults").json()
        assert settings["latency_ms"] == 1.0
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.parametrize(("text", "problem"), [
    ("users:\n  - bogus: [\n", "bad.yaml:3:1: not valid YAML"),
    ("users: 5\n", "bad.yaml:1:1: unknown key 'users' in the scenario"),
])
def test_a_bad_scenario_is_one_located_message_and_exit_1_not_a_traceback(
        tmp_path: Path, text: str, problem: str) -> None:
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(text)
    result = reconcile("sim", "--scenario", str(scenario), "--port", str(free_port()))
    assert result.exit_code == 1
    assert "Error: 1 problem in the scenario:" in result.stderr and problem in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def _runtime_route(app: Starlette) -> Starlette:
    """`GET /_runtime`: the serving event loop's module and the uvicorn protocol module that parsed the request
    (found on the call stack: the handler runs inside that protocol's request cycle)."""

    async def where(request: Request) -> JSONResponse:
        frame, modules = sys._getframe(), set()
        while frame is not None:
            modules.add(str(frame.f_globals.get("__name__", "")))
            frame = frame.f_back  # type: ignore[assignment]
        protocols = sorted(m for m in modules if m.startswith("uvicorn.protocols.http."))
        return JSONResponse({"loop": type(asyncio.get_running_loop()).__module__, "http": protocols})

    app.router.routes.insert(0, Route("/_runtime", where))
    return app


def test_running_serves_on_uvloop_and_httptools_when_installed() -> None:
    pytest.importorskip("uvloop")
    pytest.importorskip("httptools")
    assert runtime() == ("uvloop", "httptools")
    with running(_runtime_route(build_app(parse_scenario(WORLD)))) as url:
        seen = httpx.get(url + "/_runtime").json()
    assert seen == {"loop": "uvloop", "http": ["uvicorn.protocols.http.httptools_impl"]}


def test_without_uvloop_and_httptools_it_serves_on_asyncio_and_h11(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` raises ImportError (as on Windows)
    monkeypatch.setitem(sys.modules, "httptools", None)
    assert runtime() == ("asyncio", "h11")
    with running(_runtime_route(build_app(parse_scenario(WORLD)))) as url:
        seen = httpx.get(url + "/_runtime").json()
    assert seen["http"] == ["uvicorn.protocols.http.h11_impl"]
    assert seen["loop"].startswith("asyncio")
