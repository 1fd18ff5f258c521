"""A Confluence DC simulator in-process for the DC target tests, every exchange contract-checked.

`DcSim.from_yaml(text)` builds the simulator app from an inline scenario; `.target(...)` builds a
ConfluenceDcTarget talking to it through httpx.ASGITransport wrapped in tests/support/contract.py's
ContractTransport (validating requests and responses against confluence-dc-10.0.3.json).
"""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import httpx

from reconcile.http import Backoff
from reconcile.model import Globs
from reconcile.settings import ConfluenceDcSettings, HttpSettings, Secret
from reconcile.sim.app import build_app
from reconcile.sim.confluence_dc.world import DcWorld
from reconcile.sim.control import SimSettings
from reconcile.sim.scenario import parse_scenario
from reconcile.targets.confluence_dc import ConfluenceDcTarget
from tests.support.contract import DEFAULT_ALLOWED_STATUSES, ContractTransport

T = TypeVar("T")
URL = "http://confluence.test"
FAST = Backoff(base=0.01, cap=0.1, max_wait=2.0)

ADMIN_TOKEN = "pat-admin-7f3e9c"
ADMIN_PASSWORD = "admin-pw-51d2"

SMALL_WORLD = f"""
confluence_dc:
  version: "9.4"
  directories:
    - {{name: Corporate LDAP, readonly: true}}
  groups:
    - {{name: confluence-administrators}}
    - {{name: confluence-users}}
    - {{name: team-docs}}
    - {{name: team-ops}}
    - {{name: ldap-eng, directory: Corporate LDAP}}
  users:
    - username: admin
      email: admin@example.com
      password: {ADMIN_PASSWORD}
      tokens: [{ADMIN_TOKEN}]
      groups: [confluence-administrators, confluence-users]
      last_login: "2026-01-02T03:04:05.000Z"
    - {{username: Alice, email: alice@example.com, groups: [confluence-users, team-docs],
        last_login: "2025-12-01T10:00:00.000Z"}}
    - {{username: bob, email: bob@example.com, status: disabled, groups: [confluence-users, team-ops]}}
    - {{username: carol, email: carol@example.com, directory: Corporate LDAP, groups: [ldap-eng]}}
    - {{username: dave, email: dave@example.com, groups: [team-ops]}}
  unsynced:
    - {{username: gone, key: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa01, display_name: Gone One}}
    - {{username: gone, key: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa02, display_name: Gone Two}}
    - {{username: solo, key: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa03, display_name: Solo}}
"""


def run(coro: Coroutine[Any, Any, T]) -> T:
    async def main() -> T:
        return await coro

    return anyio.run(main)


class Recording(httpx.AsyncBaseTransport):
    """Remembers `METHOD path?query -> status` of every exchange it forwards (reads included)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.seen: list[tuple[str, str, int]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        target = request.url.raw_path.decode()
        self.seen.append((request.method, target, response.status_code))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class DcSim:
    world: DcWorld
    settings: SimSettings = field(default_factory=SimSettings)
    contracts: list[ContractTransport] = field(default_factory=list)
    recordings: list[Recording] = field(default_factory=list)
    # statuses accepted without validation: injected faults are, by design, undocumented
    allowed_statuses: frozenset[int] = DEFAULT_ALLOWED_STATUSES

    def __post_init__(self) -> None:
        self.app = build_app(dc=self.world, settings=self.settings)
        self.ctx = self.app.state.ctx

    @staticmethod
    def from_yaml(text: str = SMALL_WORLD) -> DcSim:
        scenario = parse_scenario(text, "<test scenario>")
        return DcSim(scenario.dc, scenario.settings)

    def transport(self) -> Recording:
        contract = ContractTransport(httpx.ASGITransport(app=self.app), allowed_statuses=self.allowed_statuses)
        self.contracts.append(contract)
        recording = Recording(contract)
        self.recordings.append(recording)
        return recording

    def config(self, *, token: str | None = ADMIN_TOKEN, username: str | None = None,
               password: str | None = None, concurrency: int = 4, retries: int = 4,
               readonly: tuple[str, ...] = ("ldap-*",)) -> ConfluenceDcSettings:
        return ConfluenceDcSettings(
            url=URL,
            token=Secret(token, "${CONFLUENCE_TOKEN}") if token is not None else None,
            username=username,
            password=Secret(password, "${CONFLUENCE_PASSWORD}") if password is not None else None,
            readonly_groups=Globs(readonly),
            http=HttpSettings(timeout=10, concurrency=concurrency, max_retries=retries),
        )

    def target(self, **kwargs: Any) -> ConfluenceDcTarget:
        return ConfluenceDcTarget(self.config(**kwargs), transport=self.transport(), backoff=FAST,
                                  poll_interval=0.02)

    def basic_target(self, **kwargs: Any) -> ConfluenceDcTarget:
        return self.target(token=None, username="admin", password=ADMIN_PASSWORD, **kwargs)

    def key(self, username: str) -> str:
        return self.world.by_username[username.lower()]

    def sent(self, prefix: str = "/") -> list[tuple[str, str, int]]:
        """(method, path?query, status) of every request the targets sent, in order."""
        return [x for r in self.recordings for x in r.seen if x[1].startswith(prefix)]

    def writes(self) -> list[str]:
        """`METHOD path -> status` of every mutating request the simulator logged, in order."""
        return [f"{e.method} {e.path} -> {e.status}" for e in self.ctx.log.entries if e.kind == "request"]

    def violations(self) -> list[str]:
        return [e.note for e in self.ctx.log.violations()]

    def request_violations(self) -> list[str]:
        """Contract violations of the requests the target sent (what the DC target owns)."""
        return [v for c in self.contracts for v in c.violations if ": request: " in v]

    def response_violations(self) -> list[str]:
        """Contract violations of the simulator's responses (what the simulator owns)."""
        return [v for c in self.contracts for v in c.violations if ": request: " not in v]

    def check_contracts(self) -> None:
        """Every request the target sent is valid against confluence-dc-10.0.3.json.

        The simulator's responses are checked once, in test_dc_perform.py's contract test, so that a
        simulator defect fails one test that names it rather than every target test.
        """
        assert self.request_violations() == []
