"""The Entra ID source (`type: entra-id`) against the simulator's Graph: the example plans exactly through the
CLI, certificate and secret auth, transitive members with cycles, non-user members reported in the plan,
and every bad input (credentials, certificate, permission, group name, $filter, HTML, throttling, a
failing page) as one line naming the source, exit 1, nothing planned, no secret anywhere.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route
from typer.testing import CliRunner

from reconcile.cli import app
from reconcile.config.idp_entra import (
    EntraGroupsSettings,
    EntraGuests,
    EntraKey,
    EntraSourceSettings,
    EntraUsersSettings,
)
from reconcile.errors import SourceError
from reconcile.http import Backoff
from reconcile.model import DesiredState, Globs, Status
from reconcile.plan import Plan
from reconcile.settings import HttpSettings, Secret
from reconcile.sim.app import build_app
from reconcile.sim.entra_id.world import USER, EntraApp, EntraGroup, EntraUser, EntraWorld
from reconcile.sim.scenario import load_scenario, parse_scenario
from reconcile.sim.server import running
from reconcile.sources.entra_id import EntraSource
from tests.support.contract_graph import GraphContractTransport
from tests.support.entra import CLIENT, SECRET, TENANT, WEAK_CLIENT, Keys, key_and_cert, scenario
from tests.support.fake_clock import FakeClock

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "desired" / "examples" / "entra-id"
EXAMPLE_SECRET = "example-entra-secret"
BASE = "http://testserver/entra"
ENV = {"NO_COLOR": "1", "CONFLUENCE_TOKEN": "example-admin-token", "ENTRA_CLIENT_SECRET": EXAMPLE_SECRET}


def rows(plan: Plan) -> list[tuple[str, str, str, str]]:
    return [(a.kind.value, a.subject.identity, a.group or "", a.reason) for a in plan.actions]


def leaked(texts: list[str], *secrets: str) -> list[str]:
    """The secrets (or the simulator's access tokens, `sim-entra-…`) found in any of `texts`."""
    return [s for s in (*secrets, "sim-entra-") for t in texts if s in t]


def state_texts(*dirs: Path) -> list[str]:
    return [p.read_text(encoding="utf-8", errors="replace") for d in dirs for p in d.rglob("*") if p.is_file()]


@dataclass
class Run:
    desired: Path
    state: Path

    def __call__(self, *args: str, **env: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, ["--desired", str(self.desired), "--state-dir", str(self.state), *args],
                                    env={**ENV, **env})
        return result.exit_code, result.output


# ------------------------------------------------------------------------------- the example, through the CLI


def test_the_example_plans_exactly_through_the_cli_with_no_secret_anywhere(tmp_path: Path) -> None:
    with running(build_app()) as url:
        desired = tmp_path / "desired"
        desired.mkdir()
        for path in EXAMPLE.glob("*.yaml"):
            (desired / path.name).write_text(path.read_text(encoding="utf-8").replace("http://127.0.0.1:8990", url),
                                             encoding="utf-8")
        run = Run(desired, tmp_path / "state")
        plan_file = tmp_path / "plan.json"
        code, output = run("-v", "plan", "--out", str(plan_file), "--detailed-exitcode")  # debug logs too
    assert code == 3, output
    assert "/oauth2/v2.0/token" in output  # the token request is logged (its body is not)
    plan = Plan.loads(plan_file.read_text(encoding="utf-8"))
    assert rows(plan) == [
        ("add_member", "carol@example.com", "team-platform", "desired member of team-platform"),
        ("add_member", "grace@example.com", "team-docs", "desired member of team-docs"),
        ("add_member", "olivia@example.com", "team-support", "desired member of team-support"),
        ("remove_member", "mallory@example.com", "team-platform", "not a desired member of team-platform"),
        ("remove_member", "niaj@example.com", "team-support", "not a desired member of team-support"),
        ("disable", "rupert@example.com", "", "desired status is disabled (entra accountEnabled=false)"),
        ("disable", "sybil", "", "not in the desired state (policy.absent: disable)"),
    ]
    assert [(w.kind.value, w.subject, w.message) for w in plan.warnings if w.kind.value == "source"] == [
        ("source", "source entra", "2 group members skipped, not users: 1 device, 1 service principal (only users "
                                   "are desired users)")]
    assert sorted((w.kind.value, w.subject) for w in plan.warnings if w.kind.value != "source") == [
        ("missing_user", "yusuf@example.com"), ("missing_user", "zoe@example.com"),
        ("protected", "admin"), ("protected", "svc-backup")]
    assert "! source: source entra: 2 group members skipped" in output  # shown with the plan
    texts = [output, plan_file.read_text(encoding="utf-8"), *state_texts(tmp_path / "state")]
    assert leaked(texts, EXAMPLE_SECRET) == []


# ------------------------------------------------------------------------------- in-process reads


@pytest.fixture(scope="module", name="keys")
def keys_fixture() -> Keys:
    key, cert = key_and_cert("reconcile")
    other_key, other_cert = key_and_cert("someone-else")
    return Keys(key, cert, other_key, other_cert)


def pem_key(keys: Keys, *, other: bool = False) -> str:
    key = keys.other_key if other else keys.key
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


@dataclass
class Tenant:
    app: Starlette
    fake: FakeClock
    world: EntraWorld

    contract: GraphContractTransport | None = None

    def source(self, config: EntraSourceSettings) -> EntraSource:
        backoff = Backoff(rng=random.Random(0), jitter=(1.0, 1.0))
        # every Graph request and response checked against the Graph slice (tests/support/contract_graph.py)
        self.contract = GraphContractTransport(httpx.ASGITransport(app=self.app))
        return EntraSource(config, transport=self.contract, backoff=backoff, clock=self.fake.clock())

    def read(self, config: EntraSourceSettings) -> DesiredState:
        source = self.source(config)
        try:
            state = asyncio.run(source.read())
            # built in one pass, not by DesiredState.build: the same state it would make
            assert state == DesiredState.build(state.users.values(), state.groups, state.notes)
            return state
        finally:
            assert self.contract is not None
            self.contract.check()
            assert self.contract.request_violations == [] and self.contract.uncovered == set()


def config(**changes: object) -> EntraSourceSettings:
    base = EntraSourceSettings(name="entra", tenant=TENANT, client_id=CLIENT, client_secret=Secret(SECRET, "${S}"),
                             authority=BASE, graph_url=BASE,
                             groups=EntraGroupsSettings(include=Globs(("*",)), map=(("*", "*"),)),
                             http=HttpSettings(concurrency=4, max_retries=2))
    return replace(base, **changes)  # type: ignore[arg-type]


def tenant_of(text: str, world: EntraWorld | None = None) -> Tenant:
    fake = FakeClock()
    app_ = build_app(parse_scenario(text), entra=world, clock=fake.monotonic, wall=fake.wall)
    ctx_world = app_.state.ctx.entra_id
    return Tenant(app_, fake, ctx_world)


@pytest.fixture(name="tenant")
def tenant_fixture(keys: Keys) -> Tenant:
    return tenant_of(scenario(keys))


def groups_of(state: DesiredState) -> dict[str, list[str]]:
    return {key: sorted(u.groups) for key, u in sorted(state.users.items())}


def test_users_status_fact_guests_and_transitive_members_with_a_cycle(tenant: Tenant) -> None:
    state = tenant.read(config())
    assert tenant.contract is not None and tenant.contract.validated == 8  # users, groups, 6 member reads
    users = state.users
    assert "guest@fabrikam.com" not in users and len(users) == 12  # guests excluded by default; 2 + 10 members
    assert users["bob@contoso.com"].status is Status.DISABLED
    assert users["bob@contoso.com"].fact == "entra accountEnabled=false"
    assert users["alice@contoso.com"].fact == "entra accountEnabled=true"
    groups = groups_of(state)
    # Engineering holds Backend holds Platform: nested members, expanded by transitiveMembers
    assert groups["alice@contoso.com"] == ["backend", "engineering", "platform"]
    assert groups["bob@contoso.com"] == ["backend", "engineering"]
    assert groups["user01@contoso.com"] == ["backend", "engineering", "everyone", "platform"]
    # Loop A and Loop B contain each other: both members of both, and the read ends
    assert {"loop a", "loop b"} <= set(groups["user02@contoso.com"])
    assert {"loop a", "loop b"} <= set(groups["user03@contoso.com"])
    assert [n.message for n in state.notes] == [
        "2 group members skipped, not users: 1 device, 1 service principal (only users are desired users)"]


def test_two_groups_mapped_to_one_name_give_it_once(tenant: Tenant) -> None:
    # members are filed as one list of names per user (each group's name appended): the desired user holds a
    # name once however many of its groups map to it, and the state is what DesiredState.build makes of it
    state = tenant.read(config(groups=EntraGroupsSettings(include=Globs(("Loop *",)), map=(("loop *", "loops"),))))
    assert groups_of(state)["user02@contoso.com"] == ["loops"] and state.groups == frozenset({"loops"})
    assert state == DesiredState.build(list(state.users.values()), state.groups, state.notes)


def test_guests_included_and_the_upn_key(tenant: Tenant) -> None:
    state = tenant.read(config(users=EntraUsersSettings(guests=EntraGuests.INCLUDE), key=EntraKey.UPN, groups=None))
    assert "guest_fabrikam.com#ext#@contoso.onmicrosoft.com" in state.users
    state = tenant.read(config(users=EntraUsersSettings(guests=EntraGuests.INCLUDE), groups=None))
    assert "guest_fabrikam.com#ext#@contoso.onmicrosoft.com" not in state.users  # no mail: no key
    assert [n.message for n in state.notes] == ["1 users skipped without a mail (key: mail)"]


def test_a_users_filter_and_explicit_group_names_are_passed_through(tenant: Tenant) -> None:
    state = tenant.read(config(users=EntraUsersSettings(filter="startswith(userPrincipalName,'user0')"),
                               groups=EntraGroupsSettings(include=Globs(("Loop A", "Every*")),
                                                        map=(("loop *", "team-*"), ("everyone", "all")))))
    assert sorted(state.users) == [f"user{i:02d}@contoso.com" for i in range(1, 10)]
    assert groups_of(state)["user02@contoso.com"] == ["all", "team-a"]
    assert state.groups == frozenset({"all", "team-a"})


def test_certificate_auth_signs_a_ps256_assertion_named_by_its_sha256_thumbprint(tenant: Tenant, keys: Keys,
                                                                                  tmp_path: Path) -> None:
    cert = tmp_path / "reconcile.crt"
    cert.write_bytes(keys.cert.public_bytes(Encoding.PEM))
    state = tenant.read(config(client_secret=None, certificate_file=str(cert),
                               private_key=Secret(pem_key(keys), "file:key.pem"), groups=None))
    assert len(state.users) == 12 and tenant.world.issued == 1


def message_of(tenant: Tenant, cfg: EntraSourceSettings) -> str:
    with pytest.raises(SourceError) as caught:
        tenant.read(cfg)
    text = str(caught.value)
    assert text.startswith("source 'entra' (entra-id): "), text
    assert "\n" not in caught.value.message and "Traceback" not in text
    assert SECRET not in text and "PRIVATE KEY" not in text and "sim-entra-" not in text
    return text


def test_a_wrong_secret_is_one_line_naming_the_token_request(tenant: Tenant) -> None:
    text = message_of(tenant, config(client_secret=Secret("wrong-secret", "${S}")))
    assert f"POST {BASE}/{TENANT}/oauth2/v2.0/token -> 401 (request id " in text
    assert "invalid_client: AADSTS7000215: Invalid client secret provided" in text
    assert "wrong-secret" not in text and "→ check the client id, its secret" in text


def test_certificate_failures_expired_unregistered_wrong_key_out_of_time(tenant: Tenant, keys: Keys,
                                                                          tmp_path: Path) -> None:
    def with_cert(cert_pem: bytes, key_pem: str) -> EntraSourceSettings:
        path = tmp_path / "c.crt"
        path.write_bytes(cert_pem)
        return config(client_secret=None, certificate_file=str(path), private_key=Secret(key_pem, "file:k.pem"))

    mine = keys.cert.public_bytes(Encoding.PEM)
    assert keys.cert.not_valid_after_utc == dt.datetime(2035, 12, 30, tzinfo=dt.UTC)
    # expired: refused before any request (the certificate of fixtures_entra ends in 2036)
    late = tenant_of(scenario(keys))
    late.fake.epoch += 20 * 365 * 86400
    text = message_of(late, with_cert(mine, pem_key(keys)))
    assert "the certificate expired on 2035-12-30" in text and late.world.issued == 0
    # a key that is not the certificate's: its assertions would be unsigned as far as Entra is concerned
    text = message_of(tenant, with_cert(mine, pem_key(keys, other=True)))
    assert "private_key_file is not the private key of certificate_file" in text
    # a certificate the app does not hold
    other = keys.other_cert.public_bytes(Encoding.PEM)
    text = message_of(tenant, with_cert(other, pem_key(keys, other=True)))
    assert "/oauth2/v2.0/token -> 401 (request id " in text
    assert "invalid_client: AADSTS700027: The certificate with identifier used to sign the client assertion is not " \
           "registered" in text
    # our clock an hour ahead of the identity platform's: the assertion is not yet valid there
    ahead = tenant_of(scenario(keys))
    skewed = ahead.source(with_cert(mine, pem_key(keys)))
    ahead_clock = FakeClock(epoch=ahead.fake.wall() + 3600)
    skewed = EntraSource(skewed.config, transport=httpx.ASGITransport(app=ahead.app), clock=ahead_clock.clock())
    with pytest.raises(SourceError, match="AADSTS700024: Client assertion is not within its valid time range"):
        asyncio.run(skewed.read())


def test_a_missing_permission_names_it(tenant: Tenant) -> None:
    text = message_of(tenant, config(client_id=WEAK_CLIENT))
    assert (f"GET {BASE}/v1.0/groups?%24select=id,displayName&%24top=999 -> 403: Authorization_RequestDenied: the app "
            "registration lacks the application permission GroupMember.Read.All") in text
    assert f"grant GroupMember.Read.All (type Application) to client {WEAK_CLIENT}" in text


def test_an_unknown_group_name_is_an_error_not_an_empty_group(tenant: Tenant) -> None:
    text = message_of(tenant, config(groups=EntraGroupsSettings(include=Globs(("Engineering", "Enginering")))))
    assert "no group named 'Enginering' in the tenant" in text and "groups.include" in text


def test_two_users_with_one_key_stop_the_read_naming_it(tenant: Tenant) -> None:
    first, second = [u for u in tenant.world.users.values() if u.mail][:2]
    assert first.mail is not None
    tenant.world.users[second.id] = replace(second, mail=first.mail.upper())  # keys are compared normalised
    text = message_of(tenant, config())
    assert f"two users have the mail {first.mail.lower()!r}" in text and "sources.entra.key" in text


def test_a_filter_graph_rejects(tenant: Tenant) -> None:
    text = message_of(tenant, config(users=EntraUsersSettings(filter="accountEnabled ne false")))
    assert "-> 400 (request id " in text and "Unsupported or invalid query filter clause" in text
    assert "check sources.entra.users.filter" in text


def test_429_with_retry_after_is_waited_out_on_the_clock(keys: Keys) -> None:
    calm = tenant_of(scenario(keys)).read(config())
    text = scenario(keys).replace("throttle: {every: 0, retry_after: 7}", "throttle: {every: 3, retry_after: 7}")
    throttled = tenant_of(text)
    state = throttled.read(config())
    assert state == calm  # the same desired state, read through the 429s
    assert throttled.fake.sleeps and all(s == pytest.approx(7.0) for s in throttled.fake.sleeps)


def test_a_page_failing_after_the_retries_stops_the_read(keys: Keys) -> None:
    text = scenario(keys).replace("throttle: {every: 0, retry_after: 7}", "throttle: {every: 1, retry_after: 7}")
    throttled = tenant_of(text)
    message = message_of(throttled, config())
    assert f"GET {BASE}/v1.0/users?" in message and "-> 429" in message and "rate limited" in message


@pytest.mark.slow  # a large world is the point: make test runs it, make check leaves it out
def test_a_10000_member_group_is_read_to_the_last_page() -> None:
    world = EntraWorld(tenant_id=TENANT, domain="contoso.onmicrosoft.com")
    big = EntraGroup(id="00000000-0000-4000-8000-00000000b16a", display_name="Everyone")
    for i in range(10_000):
        user = EntraUser(id=f"00000000-0000-4000-8000-{i:012d}", user_principal_name=f"u{i:05d}@contoso.com",
                         display_name=f"U {i}", mail=f"u{i:05d}@contoso.com")
        world.users[user.id] = user
        big.members.append((USER, user.id))
    world.groups[big.id] = big
    world.apps[CLIENT] = EntraApp(CLIENT, "reconcile", secrets=(SECRET,),
                                  permissions=frozenset({"User.Read.All", "GroupMember.Read.All"}))
    tenant = tenant_of("entra_id: {}\n", world)
    source = tenant.source(config())
    state = asyncio.run(source.read())
    assert len(state.users) == 10_000 and all(u.groups == frozenset({"everyone"}) for u in state.users.values())
    # 1 token + 11 user pages + 1 group page + 11 member pages (999 each)
    assert source.requests == 1 + 11 + 1 + 11


# ------------------------------------------------------------------------------- bad input through the CLI

DESIRED = """\
version: 1
target:
  type: confluence-dc
  url: {url}
  auth: {{token: "${{CONFLUENCE_TOKEN}}"}}
scope: {{users: ["*@contoso.com"]}}
sources:
  entra:
    type: entra-id
    tenant: {tenant}
    client_id: {client}
    auth: {{client_secret: "${{ENTRA_CLIENT_SECRET}}"}}
    authority: {url}/entra
    graph_url: {graph}
    groups: {{include: ["*"]}}
"""


@pytest.fixture(name="served")
def served_fixture(keys: Keys) -> Iterator[str]:
    with running(build_app(parse_scenario(scenario(keys)), dc=load_scenario().dc)) as url:
        yield url


def cli_run(tmp_path: Path, url: str, *, graph: str | None = None, client: str = CLIENT) -> Run:
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "desired.yaml").write_text(DESIRED.format(url=url, tenant=TENANT, client=client,
                                                         graph=graph or f"{url}/entra"), encoding="utf-8")
    return Run(desired, tmp_path / "state")


