"""The Entra ID simulator (reconcile/sim/entra_id/) through httpx against the in-process app: Graph paging and
its caps, $select, $filter, members and transitiveMembers (nesting, a cycle), the token endpoint (secret and
certificate), Graph's error formats. Every Graph response is validated against the carried Graph slice."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from contract_graph import GraphContractTransport, document
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from fixtures_sim import Clock

from reconcile.errors import ConfigError
from reconcile.sim.app import build_app
from reconcile.sim.entra_id.routes import GROUP_PROPERTIES, USER_DEFAULT, USER_PROPERTIES
from reconcile.sim.entra_id.world import b64url
from reconcile.sim.generate import generate_entra
from reconcile.sim.scenario import parse_scenario

pytestmark = pytest.mark.anyio

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


@pytest.fixture(scope="module")
def keys() -> Keys:
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


@pytest.fixture
async def entra(keys: Keys) -> AsyncIterator[Entra]:
    clock = Clock()
    app = build_app(parse_scenario(scenario(keys)), clock=clock, wall=lambda: WALL + clock.now)
    transport = GraphContractTransport(httpx.ASGITransport(app=app))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield Entra(client, transport, clock, app)
    transport.check()


def names(pages: list[dict[str, Any]], key: str = "displayName") -> list[str]:
    return [item[key] for page in pages for item in page["value"]]


async def test_users_page_to_the_end_with_top_and_next_links(entra: Entra) -> None:
    headers = await entra.bearer()
    pages = await entra.pages("/v1.0/users", headers, {"$top": "5", "$select": "id,userPrincipalName"})
    assert [len(p["value"]) for p in pages] == [5, 5, 3]
    assert len({u["id"] for p in pages for u in p["value"]}) == 13
    assert entra.transport.validated == 3 and entra.transport.request_violations == []
    assert all(set(u) == {"id", "userPrincipalName"} for p in pages for u in p["value"])
    assert pages[0]["@odata.context"] == f"{BASE}/v1.0/$metadata#users(id,userPrincipalName)"
    # the nextLink keeps the query ($top, $select) and adds an opaque $skiptoken
    assert "%24top=5" in pages[0]["@odata.nextLink"] or "$top=5" in pages[0]["@odata.nextLink"]
    whole = await entra.client.get("/v1.0/users", params={"$top": "999"}, headers=headers)
    assert len(whole.json()["value"]) == 13 and "@odata.nextLink" not in whole.json()
    default = await entra.client.get("/v1.0/users", headers=headers)  # default page size 100
    assert len(default.json()["value"]) == 13


@pytest.mark.parametrize("top", ["1000", "0", "-1"])
async def test_top_outside_1_to_999_is_refused(entra: Entra, top: str) -> None:
    headers = await entra.bearer()
    response = await entra.client.get("/v1.0/users", params={"$top": top}, headers=headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "Request_BadRequest"
    assert error["message"] == f"Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive."


async def test_account_enabled_comes_only_when_selected(entra: Entra) -> None:
    headers = await entra.bearer()
    plain = (await entra.client.get("/v1.0/users", headers=headers)).json()["value"]
    assert all("accountEnabled" not in u and "userType" not in u for u in plain)
    assert set(plain[0]) == {"businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
                             "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id"}
    selected = (await entra.client.get("/v1.0/users", headers=headers, params={
        "$select": "id,userPrincipalName,mail,otherMails,accountEnabled,userType"})).json()["value"]
    by_upn = {u["userPrincipalName"]: u for u in selected}
    assert by_upn["bob@contoso.com"]["accountEnabled"] is False
    guest = by_upn["guest_fabrikam.com#EXT#@contoso.onmicrosoft.com"]
    assert guest["userType"] == "Guest" and guest["mail"] is None and guest["otherMails"] == ["guest@fabrikam.com"]
    unknown = await entra.client.get("/v1.0/users", headers=headers, params={"$select": "id,nosuch"})
    assert unknown.status_code == 400
    assert "Could not find a property named 'nosuch'" in unknown.json()["error"]["message"]


async def test_filters_on_user_type_and_account_enabled(entra: Entra) -> None:
    headers = await entra.bearer()
    select = "userPrincipalName"

    async def upns(flt: str, **extra: str) -> list[str]:
        pages = await entra.pages("/v1.0/users", {**headers, **extra.pop("headers_", {})},  # type: ignore[dict-item]
                                  {"$filter": flt, "$select": select, "$top": "2", **extra})
        return names(pages, "userPrincipalName")

    assert await upns("userType eq 'Guest'") == ["guest_fabrikam.com#EXT#@contoso.onmicrosoft.com"]
    assert len(await upns("userType eq 'member'")) == 12  # string comparison ignores case
    assert await upns("accountEnabled eq false") == ["bob@contoso.com"]
    assert await upns("accountEnabled eq true and startswith(userPrincipalName,'al')") == ["alice@contoso.com"]
    assert await upns("userPrincipalName eq 'bob@contoso.com' or mail eq 'alice@contoso.com'") == [
        "alice@contoso.com", "bob@contoso.com"]
    groups = await entra.pages("/v1.0/groups", headers, {"$filter": "startswith(displayName,'loop')"})
    assert names(groups) == ["Loop A", "Loop B"]
    exact = await entra.pages("/v1.0/groups", headers, {"$filter": "displayName eq 'Backend'",
                                                        "$select": "id,displayName"})
    assert names(exact) == ["Backend"] and set(exact[0]["value"][0]) == {"id", "displayName"}


@pytest.mark.parametrize(("flt", "code", "message"), [
    ("userType ne 'Guest'", "Request_UnsupportedQuery",
     "Unsupported or invalid query filter clause specified for property 'userType' of resource 'User'."),
    ("endswith(mail,'@contoso.com')", "Request_UnsupportedQuery",
     "Unsupported or invalid query filter clause specified for property 'mail' of resource 'User'."),
    ("accountEnabled eq 'yes'", "BadRequest", "Invalid filter clause: A binary operator with incompatible types "
     "was detected. Found operand types 'Edm.Boolean' and 'Edm.String' for operator kind 'Equal'."),
    ("userType eq", "BadRequest", "Invalid filter clause: Syntax error at position 11 in 'userType eq'."),
    ("nosuch eq 'x'", "BadRequest",
     "Invalid filter clause: Could not find a property named 'nosuch' on type 'microsoft.graph.user'."),
])
async def test_filters_the_service_rejects_get_400_in_graphs_format(entra: Entra, flt: str, code: str,
                                                                     message: str) -> None:
    headers = await entra.bearer()
    response = await entra.client.get("/v1.0/users", params={"$filter": flt}, headers=headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["message"]) == (code, message)
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}


async def test_advanced_queries_allow_ne_with_consistency_level_and_count(entra: Entra) -> None:
    headers = {**await entra.bearer(), "ConsistencyLevel": "eventual"}
    response = await entra.client.get("/v1.0/users", headers=headers, params={
        "$filter": "userType ne 'Member'", "$count": "true", "$select": "userPrincipalName"})
    assert response.status_code == 200
    assert response.json()["@odata.count"] == 1
    no_header = await entra.client.get("/v1.0/users", headers=await entra.bearer(), params={"$count": "true"})
    assert no_header.status_code == 400 and no_header.json()["error"]["code"] == "Request_BadRequest"


async def group_id(entra: Entra, headers: dict[str, str], name: str) -> str:
    pages = await entra.pages("/v1.0/groups", headers, {"$filter": f"displayName eq '{name}'"})
    return str(pages[0]["value"][0]["id"])


async def test_direct_members_carry_their_odata_type_and_page(entra: Entra) -> None:
    headers = await entra.bearer()
    gid = await group_id(entra, headers, "Engineering")
    pages = await entra.pages(f"/v1.0/groups/{gid}/members", headers, {"$top": "1"})
    assert len(pages) == 4
    members = [m for p in pages for m in p["value"]]
    assert [(m["@odata.type"], m["displayName"]) for m in members] == [
        ("#microsoft.graph.user", "Alice"), ("#microsoft.graph.group", "Backend"),
        ("#microsoft.graph.device", "laptop-7"), ("#microsoft.graph.servicePrincipal", "ci-bot")]
    assert pages[0]["@odata.context"] == f"{BASE}/v1.0/$metadata#directoryObjects"
    big = await entra.client.get(f"/v1.0/groups/{gid}/members", params={"$top": "1000"}, headers=headers)
    assert big.status_code == 400 and big.json()["error"]["code"] == "Request_BadRequest"


async def test_transitive_members_flatten_nesting_and_include_the_nested_groups(entra: Entra) -> None:
    headers = await entra.bearer()
    gid = await group_id(entra, headers, "Engineering")
    pages = await entra.pages(f"/v1.0/groups/{gid}/transitiveMembers", headers,
                              {"$top": "2", "$select": "id,displayName,accountEnabled"})
    members = [(m["@odata.type"].rsplit(".", 1)[-1], m["displayName"]) for p in pages for m in p["value"]]
    # alice is a member twice (directly and through Platform): listed once
    assert members == [("user", "Alice"), ("group", "Backend"), ("device", "laptop-7"),
                       ("servicePrincipal", "ci-bot"), ("user", "Bob"), ("group", "Platform"),
                       ("user", "user01")]
    bob = next(m for p in pages for m in p["value"] if m.get("displayName") == "Bob")
    assert bob["accountEnabled"] is False


async def test_transitive_members_of_a_cycle_end(entra: Entra) -> None:
    headers = await entra.bearer()
    gid = await group_id(entra, headers, "Loop A")
    pages = await entra.pages(f"/v1.0/groups/{gid}/transitiveMembers", headers)
    assert names(pages) == ["user02", "Loop B", "user03", "Loop A"]
    missing = await entra.client.get(f"/v1.0/groups/{uuid.UUID(int=7)}/members", headers=headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "Request_ResourceNotFound"


async def test_a_tampered_skiptoken_is_refused(entra: Entra) -> None:
    headers = await entra.bearer()
    first = (await entra.client.get("/v1.0/users", params={"$top": "5"}, headers=headers)).json()
    other_query = first["@odata.nextLink"].replace("%24top=5", "%24top=6").replace("$top=5", "$top=6")
    response = await entra.client.get(other_query, headers=headers)
    assert response.status_code == 400 and response.json()["error"]["code"] == "Directory_ExpiredPageToken"


# ------------------------------------------------------------------------------------------------ tokens


async def test_client_secret_good_and_bad(entra: Entra) -> None:
    good = await entra.token(client_secret=SECRET)
    assert good.status_code == 200 and good.headers["cache-control"] == "no-store, no-cache"
    body = good.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599 and body["access_token"]
    bad = await entra.token(client_secret="wrong")
    assert bad.status_code == 401
    error = bad.json()
    assert error["error"] == "invalid_client" and error["error_codes"] == [7000215]
    assert error["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
    assert {"timestamp", "trace_id", "correlation_id", "error_uri"} <= set(error)
    assert "wrong" not in bad.text
    unknown = await entra.token("bbbbbbbb-0000-4000-8000-000000000009", client_secret=SECRET)
    assert unknown.status_code == 400 and unknown.json()["error"] == "unauthorized_client"
    scope = await entra.token(client_secret=SECRET, scope="User.Read.All")
    assert scope.status_code == 400 and scope.json()["error_codes"] == [1002012]
    tenant = await entra.client.post("/nosuch.onmicrosoft.com/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET, "scope": SCOPE})
    assert tenant.status_code == 400 and tenant.json()["error_codes"] == [90002]


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


@pytest.mark.parametrize("sha256", [True, False], ids=["x5t#S256-PS256", "x5t-RS256"])
async def test_certificate_assertion_good(entra: Entra, keys: Keys, sha256: bool) -> None:
    response = await entra.token(client_assertion_type=ASSERTION_TYPE,
                                 client_assertion=assertion(keys, sha256=sha256))
    assert response.status_code == 200, response.text
    bearer = {"Authorization": f"Bearer {response.json()['access_token']}"}
    users = await entra.client.get("/v1.0/users", headers=bearer)
    assert users.status_code == 200
    # the real service's audience (login.microsoftonline.com) is accepted too
    real_aud = assertion(keys, aud=f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token")
    assert (await entra.token(client_assertion_type=ASSERTION_TYPE, client_assertion=real_aud)).status_code == 200


@pytest.mark.parametrize(("case", "code"), [
    ("expired", 700024), ("wrong_key", 700027), ("unregistered_cert", 700027), ("wrong_aud", 700212),
])
async def test_certificate_assertion_refused(entra: Entra, keys: Keys, case: str, code: int) -> None:
    made = {
        "expired": lambda: assertion(keys, exp_in=-3600),
        "wrong_key": lambda: assertion(keys, key=keys.other_key),  # names the registered cert, other key signed
        "unregistered_cert": lambda: assertion(keys, key=keys.other_key, cert=keys.other_cert),
        "wrong_aud": lambda: assertion(keys, aud="https://login.microsoftonline.com/other/oauth2/v2.0/token"),
    }[case]()
    response = await entra.token(client_assertion_type=ASSERTION_TYPE, client_assertion=made)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client" and response.json()["error_codes"] == [code]


async def test_secrets_never_reach_the_request_log(entra: Entra, keys: Keys) -> None:
    await entra.token(client_secret=SECRET)
    await entra.token(client_assertion_type=ASSERTION_TYPE, client_assertion=assertion(keys))
    logged = json.dumps([e.to_json() if hasattr(e, "to_json") else str(e) for e in entra.app.state.ctx.log.entries])
    assert SECRET not in logged and "eyJ" not in logged and "client_secret" in logged


# ------------------------------------------------------------------------------------------------ errors


async def test_bad_and_expired_tokens_get_401(entra: Entra) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = await entra.client.get("/v1.0/users", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
        assert response.headers["www-authenticate"].startswith("Bearer ")
    headers = await entra.bearer()
    entra.clock.advance(3599)
    expired = await entra.client.get("/v1.0/users", headers=headers)
    assert expired.status_code == 401
    assert expired.json()["error"]["message"] == "Lifetime validation failed, the token is expired."


async def test_a_missing_permission_gets_403_authorization_request_denied(entra: Entra) -> None:
    headers = await entra.bearer(WEAK_CLIENT)  # User.Read.All only
    assert (await entra.client.get("/v1.0/users", headers=headers)).status_code == 200
    response = await entra.client.get("/v1.0/groups", headers=headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Authorization_RequestDenied"
    assert response.json()["error"]["message"] == "Insufficient privileges to complete the operation."


async def test_throttling_answers_429_with_retry_after(entra: Entra) -> None:
    entra.app.state.ctx.entra_id.throttle_every = 3
    headers = await entra.bearer()
    statuses = [(await entra.client.get("/v1.0/users", headers=headers)) for _ in range(6)]
    assert [r.status_code for r in statuses] == [200, 200, 429, 200, 200, 429]
    limited = statuses[2]
    assert limited.headers["retry-after"] == "7"
    assert limited.json()["error"]["code"] == "TooManyRequests"
    assert limited.headers["request-id"]  # Graph's request id header, from the middleware


async def test_unknown_segments_get_graphs_400(entra: Entra) -> None:
    response = await entra.client.get("/v1.0/nosuch", headers=await entra.bearer())
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Resource not found for the segment 'nosuch'."


# ------------------------------------------------------------------------------------------------ contract


async def test_the_validator_catches_a_corrupted_response(keys: Keys) -> None:
    """The same exchange, once as served and once corrupted on the way: only the corrupted one fails."""

    class Corrupting(httpx.AsyncBaseTransport):
        def __init__(self, inner: httpx.AsyncBaseTransport, change: Any) -> None:
            self.inner, self.change = inner, change

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await self.inner.handle_async_request(request)
            body = await response.aread()
            if request.url.path.endswith("/users"):
                data = json.loads(body)
                self.change(data)
                body = json.dumps(data).encode()
            return httpx.Response(response.status_code, headers={"content-type": "application/json"}, content=body)

    def wrong_type(data: dict[str, Any]) -> None:
        data["value"][0]["accountEnabled"] = "yes"

    def undeclared(data: dict[str, Any]) -> None:
        data["value"][0]["enabled"] = True

    def no_value(data: dict[str, Any]) -> None:
        data["value"] = {"not": "a list"}

    expected = {None: [], wrong_type: ["accountEnabled"], undeclared: ["does not declare enabled"],
                no_value: ["value"]}
    for change, needles in expected.items():
        app = build_app(parse_scenario(scenario(keys)))
        inner = httpx.ASGITransport(app=app)
        transport = GraphContractTransport(Corrupting(inner, change or (lambda data: None)))
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            token = (await client.post(f"/{TENANT}/oauth2/v2.0/token", data={
                "grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET,
                "scope": SCOPE})).json()["access_token"]
            await client.get("/v1.0/users", params={"$select": "id,accountEnabled"},
                             headers={"Authorization": f"Bearer {token}"})
        assert bool(transport.violations) == bool(needles), (change, transport.violations)
        for needle in needles:
            assert any(needle in v for v in transport.violations), (needle, transport.violations)


def test_a_generated_tenant_is_deterministic() -> None:
    one, two = generate_entra(500, 40, 2000, seed=3), generate_entra(500, 40, 2000, seed=3)
    assert list(one.users) == list(two.users) and one.users == two.users
    assert [g.members for g in one.groups.values()] == [g.members for g in two.groups.values()]
    assert sum(1 for g in one.groups.values() for m in g.members if m[0] == "user") == 2000
    assert any(not u.account_enabled for u in one.users.values())
    assert any(u.user_type == "Guest" for u in one.users.values())
    last, before = list(one.groups.values())[-2:]
    assert ("group", before.id) in last.members and ("group", last.id) in before.members  # a cycle
    assert generate_entra(500, 40, 2000, seed=4).users != one.users


def test_default_and_select_only_properties_follow_the_document() -> None:
    """What the simulator returns without $select is what the slice says is "Returned by default"."""
    schemas = document()["components"]["schemas"]

    def marked(schema: str, phrase: str) -> set[str]:
        props = schemas[schema]["allOf"][1]["properties"]
        return {name for name, prop in props.items() if phrase in prop.get("description", "")}

    user_default = marked("microsoft.graph.user", "Returned by default")
    user_select = marked("microsoft.graph.user", "Returned only on $select")
    assert set(USER_DEFAULT) - {"id"} <= user_default
    assert {"accountEnabled", "userType", "otherMails", "externalUserState"} <= user_select
    assert not (set(USER_PROPERTIES) - set(USER_DEFAULT)) & user_default - {"securityIdentifier"}
    group_default = marked("microsoft.graph.group", "Returned by default")
    assert set(GROUP_PROPERTIES) - {"id", "deletedDateTime"} <= group_default


def test_scenario_problems_name_file_line_and_column() -> None:
    text = """entra_id:
  users:
    - {user_principal_name: a@x.com, user_type: Visitor}
  groups:
    - display_name: G
      members: {users: [nobody@x.com], robots: [r2]}
  apps:
    - {client_id: c1, certificates: [not a pem]}
