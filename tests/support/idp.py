"""Helpers for the IdP simulator tests: signing keys, JWT assertions, in-process clients whose every
exchange is validated against the vendor documents (tests/support/contract_idp.py), hand-driven clocks."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from starlette.applications import Starlette

from reconcile.sim.app import build_app
from reconcile.sim.context import SimContext
from reconcile.sim.scenario import EXAMPLE, parse_scenario
from tests.support.contract_idp import IdpTransport
from tests.support.sim import Clock

BASE = "http://idp.test"
WALL = 1_800_000_000.0  # the simulator's wall clock in these tests (2027-01-15)


@cache
def private_key(name: str) -> rsa.RSAPrivateKey:
    """An RSA key per name, made once per test process (the tests never depend on its value)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(name: str) -> str:
    return private_key(name).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def yaml_string(text: str) -> str:
    """`text` as a YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text)


def assertion(key: str, claims: dict[str, Any], *, kid: str | None = None) -> str:
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims, private_key(key), algorithm="RS256", headers=headers)


@dataclass
class IdpSim:
    app: Starlette
    clock: Clock
    wall: Clock
    transports: list[IdpTransport] = field(default_factory=list)

    @property
    def ctx(self) -> SimContext:
        ctx: SimContext = self.app.state.ctx
        return ctx

    def client(self, authorization: str | None = None) -> httpx.AsyncClient:
        transport = IdpTransport(httpx.ASGITransport(app=self.app))
        self.transports.append(transport)
        headers = {"Authorization": authorization} if authorization else {}
        return httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers)

    def check_contract(self) -> None:
        assert self.transports and all(t.exchanges for t in self.transports), "no exchange was validated"
        for transport in self.transports:
            transport.check()


def make_idp_sim(text: str) -> IdpSim:
    clock, wall = Clock(), Clock()
    wall.now = WALL
    return IdpSim(build_app(parse_scenario(text), clock=clock, wall=wall), clock, wall)


@cache
def example_key() -> Any:
    """The example world's simulator-only private key (reconcile/sim/scenarios/idp-example-key.pem), loaded once:
    loading an RSA key checks it, ~50 ms."""
    text = EXAMPLE.with_name("idp-example-key.pem").read_text(encoding="utf-8")
    return load_pem_private_key(text[text.index("-----BEGIN"):].encode(), password=None)


def example_sim() -> IdpSim:
    clock, wall = Clock(), Clock()
    wall.now = WALL
    return IdpSim(build_app(clock=clock, wall=wall), clock, wall)