@pytest.mark.parametrize(("secret", "client", "expected"), [
    ("wrong-secret", CLIENT, "invalid_client: AADSTS7000215"),
    (SECRET, WEAK_CLIENT, "lacks the application permission GroupMember.Read.All"),
])
def test_bad_credentials_exit_1_with_one_line_and_no_plan(served: str, tmp_path: Path, secret: str, client: str,
                                                          expected: str) -> None:
    run = cli_run(tmp_path, served, client=client)
    plan_file = tmp_path / "plan.json"
    code, output = run("plan", "--out", str(plan_file), ENTRA_CLIENT_SECRET=secret)
    assert code == 1, output
    assert expected in output and "source 'entra' (entra-id)" in output and "Traceback" not in output
    assert not plan_file.exists()
    assert leaked([output, *state_texts(tmp_path / "state")], secret) == []


def test_an_html_answer_from_a_proxy_is_named(served: str, tmp_path: Path) -> None:
    async def login_page(request: object) -> HTMLResponse:
        return HTMLResponse("<html><body>Sign in to continue</body></html>")

    proxy = Starlette(routes=[Route("/{path:path}", login_page, methods=["GET", "POST"])])
    with running(proxy) as proxy_url:
        run = cli_run(tmp_path, served, graph=proxy_url)
        code, output = run("plan", ENTRA_CLIENT_SECRET=SECRET)
    assert code == 1, output
    # users and groups are read at once: whichever answer comes back first is the one reported
    assert re.search(rf"GET {re.escape(proxy_url)}/v1.0/(users|groups)\?", output), output
    assert "-> 200: the server answered text/html, not Graph's JSON (a proxy or login page?)" in output
    assert leaked([output], SECRET) == []