"""
    with pytest.raises(ConfigError) as caught:
        parse_scenario(text, "world.yaml")
    problems = caught.value.problems
    assert any(p.startswith("world.yaml:3:") and "user_type is Member or Guest, not 'Visitor'" in p for p in problems)
    assert any(p.startswith("world.yaml:6:") and "user 'nobody@x.com' is not in this scenario" in p for p in problems)
    assert any(p.startswith("world.yaml:6:") and "unknown key 'robots'" in p for p in problems)
    assert any(p.startswith("world.yaml:8:") and "not a PEM certificate" in p for p in problems)


def test_a_scenario_without_entra_id_serves_no_graph() -> None:
    assert build_app(parse_scenario("confluence_dc: {}")).state.ctx.entra_id is None


async def test_the_simulators_rate_limit_answers_graph_with_graphs_429(keys: Keys) -> None:
    scene = parse_scenario(scenario(keys) + "sim: {rate_limit: {fill_rate: 1, interval_seconds: 60, max: 1}}\n")
    clock = Clock()
    app = build_app(scene, clock=clock)
    transport = GraphContractTransport(httpx.ASGITransport(app=app))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        token = await client.post(f"/{TENANT}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET, "scope": SCOPE})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        first = await client.get("/v1.0/users", headers=headers)
        limited = await client.get("/v1.0/users", headers=headers)
    assert first.status_code == 200 and "x-ratelimit-limit" not in first.headers
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    assert limited.json()["error"]["code"] == "TooManyRequests"
    assert app.state.ctx.log.counts["entra-id"] == 3
    transport.check()


async def test_wrong_methods_under_entra_answer_in_graphs_format(entra: Entra) -> None:
    response = await entra.client.get(f"/{TENANT}/oauth2/v2.0/token")
    assert response.status_code == 405
    assert response.json()["error"] == {"code": "BadRequest",
                                        "message": f"No GET operation at /entra/{TENANT}/oauth2/v2.0/token"}
