"""Item 13: nothing listening is reported at once (URL, what happened, what to do); only transient
failures are retried, each retry logged at WARNING. Sleeps go through a fake clock: nothing waits."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from reconcile.errors import TargetError
from reconcile.http import HttpClient
from reconcile.settings import HttpSettings
from reconcile.sim.app import build_app
from reconcile.sim.control import Faults, SimSettings
from reconcile.sim.scenario import parse_scenario
from reconcile.sim.server import running
from reconcile.targets import atlassian
from tests.support.fake_clock import FakeClock
from tests.support.net import free_port

TOKEN = "pat-fail-fast-admin"
WORLD = f"""
confluence_dc:
  users:
    - {{username: admin, tokens: [{TOKEN}], groups: [confluence-administrators]}}
  groups:
    - {{name: confluence-administrators}}
"""


def client(url: str, fake: FakeClock, *, transport: httpx.AsyncBaseTransport | None = None,
           retries: int = 4) -> HttpClient:
    return atlassian.client(url, auth=None, settings=HttpSettings(timeout=5, max_retries=retries), flavor="dc",
                            transport=transport, clock=fake.clock())


def attempt(c: HttpClient, path: str = "/rest/api/user/current", token: str = TOKEN) -> TargetError:
    async def go() -> None:
        try:
            await c.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        finally:
            await c.aclose()

    with pytest.raises(TargetError) as info:
        asyncio.run(go())
    return info.value


def test_a_refused_first_connection_is_reported_at_once_with_the_url_and_a_hint(
        caplog: pytest.LogCaptureFixture) -> None:
    port, fake = free_port(), FakeClock()
    c = client(f"http://127.0.0.1:{port}", fake)
    with caplog.at_level(logging.WARNING):
        error = attempt(c)
    assert c.requests == 1 and fake.sleeps == []  # one attempt, no backoff
    assert str(error).startswith(f"GET http://127.0.0.1:{port}/rest/api/user/current -> could not connect: "
                                 f"connection refused: nothing listens on 127.0.0.1:{port}")
    assert "reconcile sim" in str(error) and "target.url" in str(error)
    assert not [r for r in caplog.records if "retrying" in r.getMessage()]


def test_an_unknown_host_is_reported_at_once() -> None:
    fake = FakeClock()
    c = client("http://no-such-host.invalid", fake)
    error = attempt(c)
    assert c.requests == 1 and fake.sleeps == []
    assert "unknown host 'no-such-host.invalid'" in str(error) and "check target.url" in str(error)
    assert "reconcile sim" not in str(error)  # not a loopback address: no simulator hint


def test_once_the_server_answered_a_refused_connection_is_transient_and_retried(
        caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeClock()
    with running(build_app(parse_scenario(WORLD))) as url:
        c = client(url, fake, retries=2)

        async def first() -> None:
            assert (await c.request("GET", "/rest/api/user/current",
                                    headers={"Authorization": f"Bearer {TOKEN}"})).status_code == 200

        loop = asyncio.new_event_loop()
        loop.run_until_complete(first())
    # the server has stopped: a restart in the middle of a run
    with caplog.at_level(logging.WARNING, logger="reconcile.http"):
        with pytest.raises(TargetError) as info:
            loop.run_until_complete(c.request("GET", "/rest/api/group"))
        loop.run_until_complete(c.aclose())
        loop.close()
    assert c.requests == 1 + 3  # the first answer, then one attempt and two retries
    assert len(fake.sleeps) == 2
    retries = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert retries == [f"retrying GET {url}/rest/api/group (1/2) after a refused connection",
                       f"retrying GET {url}/rest/api/group (2/2) after a refused connection"]
    assert "could not connect" in str(info.value)


def test_a_503_is_retried_with_a_warning_naming_the_url_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeClock()
    faults = SimSettings(faults=Faults(error_rate=1.0, error_statuses=(503,), paths=("/rest/api/group",)))
    app = build_app(parse_scenario(WORLD), settings=faults)
    c = client("http://dc.test", fake, transport=httpx.ASGITransport(app=app), retries=2)

    async def go() -> int:
        try:
            await c.request("GET", "/rest/api/user/current", headers={"Authorization": f"Bearer {TOKEN}"})
            response = await c.request("GET", "/rest/api/group", params={"os_password": "hunter2"},
                                       headers={"Authorization": f"Bearer {TOKEN}"})
            return response.status_code
        finally:
            await c.aclose()

    with caplog.at_level(logging.WARNING, logger="reconcile.http"):
        assert asyncio.run(go()) == 503
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert lines == ["retrying GET http://dc.test/rest/api/group?os_password=*** (1/2) after 503",
                     "retrying GET http://dc.test/rest/api/group?os_password=*** (2/2) after 503"]
    assert c.requests == 4 and len(fake.sleeps) >= 2 and all(s <= 60 for s in fake.sleeps)


def test_the_cli_against_a_closed_port_prints_one_clear_line_and_exits_1(tmp_path: Path) -> None:
    port = free_port()
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "target.yaml").write_text(f"""\
version: 1
target:
  type: confluence-dc
  url: http://127.0.0.1:{port}
  auth:
    token: ${{CONFLUENCE_TOKEN}}
scope:
  users: ["*"]
  groups: ["team-*"]
users:
  alice: {{groups: [team-docs]}}
""")
    command = [sys.executable, "-m", "reconcile.cli", "--verbose", "--desired", str(desired),
               "--state-dir", str(tmp_path / "state"), "plan"]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CONFLUENCE_TOKEN": TOKEN, "NO_COLOR": "1"})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    url = f"http://127.0.0.1:{port}/rest/api/user/current"
    attempts = [line for line in done.stderr.splitlines() if f"GET {url} -> " in line and " ms" in line]
    assert len(attempts) == 1, done.stderr  # one attempt: no silent retries
    assert "retrying" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "could not connect" in line]
    assert len(errors) == 1 and f"nothing listens on 127.0.0.1:{port}" in errors[0], done.stderr
    assert "reconcile sim" in done.stderr
    assert TOKEN not in done.stdout + done.stderr


def test_a_token_with_a_line_break_is_one_clear_error_naming_the_header_not_its_value() -> None:
    """A token file's stray line break would split the header on the wire: refused once, never retried or shown."""
    fake = FakeClock()
    with running(build_app(parse_scenario(WORLD))) as url:
        c = client(url, fake)
        error = attempt(c, token=f"{TOKEN}\nX-Injected: yes")
    assert c.requests == 1 and fake.sleeps == []
    assert "Authorization" in str(error) and "line break" in str(error)
    assert TOKEN not in str(error) and "X-Injected" not in str(error)

