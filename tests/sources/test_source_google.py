"""The Google Workspace source against the simulator (reconcile/sim/google_workspace/): the example plans
exactly through the CLI and applies; suspended/archived -> disabled with the raw fact in the reason; nested
groups (cycles too), CUSTOMER members, a 10,000-member group; every bad input one line naming the source and
the request; Google's quota refusals honoured on a fake clock; no key, assertion or token in any output.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from starlette.applications import Starlette
from typer.testing import CliRunner

from reconcile.cli import app
from reconcile.config import load
from reconcile.config.idp_google import CustomerMembers, GoogleGroupsSettings, GoogleKey, GoogleSourceSettings
from reconcile.errors import ConfigError, SourceError
from reconcile.model import DesiredState, Globs, Status
from reconcile.plan import Plan
from reconcile.settings import HttpSettings, Secret
from reconcile.sim.app import build_app
from reconcile.sim.context import GOOGLE, SimContext
from reconcile.sim.google_workspace.errors import google_error_body
from reconcile.sim.google_workspace.world import GoogleWorld
from reconcile.sim.scenario import parse_scenario
from reconcile.sim.server import running
from reconcile.sources.google_workspace import GoogleSource
from reconcile.sources.google_workspace.api import Directory, google_backoff
from tests.support.contract_idp import IdpTransport
from tests.support.fake_clock import FakeClock
from tests.support.idp import BASE, WALL, private_key, public_pem, yaml_string

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "desired" / "examples" / "google-workspace"
SA = "reconcile@sim-project.iam.gserviceaccount.com"
USERS = "/google/admin/directory/v1/users"


def world(*, scopes: str = "", quota: str = "", groups: str = "") -> str:
    return f"""
google_workspace:
  customer_id: C01test
  domain: example.com
  {quota}
  service_accounts:
    - client_email: {SA}
      public_keys: [{yaml_string(public_pem("google-sa"))}]
      {scopes}
  users:
    - {{primary_email: admin@example.com, admin: true}}
    - {{primary_email: alice@example.com, given_name: Alice, family_name: Archer}}
    - {{primary_email: bob@example.com, suspended: true}}
    - {{primary_email: carol@example.com, archived: true}}
    - {{primary_email: dave@example.com}}
  groups:
{groups or DEFAULT_GROUPS}
"""


DEFAULT_GROUPS = """\
    - {email: eng@example.com, name: Engineering, members: [alice@example.com, platform@example.com,
        {email: bob@example.com, role: OWNER}]}
    - {email: platform@example.com, name: Platform, members: [dave@example.com]}
    - {email: all@example.com, name: All, members: [{type: CUSTOMER}, carol@example.com]}
"""


def key_json(name: str = "google-sa", **changes: Any) -> str:
    pem = private_key(name).private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()).decode()
    data = {"type": "service_account", "client_email": SA, "client_id": "1234567890", "private_key": pem,
            "private_key_id": "k1", "token_uri": f"{BASE}/google/token", **changes}
    return json.dumps(data)


def config(**changes: Any) -> GoogleSourceSettings:
    base = GoogleSourceSettings(
        name="g", credentials=Secret(key_json(), "${GOOGLE_KEY}"), subject="admin@example.com",
        api_url=f"{BASE}/google", token_uri=f"{BASE}/google/token",
        groups=GoogleGroupsSettings(map=(("Engineering", "team-eng"), ("Platform", "team-platform"),
                                       ("All", "team-all"))),
        http=HttpSettings(max_retries=3, concurrency=4))
    return replace(base, **changes)


class Sim:
    """The simulator in process, its clocks driven by the client's fake clock (quota windows move)."""

    def __init__(self, text: str, *, generated: GoogleWorld | None = None) -> None:
        self.fake = FakeClock(epoch=WALL)
        self.app = build_app(parse_scenario(text), clock=self.fake.monotonic, wall=self.fake.wall)
        if generated is not None:
            generated.service_accounts = self.world.service_accounts
            self.ctx.extra["google_workspace"] = generated

    @property
    def ctx(self) -> SimContext:
        ctx: SimContext = self.app.state.ctx
        return ctx

    @property
    def world(self) -> GoogleWorld:
        found = self.ctx.extra["google_workspace"]
        assert isinstance(found, GoogleWorld)
        return found

    def source(self, cfg: GoogleSourceSettings | None = None, *,
               wrap: Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport] | None = None) -> GoogleSource:
        transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=self.app)
        if wrap is not None:
            transport = wrap(transport)
        return GoogleSource(cfg or config(), transport=transport, clock=self.fake.clock(),
                            backoff=google_backoff(random.Random(7)))

    def read(self, cfg: GoogleSourceSettings | None = None, **options: Any) -> DesiredState:
        state = asyncio.run(self.source(cfg, **options).read())
        # built in one pass, not by DesiredState.build: the same state it would make
        assert state == DesiredState.build(state.users.values(), state.groups, state.notes)
        return state

    def refused(self, cfg: GoogleSourceSettings | None = None, **options: Any) -> str:
        with pytest.raises(SourceError) as caught:
            self.read(cfg, **options)
        text = caught.value.message + (f"; {caught.value.hint}" if caught.value.hint else "")
        assert "\n" not in text and text.startswith("source 'g' (google-workspace): "), text
        return text