# ------------------------------------------------------------------ cached pages and typed decoding (issue 13)


def test_a_user_replaced_between_reads_is_served_anew_not_from_the_row_cache(tenant: Tenant) -> None:
    assert tenant.read(config()).users["alice@contoso.com"].status is Status.ACTIVE
    alice = next(u for u in tenant.world.users.values() if u.mail == "alice@contoso.com")
    tenant.world.users[alice.id] = replace(alice, account_enabled=False)
    assert tenant.read(config()).users["alice@contoso.com"].status is Status.DISABLED


class OddUsers(httpx.AsyncBaseTransport):
    """The tenant, except that the user list answers `body` (a page of another shape than Graph's)."""

    def __init__(self, app: Starlette, body: object) -> None:
        self.inner, self.body = httpx.ASGITransport(app=app), body

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/v1.0/users"):
            return httpx.Response(200, json=self.body)
        return await self.inner.handle_async_request(request)


def test_pages_of_another_shape_are_judged_as_before_typed_decoding(tenant: Tenant) -> None:
    def read(body: object) -> DesiredState:
        return asyncio.run(EntraSource(config(groups=None), transport=OddUsers(tenant.app, body)).read())

    with pytest.raises(SourceError, match="the answer has no `value` list"):
        read({"value": {"id": "x"}})
    with pytest.raises(SourceError, match="came without accountEnabled"):
        read({"value": [{"id": "u1", "mail": "u1@contoso.com"}]})
    row = {"id": "u1", "userPrincipalName": "u1@contoso.com", "mail": "u1@contoso.com", "accountEnabled": True}
    state = read({"value": ["not an object", row, 7]})  # non-object rows are skipped, as they always were
    assert list(state.users) == ["u1@contoso.com"]
