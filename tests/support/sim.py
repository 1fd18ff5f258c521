"""Helpers for the simulator's own tests: a small DC world, a hand-driven clock, in-process clients.

Every client goes through tests/support/contract.py's ContractTransport, so each test also checks that the
simulator's responses validate against confluence-dc-10.0.3.json.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette

from reconcile.sim.app import build_app
from reconcile.sim.confluence_dc.generate import generate_dc
from reconcile.sim.context import SimContext
from reconcile.sim.scenario import parse_scenario
from reconcile.sim.server import running
from tests.support.contract import DEFAULT_ALLOWED_STATUSES, ContractTransport

ADMIN_TOKEN = "tok-admin"
ADMIN_PASSWORD = "admin-pw"
ALICE_TOKEN = "tok-alice"

WORLD = f"""
confluence_dc:
  version: "9.4"
  delete_seconds: 10
  directories:
    - {{name: Corporate LDAP, readonly: true}}
  users:
    - {{username: admin, display_name: The Admin, email: admin@example.com, password: {ADMIN_PASSWORD},
        tokens: [{ADMIN_TOKEN}], last_login: "2026-02-01T00:00:00.000Z"}}
    - {{username: alice, email: alice@example.com, tokens: [{ALICE_TOKEN}], password: alice-pw,
        last_login: "2026-01-01T00:00:00.000Z"}}
    - {{username: bob, email: bob@example.com, status: disabled}}
    - {{username: carol, email: carol@example.com, directory: Corporate LDAP,
        last_login: "2025-12-01T00:00:00.000Z"}}
    - {{username: dave, email: dave@example.com}}
  unsynced:
    - {{username: jsmith, key: 00000000000000000000000000000a01, display_name: John Smith}}
    - {{username: jsmith, key: 00000000000000000000000000000a02, display_name: Jane Smith}}
  groups:
    - {{name: confluence-administrators, members: [admin]}}
    - {{name: team-docs, members: [alice, bob]}}
    - {{name: ldap-eng, directory: Corporate LDAP, members: [carol]}}
"""

# Statuses the real server sends where the DC document declares none for that operation
# (membership writes declare only 204; reads declare no 404/401) — see docs/simulator.md.
REAL_ERRORS = frozenset({400, 401, 403, 404, 500}) | DEFAULT_ALLOWED_STATUSES


class Clock:
    """A monotonic clock the test moves by hand (long tasks, token buckets)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Sim:
    """One in-process simulator and the contract recorders of every client made for it."""

    app: Starlette
    clock: Clock
    transports: list[ContractTransport] = field(default_factory=list)

    @property
    def ctx(self) -> SimContext:
        ctx: SimContext = self.app.state.ctx
        return ctx

    def client(self, token: str | None = ADMIN_TOKEN, *, basic: tuple[str, str] | None = None,
               allowed: Iterable[int] = REAL_ERRORS, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
        headers: dict[str, str] = {"X-Atlassian-Token": "no-check"}
        if basic is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
        elif token is not None:
            headers["Authorization"] = f"Bearer {token}"
        inner = httpx.ASGITransport(app=self.app, raise_app_exceptions=raise_app_exceptions)
        transport = ContractTransport(inner, allowed_statuses=allowed, require_auth=token is not None or basic
                                      is not None)
        self.transports.append(transport)
        return httpx.AsyncClient(transport=transport, base_url="http://confluence.test", headers=headers)

    def check_contract(self) -> None:
        for transport in self.transports:
            transport.check()

    def state(self) -> dict[str, Any]:
        self.ctx.tick()
        return self.ctx.dc.to_json()


def make_sim(text: str = WORLD) -> Sim:
    clock = Clock()
    return Sim(build_app(parse_scenario(text), clock=clock), clock)


def generated_sim(users: int, groups: int, memberships: int, seed: int = 1) -> Sim:
    """A generated world (admin token `sim-admin-token`) on a hand-driven clock."""
    clock = Clock()
    return Sim(build_app(dc=generate_dc(users, groups, memberships, seed), clock=clock), clock)


async def walk(client: httpx.AsyncClient, path: str) -> tuple[list[dict[str, Any]], int]:
    """Follow `_links.next` advancing by the returned page; (every result, number of requests)."""
    results: list[dict[str, Any]] = []
    requests = 0
    url: str | None = path
    while url:
        response = await client.get(url)
        requests += 1
        assert response.status_code == 200, response.text
        body = response.json()
        results += body["results"]
        url = body["_links"].get("next")
    return results, requests


@contextmanager
def example_site_with_token(token: str) -> Iterator[str]:
    """The example world on a loopback port, where `token` is the admin's personal access token."""
    app = build_app()
    world = app.state.ctx.dc
    world.tokens[token] = world.by_username["admin"]
    with running(app) as url:
        yield url