class Recorder(httpx.AsyncBaseTransport):
    """Every request's path and query, and every answer's status (the simulator logs only writes)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner, self.urls, self.statuses = inner, list[str](), list[int]()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(f"{request.url.path}?{request.url.query.decode()}")
        response = await self.inner.handle_async_request(request)
        self.statuses.append(response.status_code)
        return response


class Tamper(httpx.AsyncBaseTransport):
    """Replaces the answers `answer(request, n)` returns for (n = how many requests matched so far)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, path: str,
                 answer: Callable[[int], httpx.Response | None], query: str = "") -> None:
        self.inner, self.path, self.answer, self.query, self.seen = inner, path, answer, query, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith(self.path) and self.query in request.url.query.decode():
            self.seen += 1
            replaced = self.answer(self.seen)
            if replaced is not None:
                return replaced
        return await self.inner.handle_async_request(request)


def google(status: int, reason: str, message: str) -> httpx.Response:
    return httpx.Response(status, json=google_error_body(status, message, reason))


# ------------------------------------------------------------------------------- the example, via the CLI


@pytest.fixture(name="example")
def example_fixture(tmp_path: Path) -> Iterator[tuple[Starlette, Path]]:
    sim = build_app()
    with running(sim) as url:
        desired = tmp_path / "desired"
        desired.mkdir()
        for path in EXAMPLE.iterdir():
            desired.joinpath(path.name).write_text(
                path.read_text(encoding="utf-8").replace("http://127.0.0.1:8990", url), encoding="utf-8")
        yield sim, desired


def cli(desired: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--desired", str(desired), "--state-dir", str(desired.parent / "state"),
                                      *args], env={"NO_COLOR": "1", "CONFLUENCE_TOKEN": "example-admin-token"})
    return result.exit_code, result.output


def test_the_example_plans_exactly_through_the_cli_applies_and_converges(example: tuple[Starlette, Path]) -> None:
    sim, desired = example
    plan_file = desired.parent / "plan.json"
    code, output = cli(desired, "plan", "--out", str(plan_file), "--detailed-exitcode")
    assert code == 3, output
    plan = Plan.loads(plan_file.read_text(encoding="utf-8"))
    assert [(a.kind.value, a.subject.identity, a.group or "", a.reason) for a in plan.actions] == [
        ("add_member", "alice@example.com", "team-platform", "desired member of team-platform"),
        ("add_member", "bob@example.com", "team-platform", "desired member of team-platform"),
        ("add_member", "dave@example.com", "team-docs", "desired member of team-docs"),
        ("add_member", "erin@example.com", "team-security", "desired member of team-security"),
        ("add_member", "grace@example.com", "team-platform", "desired member of team-platform"),  # nested
        ("remove_member", "alice@example.com", "team-docs", "not a desired member of team-docs"),
        ("remove_member", "bob@example.com", "team-docs", "not a desired member of team-docs"),
        ("remove_member", "dave@example.com", "team-platform", "not a desired member of team-platform"),
        ("disable", "dave@example.com", "", "desired status is disabled (google suspended=true)"),
        ("disable", "erin@example.com", "", "desired status is disabled (google archived=true)"),
    ]
    assert [(w.kind.value, w.subject) for w in plan.warnings] == [("source", "everyone@example.com")]
    assert "CUSTOMER member (every user of the account): not expanded" in plan.warnings[0].message
    code, output = cli(desired, "apply", str(plan_file), "--approve", plan.digest)
    assert code == 0, output
    code, output = cli(desired, "plan", "--detailed-exitcode")
    assert code == 0, output  # converged
    google = [e for e in sim.state.ctx.log.entries if e.api == GOOGLE and e.kind == "request"]
    assert google and {e.method for e in google} <= {"GET", "POST"}
    assert all(e.path.endswith("/token") for e in google if e.method == "POST")  # a source never writes


