"""Recorded HTTP exchanges of the Confluence DC target (cassettes/test_dc_cassettes/), replayed offline.

Record (or re-record) against a real loopback simulator server:
    .venv/bin/python -m pytest tests/targets/test_dc_cassettes.py --record-mode=rewrite
`make test` replays them with `--record-mode=none --block-network`: no server is started then.
Credentials, cookies, the websudo password and the page's atl_token are scrubbed before recording.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from ruamel.yaml import YAML

from reconcile.model import Globs, Scope, Status
from reconcile.plan import Action, ActionKind, Subject
from reconcile.settings import ConfluenceDcSettings, HttpSettings, Secret
from reconcile.sim.app import build_app
from reconcile.sim.confluence_dc.world import user_key
from reconcile.sim.scenario import parse_scenario
from reconcile.targets.base import Result
from reconcile.targets.confluence_dc import ConfluenceDcTarget
from tests.support.contract import ContractRecorder
from tests.support.dc import ADMIN_PASSWORD, ADMIN_TOKEN, FAST, SMALL_WORLD, run

PORT = 8993
URL = f"http://127.0.0.1:{PORT}"
CASSETTES = Path(__file__).resolve().parents[2] / "cassettes" / "test_dc_cassettes"
SCOPE = Scope(groups=Globs(("team-*", "confluence-users")))
SCRUBBED = "SCRUBBED"
_TOKEN_IN_PAGE = re.compile(r"""((?:name=['"](?:ajs-)?atl(?:assian)?[-_]token['"]\s+(?:content|value)=['"]))[^'"]*""")
_ALICE, _BOB, _DAVE = (user_key(f"user:{n}") for n in ("alice", "bob", "dave"))


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    headers = response.get("headers", {})
    for name in list(headers):
        if name.lower() in ("set-cookie", "date", "server"):
            del headers[name]
    body = response.get("body", {})
    text = body.get("string")
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if isinstance(text, str):
        body["string"] = _TOKEN_IN_PAGE.sub(lambda m: m.group(1) + SCRUBBED, text).encode()
    return response


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return {
        "filter_headers": ["authorization", "cookie", "set-cookie"],
        "filter_post_data_parameters": [("password", SCRUBBED), ("atl_token", SCRUBBED), ("os_password", SCRUBBED)],
        "filter_query_parameters": ["atl_token", "os_password"],
        "decode_compressed_response": True,
        "before_record_response": _scrub_response,
        "match_on": ["method", "scheme", "host", "port", "path", "query"],
    }


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    return str(CASSETTES)


@pytest.fixture
def live_sim(request: pytest.FixtureRequest) -> Iterator[None]:
    """A real simulator server on 127.0.0.1:8993 while recording; nothing when replaying."""
    if request.config.getoption("--record-mode") == "none":
        yield
        return
    app = build_app(parse_scenario(SMALL_WORLD, "<cassette scenario>"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=PORT, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the simulator did not start on {URL}")
        time.sleep(0.02)
    yield
    server.should_exit = True
    thread.join(10)


def target(*, basic: bool = True) -> ConfluenceDcTarget:
    config = ConfluenceDcSettings(
        url=URL,
        token=None if basic else Secret(ADMIN_TOKEN, "${CONFLUENCE_TOKEN}"),
        username="admin" if basic else None,
        password=Secret(ADMIN_PASSWORD, "${CONFLUENCE_PASSWORD}") if basic else None,
        readonly_groups=Globs(("ldap-*",)),
        http=HttpSettings(concurrency=1),  # one request at a time: a replay order that never varies
    )
    return ConfluenceDcTarget(config, backoff=FAST, poll_interval=0.05)


@pytest.mark.vcr
@pytest.mark.usefixtures("live_sim")
def test_fetch() -> None:
    async def go() -> Any:
        t = target()
        try:
            return await t.fetch(SCOPE)
        finally:
            await t.aclose()

    state = run(go())
    assert state.me == user_key("user:admin")
    assert state.users[_ALICE].email == "alice@example.com"
    assert state.users[_BOB].status is Status.DISABLED
    assert sum(u.unsynced for u in state.users.values()) == 3
    assert state.members["team-ops"] == {_BOB, _DAVE}


@pytest.mark.vcr
@pytest.mark.usefixtures("live_sim")
@pytest.mark.parametrize(("kind", "username", "group"), [
    (ActionKind.ADD_MEMBER, "dave", "team-docs"),
    (ActionKind.REMOVE_MEMBER, "alice", "team-docs"),
    (ActionKind.REMOVE_LICENCE, "alice", "team-docs"),  # the same request: out of the (licence) group
    (ActionKind.DISABLE, "dave", None),
    (ActionKind.ENABLE, "bob", None),
    (ActionKind.DELETE, "alice", None),
])
def test_action(kind: ActionKind, username: str, group: str | None) -> None:
    async def go() -> Any:
        t = target(basic=False)
        try:
            return await t.perform(Action(kind, Subject(username, user_key(f"user:{username}")), group=group))
        finally:
            await t.aclose()

    outcome = run(go())
    assert outcome.result is Result.DONE, outcome.message
    assert outcome.request_id


@pytest.mark.vcr
@pytest.mark.usefixtures("live_sim")
def test_unsynced_delete_by_user_key() -> None:
    async def go() -> Any:
        t = target()
        try:
            return await t.perform(Action(ActionKind.DELETE, Subject("gone", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa02"),
                                          unsynced=True))
        finally:
            await t.aclose()

    assert run(go()).result is Result.DONE


def _cassettes() -> list[Path]:
    return sorted(CASSETTES.glob("*.yaml"))


def test_cassettes_exist_for_fetch_and_every_action_kind() -> None:
    names = {p.stem for p in _cassettes()}
    assert "test_fetch" in names and "test_unsynced_delete_by_user_key" in names
    assert {f"test_action[{k}-" for k in ActionKind} <= {n.split("-", 1)[0] + "-" for n in names if "[" in n}


def test_cassettes_contain_no_secret() -> None:
    basic = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
    for path in _cassettes():
        text = path.read_text()
        for secret in (ADMIN_TOKEN, ADMIN_PASSWORD, basic, "Bearer ", "Basic ", "JSESSIONID"):
            assert secret not in text, f"{path.name} contains {secret!r}"
        for header in ("authorization", "cookie", "set-cookie"):
            assert not re.search(rf"^\s+{header}:", text, re.IGNORECASE | re.MULTILINE), f"{path.name}: {header}"
        tokens = re.findall(r"atl[-_]token[^A-Za-z0-9]+([A-Za-z0-9]{8,})", text)
        assert set(tokens) <= {SCRUBBED}, f"{path.name} leaks an atl_token"


def test_recorded_requests_follow_the_contract() -> None:
    recorder = ContractRecorder(require_auth=False)
    count = 0
    for path in _cassettes():
        for exchange in YAML(typ="safe").load(path.read_text())["interactions"]:
            req, resp = exchange["request"], exchange["response"]
            body = req.get("body") or b""
            headers = {k: v[0] for k, v in (req.get("headers") or {}).items()}
            recorder.validate_response(
                req["method"], req["uri"], resp["status"]["code"],
                {k: v[0] for k, v in (resp.get("headers") or {}).items()},
                (resp.get("body") or {}).get("string", b"") or b"",
                request_headers=headers, request_body=body.encode() if isinstance(body, str) else body)
            count += 1
    assert count > 20
    assert [v for v in recorder.violations if ": request: " in v] == []
