"""Shared by the Entra ID simulator's tests: a scenario with a certificate-holding app, an in-process client whose
transport validates every Graph response against the Graph slice (tests/support/contract_graph.py), assertion JWTs."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from reconcile.sim.app import build_app
from reconcile.sim.entra_id.world import b64url
from reconcile.sim.scenario import parse_scenario
from tests.support.contract_graph import GraphContractTransport
from tests.support.sim import Clock

TENANT = "5f1c0c4e-0000-4000-8000-00000000c0de"
CLIENT = "aaaaaaaa-0000-4000-8000-000000000001"
WEAK_CLIENT = "aaaaaaaa-0000-4000-8000-000000000002"
SECRET = "s3cret-value"
SCOPE = "https://graph.microsoft.com/.default"
WALL = 1_790_000_000.0
BASE = "http://testserver/entra"
TOKEN_URL = f"{BASE}/{TENANT}/oauth2/v2.0/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def key_and_cert(name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, name)])
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(1).not_valid_before(start).not_valid_after(start + dt.timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    return key, cert


@dataclass(frozen=True)
class Keys:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate
    other_key: rsa.RSAPrivateKey
    other_cert: x509.Certificate


@pytest.fixture(scope="module", name="keys")
def keys_fixture() -> Keys:
    key, cert = key_and_cert("reconcile")
    other_key, other_cert = key_and_cert("someone-else")
    return Keys(key, cert, other_key, other_cert)


def scenario(keys: Keys) -> str:
    pem = keys.cert.public_bytes(Encoding.PEM).decode()
    users = "\n".join(f"    - {{user_principal_name: user{i:02d}@contoso.com, mail: user{i:02d}@contoso.com}}"
                      for i in range(1, 11))
    return f"""
entra_id:
  tenant_id: {TENANT}
  domain: contoso.onmicrosoft.com
  users:
    - {{user_principal_name: alice@contoso.com, display_name: Alice, mail: alice@contoso.com, given_name: Alice}}
    - {{user_principal_name: bob@contoso.com, display_name: Bob, mail: bob@contoso.com, account_enabled: false}}
    - {{user_principal_name: "guest_fabrikam.com#EXT#@contoso.onmicrosoft.com", display_name: Guest,
        user_type: Guest, external_user_state: Accepted, other_mails: [guest@fabrikam.com]}}
{users}
  devices:
    - {{display_name: laptop-7}}
  service_principals:
    - {{display_name: ci-bot}}
  groups:
    - display_name: Engineering
      members: {{users: [alice@contoso.com], groups: [Backend], devices: [laptop-7], service_principals: [ci-bot]}}
    - display_name: Backend
      members: {{users: [bob@contoso.com], groups: [Platform]}}
    - display_name: Platform
      members: {{users: [user01@contoso.com, alice@contoso.com]}}
    - display_name: Loop A
      members: {{users: [user02@contoso.com], groups: [Loop B]}}
    - display_name: Loop B
      members: {{users: [user03@contoso.com], groups: [Loop A]}}
    - display_name: Everyone
      members: {{users: [{", ".join(f"user{i:02d}@contoso.com" for i in range(1, 11))}]}}
  apps:
    - client_id: {CLIENT}
      secrets: [{SECRET}]
      certificates:
        - |
{chr(10).join("          " + line for line in pem.splitlines())}
      permissions: [User.Read.All, GroupMember.Read.All]
    - client_id: {WEAK_CLIENT}
      secrets: [{SECRET}]
      permissions: [User.Read.All]
  throttle: {{every: 0, retry_after: 7}}
"""


@dataclass
class Entra:
    client: httpx.AsyncClient
    transport: GraphContractTransport
    clock: Clock
    app: Any

    async def token(self, client_id: str = CLIENT, **form: str) -> httpx.Response:
        data = {"grant_type": "client_credentials", "client_id": client_id, "scope": SCOPE, **form}
        return await self.client.post(f"/{TENANT}/oauth2/v2.0/token", data=data)

    async def bearer(self, client_id: str = CLIENT) -> dict[str, str]:
        response = await self.token(client_id, client_secret=SECRET)
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    async def pages(self, url: str, headers: dict[str, str], params: dict[str, str] | None = None
                    ) -> list[dict[str, Any]]:
        """Every page of a collection, following @odata.nextLink verbatim."""
        found = []
        response = await self.client.get(url, params=params, headers=headers)
        while True:
            assert response.status_code == 200, response.text
            body = response.json()
            found.append(body)
            link = body.get("@odata.nextLink")
            if link is None:
                return found
            assert link.startswith(f"{BASE}/v1.0/") and "$skiptoken=" in link
            response = await self.client.get(link, headers=headers)


@pytest.fixture(name="entra")
async def entra_fixture(keys: Keys) -> AsyncIterator[Entra]:
    clock = Clock()
    app = build_app(parse_scenario(scenario(keys)), clock=clock, wall=lambda: WALL + clock.now)
    transport = GraphContractTransport(httpx.ASGITransport(app=app))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield Entra(client, transport, clock, app)
    transport.check()


def names(pages: list[dict[str, Any]], key: str = "displayName") -> list[str]:
    return [item[key] for page in pages for item in page["value"]]


def assertion(keys: Keys, *, key: rsa.RSAPrivateKey | None = None, cert: x509.Certificate | None = None,
              aud: str = TOKEN_URL, exp_in: float = 600, sha256: bool = True, now: float = WALL + 1000.0) -> str:
    der = (cert or keys.cert).public_bytes(Encoding.DER)
    if sha256:
        header = {"alg": "PS256", "typ": "JWT", "x5t#S256": b64url(x509.Certificate.fingerprint(
            cert or keys.cert, hashes.SHA256()))}
    else:
        header = {"alg": "RS256", "typ": "JWT", "x5t": b64url(x509.Certificate.fingerprint(
            cert or keys.cert, hashes.SHA1()))}
    assert der
    claims = {"aud": aud, "iss": CLIENT, "sub": CLIENT, "jti": str(uuid.UUID(int=1)), "nbf": int(now) - 60,
              "exp": int(now + exp_in)}
    return jwt.encode(claims, key or keys.key, algorithm=header["alg"], headers=header)