def test_no_key_assertion_or_token_reaches_output_plan_journal_or_log(example: tuple[Starlette, Path]) -> None:
    sim, desired = example
    plan_file = desired.parent / "plan.json"
    outputs = []
    code, output = cli(desired, "--verbose", "plan", "--out", str(plan_file))
    assert "/google/admin/directory/v1/users" in output and "/google/token" in output  # debug logs, captured
    outputs.append(output)
    plan = Plan.loads(plan_file.read_text(encoding="utf-8"))
    code, output = cli(desired, "--verbose", "apply", str(plan_file), "--approve", plan.digest)
    assert code == 0, output
    outputs.append(output)
    tokens = list(sim.state.ctx.extra["google_workspace"].access_tokens)
    assert tokens, "no token was issued"
    key = json.loads((EXAMPLE / "service-account.json").read_text())["private_key"]
    secrets = [*tokens, "ya29.", "eyJ", *(line for line in key.splitlines()[1:-1])]
    written = [p.read_text(encoding="utf-8", errors="replace") for p in (desired.parent / "state").rglob("*")
               if p.is_file()]
    for text in [*outputs, plan_file.read_text(encoding="utf-8"), *written]:
        for secret in secrets:
            assert secret not in text


def test_a_refusal_through_the_cli_is_one_line_exit_1_and_nothing_planned(example: tuple[Starlette, Path]) -> None:
    _, desired = example
    source = desired / "google.yaml"
    source.write_text(source.read_text().replace("subject: admin@example.com", "subject: alice@example.com"))
    plan_file = desired.parent / "plan.json"
    code, output = cli(desired, "plan", "--out", str(plan_file))
    assert code == 1, output
    assert "Traceback" not in output and not plan_file.exists()
    line = next(x for x in output.splitlines() if "google-workspace" in x)
    assert "source 'google' (google-workspace): GET http://127.0.0.1:" in line
    assert "/google/admin/directory/v1/users?customer=my_customer" in line
    assert "-> 403: Not Authorized to access this resource/api" in line
    assert "alice@example.com holds an admin role" in output


def test_the_example_directory_loads_with_its_key_file() -> None:
    cfg = load(EXAMPLE, env={"CONFLUENCE_TOKEN": "x"}).sources["google"]
    assert isinstance(cfg, GoogleSourceSettings)
    assert cfg.credentials.reference.endswith("service-account.json") and "PRIVATE" not in repr(cfg)


# ------------------------------------------------------------------------------------------ reading


def test_suspended_or_archived_is_disabled_with_the_raw_fact_and_nested_groups_expand() -> None:
    contract: list[IdpTransport] = []

    def validated(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        contract.append(IdpTransport(inner))
        return contract[-1]

    state = Sim(world()).read(wrap=validated)
    assert contract[0].exchanges == 6  # token, users, groups, 3 member lists: requests and answers as documented
    contract[0].check()
    got = {k: (u.status, sorted(u.groups), u.fact) for k, u in state.users.items()}
    assert got == {
        "admin@example.com": (Status.ACTIVE, [], "google suspended=false archived=false"),
        "alice@example.com": (Status.ACTIVE, ["team-eng"], "google suspended=false archived=false"),
        "bob@example.com": (Status.DISABLED, ["team-eng"], "google suspended=true"),  # an OWNER is a member
        "carol@example.com": (Status.DISABLED, ["team-all"], "google archived=true"),
        "dave@example.com": (Status.ACTIVE, ["team-eng", "team-platform"], "google suspended=false archived=false"),
    }
    assert state.users["alice@example.com"].display_name == "Alice Archer"
    assert [(n.source, n.subject) for n in state.notes] == [("g", "all@example.com")]


def test_key_username_domain_query_and_the_groups_chosen() -> None:
    sim, recorder = Sim(world()), None

    def record(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        nonlocal recorder
        recorder = Recorder(inner)
        return recorder

    cfg = config(key=GoogleKey.USERNAME, customer=None, domain="example.com",
                 groups=GoogleGroupsSettings(include=Globs(("platform@example.com",)), nested=False))
    state = sim.read(replace(cfg, users=replace(cfg.users, query="isSuspended=false isArchived=false")), wrap=record)
    assert {k: sorted(u.groups) for k, u in state.users.items()} == {
        "admin": [], "alice": [], "dave": ["platform"]}  # no map: the group's own name
    assert state.users["dave"].identity.username == "dave" and state.users["dave"].identity.email is None
    assert recorder is not None
    queries = [u for u in recorder.urls if u.startswith(USERS)]
    assert queries and all("domain=example.com" in q and "query=isSuspended%3Dfalse+isArchived%3Dfalse" in q
                           for q in queries)  # passed through as written


def test_a_group_cycle_ends_and_counts_each_member_once() -> None:
    cycle = """\
    - {email: a@example.com, name: A, members: [alice@example.com, b@example.com]}
    - {email: b@example.com, name: B, members: [dave@example.com, a@example.com]}
"""
    state = Sim(world(groups=cycle)).read(config(groups=GoogleGroupsSettings(map=(("A", "team-a"), ("B", "team-b")))))
    assert sorted(state.users["alice@example.com"].groups) == ["team-a", "team-b"]
    assert sorted(state.users["dave@example.com"].groups) == ["team-a", "team-b"]


def test_a_customer_member_is_reported_or_expanded_as_configured() -> None:
    reported = Sim(world()).read()
    assert "team-all" not in reported.users["alice@example.com"].groups
    (note,) = reported.notes
    assert "all@example.com has a CUSTOMER member" in note.message and "team-all" in note.message
    cfg = config()
    assert cfg.groups is not None
    expanded = Sim(world()).read(replace(cfg, groups=replace(cfg.groups, customer=CustomerMembers.EXPAND)))
    assert all("team-all" in u.groups for u in expanded.users.values()) and not expanded.notes


@pytest.mark.slow  # a large world is the point: make test runs it, make check leaves it out
def test_a_10000_member_group_is_read_to_its_last_page() -> None:
    sim = Sim(world(), generated=GoogleWorld.generate(10_000, 1, 10_000, seed=3))
    source = sim.source(config(subject="user000001@example.com",  # the generated account's admin
                               groups=GoogleGroupsSettings(map=(("team-0000", "everyone"),))))
    state = asyncio.run(source.read())
    assert len(state.users) == 10_000
    assert sum(1 for u in state.users.values() if "everyone" in u.groups) == 10_000
    # 1 token + 20 user pages of 500 (read from both ends: one more where they meet, maybe one cancelled)
    # + 1 group page + 50 member pages of 200: nothing truncated
    assert 1 + 21 + 1 + 50 <= source.requests <= 1 + 22 + 1 + 50


@pytest.mark.parametrize("size", [1, 499, 500, 501, 1000, 1001, 1499, 2750])
def test_users_read_from_both_ends_are_every_user_once(size: int) -> None:
    sim = Sim(world(), generated=GoogleWorld.generate(size, 1, 1, seed=size))
    recorders: list[Recorder] = []

    def record(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        recorders.append(Recorder(inner))
        return recorders[-1]

    state = sim.read(config(subject="user000001@example.com", groups=None), wrap=record)
    assert sorted(state.users) == sorted(u.primary_email for u in sim.world.users)
    pages = [u for u in recorders[0].urls if u.startswith(USERS)]
    assert len(pages) <= -(-size // 500) + 2  # at most one page more than a single chain, and a cancelled one
    assert ("sortOrder=DESCENDING" in " ".join(pages)) == (size > 500)  # one page: no second chain


# --------------------------------------------------------------------------------------- bad input


def other_key() -> str:
    return key_json("another-key")


@pytest.mark.parametrize(("change", "expected"), [
    ({"credentials": Secret(key_json("not-registered"), "${GOOGLE_KEY}")},
     ["POST http://idp.test/google/token -> 400: invalid_grant: Invalid JWT Signature",
      f"does not belong to {SA}"]),
    ({"credentials": Secret(json.dumps({"type": "service_account", "client_email": SA,
                                        "private_key": "-----BEGIN PRIVATE KEY-----\nnot a key\n"}), "${K}")},
     ["POST http://idp.test/google/token: cannot sign with this RS256 key", "check the private key"]),
    ({"credentials": Secret("{not json", "${GOOGLE_KEY}")}, ["<secret ${GOOGLE_KEY}> is not JSON"]),
    ({"subject": "nobody@example.com"},
     ["-> 400: invalid_grant: Invalid email or User ID", "subject (nobody@example.com) is not a user"]),
    ({"subject": "alice@example.com"},
     ["GET http://idp.test/google/admin/directory/v1/users?customer=my_customer",
      "-> 403: Not Authorized to access this resource/api", "alice@example.com holds an admin role",
      "domain-wide delegation grants"]),
    ({"customer": "C0other"}, ["users?customer=C0other", "-> 403: Not Authorized to access this resource/api"]),
    ({"groups": GoogleGroupsSettings(include=Globs(("eng@example.com", "nope@example.com")))},
     ["no group 'nope@example.com' in customer my_customer", "groups.include"]),
    ({"users": config().users.__class__(query="department='Sales'")},
     ["users?customer=my_customer", "query=department", "-> 400: Invalid Input",
      "Google rejected the query \"department='Sales'\""]),
])
def test_bad_input_is_one_line_naming_the_source_and_the_request(change: dict[str, Any], expected: list[str]) -> None:
    text = Sim(world()).refused(config(**change))
    for part in expected:
        assert part in text


def test_a_delegation_grant_without_the_group_scope_says_which_scopes_to_grant() -> None:
    only_users = "scopes: [https://www.googleapis.com/auth/admin.directory.user.readonly]"
    text = Sim(world(scopes=only_users)).refused()
    assert "-> 401: unauthorized_client" in text
    assert ("give client id 1234567890 exactly these scopes: "
            "https://www.googleapis.com/auth/admin.directory.user.readonly, "
            "https://www.googleapis.com/auth/admin.directory.group.readonly") in text
    assert Sim(world(scopes=only_users)).read(config(groups=None)).users  # users alone are allowed


def test_html_from_a_proxy_is_named_not_parsed() -> None:
    def login_page(n: int) -> httpx.Response:
        return httpx.Response(200, text="<html><body>Sign in to the proxy</body></html>",
                              headers={"content-type": "text/html"})

    text = Sim(world()).refused(wrap=lambda t: Tamper(t, "/google/admin/directory/v1/groups", login_page))
    assert "GET http://idp.test/google/admin/directory/v1/groups?customer=my_customer" in text
    assert "-> 200: the server answered text/html, not JSON" in text and "a proxy or login page" in text
    text = Sim(world()).refused(wrap=lambda t: Tamper(t, "/google/token", login_page))
    assert "POST http://idp.test/google/token -> 200: the token endpoint answered text/html" in text


def test_a_member_page_failing_after_retries_stops_the_read() -> None:
    sim = Sim(world())
    text = sim.refused(wrap=lambda t: Tamper(t, "/google/admin/directory/v1/groups/", lambda n: google(
        503, "backendError", "Backend Error")))
    assert "/members?maxResults=200" in text and "-> 503: Backend Error" in text


def test_users_chains_that_fail_before_they_meet_stop_the_read() -> None:
    def failing(n: int) -> httpx.Response:
        return google(503, "backendError", "Backend Error")

    sim = Sim(world(), generated=GoogleWorld.generate(1200, 1, 1))
    text = sim.refused(config(subject="user000001@example.com", groups=None), wrap=lambda t: Tamper(
        Tamper(t, USERS, failing, query="pageToken="), USERS, failing, query="sortOrder=DESCENDING"))
    assert "users?customer=my_customer" in text and "-> 503: Backend Error" in text


# --------------------------------------------------------------------------------------- throttling


def test_user_rate_limit_exceeded_is_waited_out_on_the_fake_clock() -> None:
    sim = Sim(world(quota="quota: {queries_per_minute: 3}"))
    recorders: list[Recorder] = []

    def record(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        recorders.append(Recorder(inner))
        return recorders[-1]

    state = sim.read(config(http=HttpSettings(concurrency=4)), wrap=record)
    assert len(state.users) == 5 and sorted(state.users["dave@example.com"].groups) == ["team-eng", "team-platform"]
    (recorder,) = recorders
    assert 403 in recorder.statuses  # Google said userRateLimitExceeded, and the reads went on after a wait
    assert sim.fake.now - 1000.0 >= 60.0  # 5 reads at 3 a minute: the next minute came


def test_rate_limit_exceeded_429_and_quota_exceeded_403_are_retried() -> None:
    answers = {1: google(429, "rateLimitExceeded", "Rate Limit Exceeded"),
               2: google(403, "quotaExceeded", "Quota exceeded")}
    sim = Sim(world())
    source = sim.source(wrap=lambda t: Tamper(t, USERS, answers.get))
    state = asyncio.run(source.read())
    assert len(state.users) == 5
    assert len(sim.fake.sleeps) >= 2 and all(s > 0 for s in sim.fake.sleeps)


def test_a_quota_that_never_recovers_fails_closed() -> None:
    text = Sim(world()).refused(wrap=lambda t: Tamper(t, USERS, lambda n: google(
        403, "userRateLimitExceeded", "User Rate Limit Exceeded")))
    assert "users?customer=my_customer" in text and "-> 403: User Rate Limit Exceeded" in text
    assert "quota is exhausted" in text


def test_the_debug_log_shows_no_key_assertion_or_token(caplog: pytest.LogCaptureFixture) -> None:
    sim = Sim(world())
    with caplog.at_level(logging.DEBUG):
        sim.read()
    tokens = list(sim.world.access_tokens)
    assert tokens
    text = caplog.text
    assert "/google/token" in text  # the token request is logged, its form is not
    for secret in [*tokens, "eyJ", "PRIVATE KEY"]:
        assert secret not in text


# ------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(("source", "expected"), [
    ("credentials_file: key.json\n    customer: C01\n    domain: example.com",
     "sources.google: give customer or domain, not both"),
    ('credentials: \'{"type": "service_account"}\'', "sources.google.credentials: literal secret: use ${ENV_VAR} "
     "or credentials_file:"),
    ("credentials_file: key.json\n    credentials: ${GOOGLE_KEY}", "give exactly one of: credentials"),
    ("credentials_file: key.json\n    api_url: http://google.internal.example/google",
     "sources.google.api_url: http:// to a host that is not this machine"),
    ("credentials_file: key.json\n    groups: {map: {'[oops': team}}", "bad glob '[oops'"),
])
def test_config_problems_are_reported_where_they_are_written(tmp_path: Path, source: str, expected: str) -> None:
    (tmp_path / "key.json").write_text(key_json())
    (tmp_path / "desired.yaml").write_text(
        "version: 1\ntarget: {type: memory, state: state.json}\nscope: {users: ['*']}\n"
        f"sources:\n  google:\n    type: google-workspace\n    {source}\n")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, env={"GOOGLE_KEY": key_json()})
    assert expected in str(caught.value)


# ------------------------------------------------------------------ cached pages and typed decoding (issue 13)


def test_a_user_changed_between_reads_is_served_changed_not_from_the_cache() -> None:
    sim = Sim(world())
    first = sim.read(config(groups=None))
    user = next(u for u in sim.world.users if not u.admin and first.users[u.primary_email].status is Status.ACTIVE)
    key = user.primary_email
    user.suspended = True  # a mutation in place: the encoded fragment must not outlive it
    assert sim.read(config(groups=None)).users[key].status is Status.DISABLED


def test_a_page_whose_list_is_not_a_list_fails_closed() -> None:
    text = Sim(world()).refused(wrap=lambda t: Tamper(t, USERS, lambda n: httpx.Response(200, json={
        "kind": "admin#directory#users", "users": "everyone"})))
    assert "-> 200: `users` is not a list" in text


def test_two_users_of_one_key_name_both_in_read_order() -> None:
    text = world().replace("    - {primary_email: dave@example.com}\n",
                           "    - {primary_email: dave@example.com}\n    - {primary_email: alice@sub.example.com}\n")
    said = Sim(text).refused(config(key=GoogleKey.USERNAME))
    assert "two users have the key 'alice' (alice@example.com and alice@sub.example.com)" in said, said


def test_users_read_are_records_the_collector_never_walks() -> None:
    source = Sim(world()).source()

    async def read() -> list[Any]:
        api = Directory(source.config, transport=source._transport, backoff=source._backoff, clock=source._clock)
        try:
            return await source._users(api)
        finally:
            await api.aclose()

    users = asyncio.run(read())
    assert [u.email for u in users][:2] == ["admin@example.com", "alice@example.com"]
    assert not any(gc.is_tracked(u) for u in users)  # 100,000 of them a read: built in C, never walked
