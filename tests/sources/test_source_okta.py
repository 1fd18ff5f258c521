"""The Okta source (`type: okta`): the example plans to an exact plan through the CLI against the simulator
(API token and OAuth service app), statuses map as configured, groups are chosen by name, glob, `search`
or `q`, and every bad input is one line naming the source, the request and the fix, with nothing planned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from typer.testing import CliRunner

from reconcile.cli import app
from reconcile.errors import SourceError
from reconcile.http import Backoff
from reconcile.model import Globs
from reconcile.plan import Plan
from reconcile.settings import HttpSettings, Secret
from reconcile.sim.app import build_app
from reconcile.sim.context import SimContext
from reconcile.sim.okta.world import OktaWorld
from reconcile.sim.scenario import EXAMPLE, parse_scenario
from reconcile.sim.server import running
from reconcile.sources.okta.settings import (
    Desired,
    OktaGroupsSettings,
    OktaKey,
    OktaSourceSettings,
    OktaStatusMap,
    OktaUsersSettings,
)
from reconcile.sources.okta.source import OktaSource
from tests.support.fake_clock import FakeClock
from tests.support.idp import example_key

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DIR = ROOT / "desired" / "examples" / "okta"
KEY_PEM = EXAMPLE.with_name("idp-example-key.pem")
CLIENT_ID = "0oaexamplereconcile1"
OKTA_TOKEN = "example-okta-token"
ENV = {"NO_COLOR": "1", "CONFLUENCE_TOKEN": "example-admin-token", "OKTA_TOKEN": OKTA_TOKEN}
BASE = "http://okta.test/okta"

EXPECTED = [  # the example world's Okta org planned onto its DC site (desired/examples/okta)
    ("add_member", "alice@example.com", "team-platform", "desired member of team-platform"),
    ("add_member", "bob@example.com", "team-platform", "desired member of team-platform"),
    ("add_member", "dave@example.com", "team-docs", "desired member of team-docs"),
    ("add_member", "frank@example.com", "team-docs", "desired member of team-docs"),
    ("add_member", "heidi@example.com", "team-platform", "desired member of team-platform"),
    ("remove_member", "alice@example.com", "team-docs", "not a desired member of team-docs"),
    ("remove_member", "bob@example.com", "team-docs", "not a desired member of team-docs"),
    ("remove_member", "dave@example.com", "team-platform", "not a desired member of team-platform"),
    ("remove_member", "frank@example.com", "team-platform", "not a desired member of team-platform"),
    ("remove_member", "heidi@example.com", "team-security", "not a desired member of team-security"),
    ("disable", "frank@example.com", "", "desired status is disabled (okta status=SUSPENDED)"),
    ("disable", "heidi@example.com", "", "desired status is disabled (okta status=DEPROVISIONED)"),
]


@dataclass
class Run:
    desired: Path
    state: Path

    def __call__(self, *args: str, **env: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, ["--desired", str(self.desired), "--state-dir", str(self.state), *args],
                                    env={**ENV, **env})
        return result.exit_code, result.output

    def edit(self, old: str, new: str) -> None:
        path = self.desired / "okta.yaml"
        text = path.read_text(encoding="utf-8")
        assert old in text, old
        path.write_text(text.replace(old, new), encoding="utf-8")


def copy_example(tmp: Path, url: str) -> Run:
    desired = tmp / "desired"
    desired.mkdir(parents=True)
    for path in EXAMPLE_DIR.glob("*.yaml"):
        (desired / path.name).write_text(path.read_text(encoding="utf-8").replace("http://127.0.0.1:8990", url),
                                         encoding="utf-8")
    return Run(desired, tmp / "state")


def rows(plan: Plan) -> list[tuple[str, str, str, str]]:
    return [(a.kind.value, a.subject.identity, a.group or "", a.reason) for a in plan.actions]


class Recorder(httpx.AsyncBaseTransport):
    """The simulator in process, remembering each request line it was sent (the simulator logs no reads)."""

    def __init__(self, sim: Starlette) -> None:
        self.inner = httpx.ASGITransport(app=sim)
        self.seen: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(f"{request.method} {request.url.raw_path.decode()}")
        return await self.inner.handle_async_request(request)


@pytest.fixture(name="example")
def example_fixture() -> Iterator[tuple[Starlette, str]]:
    sim = build_app()
    with running(sim) as url:
        yield sim, url


def use_oauth(run: Run, scopes: str = "") -> None:
    (run.desired / "okta-key.pem").write_text(KEY_PEM.read_text(encoding="utf-8"), encoding="utf-8")
    run.edit("      token: ${OKTA_TOKEN}",
             f"      client_id: {CLIENT_ID}\n      private_key_file: okta-key.pem{scopes}")


# ---------------------------------------------------------------------------------------- through the CLI


def test_the_okta_example_plans_exactly(example: tuple[Starlette, str], tmp_path: Path) -> None:
    sim, url = example
    run = copy_example(tmp_path, url)
    plan_file = tmp_path / "plan.json"
    code, output = run("plan", "--out", str(plan_file), "--detailed-exitcode")
    assert code == 3, output
    assert rows(Plan.loads(plan_file.read_text(encoding="utf-8"))) == EXPECTED
    assert "1 users skipped: okta status=STAGED (users.status: absent)" in output  # ivan: not yet a user
    assert [e for e in sim.state.ctx.log.entries if e.path.startswith("/okta")] == []  # no write, no refusal


def test_an_oauth_service_app_plans_the_same(example: tuple[Starlette, str], tmp_path: Path) -> None:
    _, url = example
    run = copy_example(tmp_path, url)
    use_oauth(run)
    plan_file = tmp_path / "plan.json"
    code, output = run("plan", "--out", str(plan_file), OKTA_TOKEN="")
    assert code == 0, output
    assert rows(Plan.loads(plan_file.read_text(encoding="utf-8"))) == EXPECTED


def first_line(output: str) -> str:
    return output.splitlines()[0]


def test_a_wrong_token_is_one_line_and_nothing_is_planned(example: tuple[Starlette, str], tmp_path: Path) -> None:
    _, url = example
    run = copy_example(tmp_path, url)
    plan_file = tmp_path / "plan.json"
    code, output = run("plan", "--out", str(plan_file), OKTA_TOKEN="not-the-token")
    assert code == 1, output
    assert first_line(output).startswith(
        f"Error: source 'okta' (okta): GET {url}/okta/api/v1/groups?limit=10000 -> 401"), output
    assert first_line(output).endswith(": Invalid token provided")
    assert "check sources.okta.auth.token" in output and "Traceback" not in output
    assert not plan_file.exists()


def test_a_missing_scope_is_a_403_naming_the_scopes(example: tuple[Starlette, str], tmp_path: Path) -> None:
    _, url = example
    run = copy_example(tmp_path, url)
    use_oauth(run, "\n      scopes: [okta.users.read]")
    code, output = run("plan", "--out", str(tmp_path / "plan.json"))
    assert code == 1, output
    assert first_line(output).startswith(
        f"Error: source 'okta' (okta): GET {url}/okta/api/v1/groups?limit=10000 -> 403"), output
    assert "You do not have permission" in first_line(output)
    assert "grant the service app the scopes okta.users.read" in output
    assert not (tmp_path / "plan.json").exists()


def test_a_scope_the_app_was_not_granted_fails_at_the_token_endpoint(example: tuple[Starlette, str],
                                                                     tmp_path: Path) -> None:
    _, url = example
    run = copy_example(tmp_path, url)
    use_oauth(run, "\n      scopes: [okta.users.read, okta.groups.read, okta.apps.read]")
    code, output = run("plan")
    assert code == 1, output
    assert first_line(output).startswith(f"Error: source 'okta' (okta): POST {url}/okta/oauth2/v1/token -> 400")
    assert first_line(output).endswith(": invalid_scope: The following scopes are not allowed: okta.apps.read")
    assert "Okta API Scopes tab" in output


def test_an_unknown_group_name_is_an_error(example: tuple[Starlette, str], tmp_path: Path) -> None:
    _, url = example
    run = copy_example(tmp_path, url)
    run.edit("include: [Engineering, Documentation, Security]", "include: [Engineering, Documentaton, \"Sec*\"]")
    code, output = run("plan")
    assert code == 1, output
    assert first_line(output) == ("Error: source 'okta' (okta): no Okta group is named 'Documentaton' "
                                  "(groups.include)")
    assert "check the spelling in sources.okta.groups.include" in output


def test_a_filter_okta_rejects_is_its_400(example: tuple[Starlette, str], tmp_path: Path) -> None:
    _, url = example
    run = copy_example(tmp_path, url)
    run.edit("    key: email", "    key: email\n    users:\n      filter: 'profile.department eq \"Eng\"'")
    code, output = run("plan")
    assert code == 1, output
    assert first_line(output).startswith(f"Error: source 'okta' (okta): GET {url}/okta/api/v1/users?filter="), output
    assert "-> 400" in first_line(output) and "Invalid search criteria." in first_line(output)
    assert "Okta rejected sources.okta.users.filter 'profile.department eq \"Eng\"'" in output


def test_an_html_answer_from_a_proxy_is_named(tmp_path: Path) -> None:
    sim = build_app()

    async def proxy(scope: Any, receive: Any, send: Any) -> None:  # a login page in front of the groups
        if scope["type"] == "http" and scope["path"].startswith("/okta/api/v1/groups"):
            await HTMLResponse("<html><body>Sign in to continue</body></html>")(scope, receive, send)
            return
        await sim(scope, receive, send)

    with running(proxy) as url:  # type: ignore[arg-type]
        run = copy_example(tmp_path, url)
        code, output = run("plan", "--out", str(tmp_path / "plan.json"))
    assert code == 1, output
    assert first_line(output) == (f"Error: source 'okta' (okta): GET {url}/okta/api/v1/groups?limit=10000 -> 200: "
                                  "the answer is text/html, not Okta's JSON (a proxy or login page answered?)")
    assert "check sources.okta.url" in output and not (tmp_path / "plan.json").exists()


SECRET = "s3cr3t-okta-api-token-value"


def test_no_secret_in_any_output_plan_journal_or_log(tmp_path: Path) -> None:
    sim = build_app()
    world: OktaWorld = sim.state.ctx.extra["okta"]
    world.api_tokens.add(SECRET)
    key = KEY_PEM.read_text(encoding="utf-8")
    key_body = key[key.index("-----BEGIN"):].splitlines()[1]
    with running(sim) as url:
        run = copy_example(tmp_path / "a", url)
        plan_file = tmp_path / "plan.json"
        outputs = [run("plan", "--out", str(plan_file), OKTA_TOKEN=SECRET)[1],
                   run("show", str(plan_file), OKTA_TOKEN=SECRET)[1],
                   run("plan", OKTA_TOKEN=SECRET + "-wrong")[1]]
        plan = Plan.loads(plan_file.read_text(encoding="utf-8"))
        outputs.append(run("apply", str(plan_file), "--approve", plan.digest, OKTA_TOKEN=SECRET)[1])
        verbose = CliRunner().invoke(app, ["--verbose", "--desired", str(run.desired), "--state-dir",
                                           str(run.state), "plan"], env={**ENV, "OKTA_TOKEN": SECRET})
        outputs.append(verbose.output)
        oauth = copy_example(tmp_path / "b", url)
        use_oauth(oauth)
        outputs.append(CliRunner().invoke(app, ["--verbose", "--desired", str(oauth.desired), "--state-dir",
                                                str(oauth.state), "plan"], env={**ENV, "OKTA_TOKEN": ""}).output)
        issued = list(world.access_tokens)
    assert "GET " in outputs[-2] and "/okta/api/v1/users" in outputs[-2]  # --verbose logged the requests
    assert "POST " in outputs[-1] and issued  # the OAuth run fetched an access token
    assert "source 'okta'" in outputs[2]
    written = [plan_file, *run.state.rglob("*"), *oauth.state.rglob("*")]
    for text in [*outputs, *(p.read_text(encoding="utf-8") for p in written if p.is_file())]:
        assert SECRET not in text
        assert key_body not in text
        for token in issued:
            assert token not in text


# ---------------------------------------------------------------------------------------- in process

ORG = """\
okta:
  api_tokens: [t]
  service_apps:
    - client_id: {client_id}
      public_keys:
      - {public_key}
  rate_limits: {limits}
  users:
{users}
  groups:
    - {{name: Engineering, members: [{members}]}}
    - {{name: Eng Ops, members: [{members}]}}
    - {{name: Sales, members: [{members}]}}
"""
STATUSES = ("ACTIVE", "RECOVERY", "LOCKED_OUT", "PASSWORD_EXPIRED", "SUSPENDED", "DEPROVISIONED", "STAGED",
            "PROVISIONED")


def org_app(clock: FakeClock | None = None, limits: str = "{}") -> Starlette:
    public_key = example_key().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    users = "\n".join(f"    - {{login: {s.lower()}@example.com, status: {s}}}" for s in STATUSES)
    members = ", ".join(f"{s.lower()}@example.com" for s in STATUSES)
    text = ORG.format(client_id=CLIENT_ID, public_key='"' + public_key.replace("\n", "\\n") + '"', limits=limits,
                      users=users, members=members)
    if clock is None:
        return build_app(parse_scenario(text))
    return build_app(parse_scenario(text), clock=clock.monotonic, wall=clock.wall)


def config(**changes: Any) -> OktaSourceSettings:
    base = OktaSourceSettings(name="okta", url=BASE, token=Secret("t", "${T}"), groups=OktaGroupsSettings())
    return replace(base, **changes)


def read(sim: Starlette, cfg: OktaSourceSettings, clock: FakeClock | None = None,
         recorder: Recorder | None = None) -> dict[str, tuple[str, list[str]]]:
    source = OktaSource(cfg, transport=recorder or httpx.ASGITransport(app=sim), backoff=Backoff(base=0.5),
                        clock=clock.clock() if clock else None)
    state = asyncio.run(source.read())
    return {k: (u.status.value, sorted(u.groups)) for k, u in sorted(state.users.items())}


@pytest.mark.parametrize(("status", "default", "changed"), [
    ("ACTIVE", "active", "disabled"),
    ("RECOVERY", "active", "disabled"),
    ("LOCKED_OUT", "active", "absent"),  # locked-out people still work here, unless said otherwise
    ("PASSWORD_EXPIRED", "active", "disabled"),
    ("SUSPENDED", "disabled", "absent"),
    ("DEPROVISIONED", "disabled", "absent"),  # a plain list omits them: read with a status filter
    ("STAGED", "absent", "active"),
    ("PROVISIONED", "absent", "disabled"),
])
def test_status_mapping(status: str, default: str, changed: str) -> None:
    sim = org_app()
    key = f"{status.lower()}@example.com"

    def outcome(mapping: OktaStatusMap) -> str:
        users = read(sim, config(users=OktaUsersSettings(status=mapping)))
        return users[key][0] if key in users else "absent"

    assert outcome(OktaStatusMap()) == default
    assert outcome(replace(OktaStatusMap(), **{status.lower(): Desired(changed)})) == changed
    source = OktaSource(config(), transport=httpx.ASGITransport(app=sim))
    state = asyncio.run(source.read())
    if key in state.users:
        assert state.users[key].fact == f"okta status={status}"


def test_deprovisioned_users_are_read_only_when_the_mapping_needs_them() -> None:
    sim = org_app()
    recorder = Recorder(sim)
    read(sim, config(), recorder=recorder)
    read(sim, config(users=OktaUsersSettings(status=replace(OktaStatusMap(), deprovisioned=Desired.ABSENT))),
         recorder=recorder)
    users = sorted(r for r in recorder.seen if r.startswith("GET /okta/api/v1/users"))
    assert users == ["GET /okta/api/v1/users?filter=status+eq+%22DEPROVISIONED%22&limit=200",
                     "GET /okta/api/v1/users?limit=200", "GET /okta/api/v1/users?limit=200"]
    searched = read(sim, config(users=OktaUsersSettings(search='profile.login sw "d"')))  # a search sees them all
    assert searched == {"deprovisioned@example.com": ("disabled", ["eng ops", "engineering", "sales"])}


def test_groups_by_glob_search_q_and_map_with_login_keys() -> None:
    sim = org_app()
    cfg = config(key=OktaKey.LOGIN, users=OktaUsersSettings(filter='profile.login eq "active@example.com"'))
    by_glob = read(sim, replace(cfg, groups=OktaGroupsSettings(include=Globs(("Eng*",)), map=(("Eng*", "team-*"),))))
    assert by_glob == {"active@example.com": ("active", ["team- ops", "team-ineering"])}
    mapped = read(sim, replace(cfg, groups=OktaGroupsSettings(map=(("Engineering", "team-eng"), ("Sales", "sales")))))
    assert mapped == {"active@example.com": ("active", ["sales", "team-eng"])}
    searched = read(sim, replace(cfg, groups=OktaGroupsSettings(search='profile.name sw "Sa"')))
    assert searched == {"active@example.com": ("active", ["sales"])}
    prefix = read(sim, replace(cfg, groups=OktaGroupsSettings(q="Eng")))
    assert prefix == {"active@example.com": ("active", ["eng ops", "engineering"])}


@pytest.mark.slow  # a large world is the point: make test runs it, make check leaves it out
def test_a_ten_thousand_member_group_is_read_through_every_page() -> None:
    world = OktaWorld.generate(10_000, 1, 10_000, api_token="t")
    sim = build_app()
    sim.state.ctx.extra["okta"] = world
    recorder = Recorder(sim)
    source = OktaSource(config(), transport=recorder)
    state = asyncio.run(source.read())
    members = [u for u in state.users.values() if u.groups == frozenset({"team-0000"})]
    listed = sum(1 for u in world.users.values() if u.status not in ("STAGED", "PROVISIONED"))
    assert len(members) == len(state.users) == listed  # every member of the group, not the first page's
    pages = [r for r in recorder.seen if "/groups/" in r]
    assert len(pages) == 10 and len(set(pages)) == 10  # 1,000 a page, each page once
    assert source.requests == len(recorder.seen)


def test_a_page_failing_after_retries_stops_the_read() -> None:
    sim = org_app()
    ctx: SimContext = sim.state.ctx
    group_id = next(g.id for g in ctx.extra["okta"].groups.values() if g.name == "Sales")
    ctx.apply_settings(ctx.settings.updated({"error_rate": 1.0, "error_statuses": [503],
                                             "paths": [f"/okta/api/v1/groups/{group_id}/users"]}))
    clock = FakeClock()
    with pytest.raises(SourceError) as caught:
        read(sim, config(http=HttpSettings(max_retries=2)), clock)
    assert caught.value.message.startswith(f"source 'okta' (okta): GET {BASE}/api/v1/groups/{group_id}/users"
                                           "?limit=1000 -> 503")
    assert len(clock.sleeps) == 2  # two retries, then the whole read stops: no partial desired state


def test_the_per_minute_rate_limit_is_waited_out_on_the_fake_clock() -> None:
    clock = FakeClock(epoch=1_800_000_010.0)  # 50 s before the simulator's minute ends
    sim = org_app(clock, "{groups: 2}")
    users = read(sim, config(concurrency=1), clock)
    assert users["active@example.com"] == ("active", ["eng ops", "engineering", "sales"])
    waits = [s for s in clock.sleeps if s >= 1]
    assert waits and all(50 <= s <= 60 * 1.3 for s in waits), clock.sleeps  # until X-Rate-Limit-Reset


def test_the_concurrency_limit_429_is_honoured_then_fails_closed() -> None:
    clock = FakeClock()
    sim = org_app(clock, "{concurrency: 0}")  # every request is over Okta's concurrent-request limit
    recorder = Recorder(sim)
    one_query = OktaUsersSettings(filter='status eq "ACTIVE"')
    with pytest.raises(SourceError) as caught:
        read(sim, config(users=one_query, groups=None, http=HttpSettings(max_retries=3)), clock, recorder)
    assert len(recorder.seen) == 4  # the first try and 3 retries
    assert "-> 429" in caught.value.message and "API call exceeded rate limit" in caught.value.message
    assert "lower sources.okta.concurrency" in (caught.value.hint or "")
    assert 3 <= sum(clock.sleeps) <= 3 * 1.3, clock.sleeps  # each retry waited for the 1 s reset


def oauth(**changes: Any) -> OktaSourceSettings:
    key = KEY_PEM.read_text(encoding="utf-8")
    base = config(token=None, client_id=CLIENT_ID, private_key=Secret(key[key.index("-----BEGIN"):], "file:k"))
    return replace(base, **changes)


def test_oauth_keys_expired_unregistered_or_unusable_are_named() -> None:
    clock = FakeClock(epoch=1_800_000_000.0)
    assert read(org_app(clock), oauth(), clock)["active@example.com"][0] == "active"

    late = FakeClock(epoch=1_700_000_000.0)  # our clock is far behind Okta's: the assertion has expired
    with pytest.raises(SourceError) as caught:
        read(org_app(clock), oauth(), late)
    assert caught.value.message.startswith(f"source 'okta' (okta): POST {BASE}/oauth2/v1/token -> 401")
    assert caught.value.message.endswith(": invalid_client: The client_assertion token is expired.")
    assert "private_key" in (caught.value.hint or "")

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with pytest.raises(SourceError) as caught:
        read(org_app(clock), oauth(private_key=Secret(other, "file:k")), clock)
    assert caught.value.message.endswith(": invalid_client: The client_assertion signature is invalid.")

    with pytest.raises(SourceError) as caught:
        read(org_app(clock), oauth(private_key=Secret("not a key", "file:k")), clock)
    assert caught.value.message == (f"source 'okta' (okta): POST {BASE}/oauth2/v1/token: cannot sign with this "
                                    "RS256 key (InvalidKeyError)")


# ---------------------------------------------------------------------------------------- configuration


def config_problems(tmp_path: Path, source: str) -> str:
    from reconcile.config import load
    from reconcile.errors import ConfigError

    desired = tmp_path / "desired"
    desired.mkdir(exist_ok=True)
    (desired / "d.yaml").write_text(
        "version: 1\ntarget: {type: memory, state: w.json}\nscope: {users: ['*']}\nsources:\n  o:\n    type: okta\n"
        + source, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load(desired, env={"T": "x"})
    return str(caught.value)


@pytest.mark.parametrize(("source", "expected"), [
    ("    url: https://acme.okta.com\n    auth: {token: abc}\n", "literal secret: use ${ENV_VAR} or token_file:"),
    ("    url: http://acme.okta.com\n    auth: {token: '${T}'}\n", "`insecure: true` on the source"),
    ("    url: https://acme.okta.com\n    auth: {token: '${T}', client_id: c, private_key: '${T}'}\n",
     "give exactly one of: token, token_file, client_id + private_key"),
    ("    url: https://acme.okta.com\n    auth: {token: '${T}', key_id: k}\n", "key_id"),
    ("    url: https://acme.okta.com\n    auth: {token: '${T}'}\n    users: {search: 'a eq \"b\"', filter: 'x'}\n",
     "give at most one of: search, filter"),
    ("    url: https://acme.okta.com\n    auth: {token: '${T}'}\n    groups: {search: 'a', q: b}\n",
     "give at most one of: search, q"),
    ("    url: https://acme.okta.com\n    auth: {token: '${T}'}\n    users: {status: {staged: maybe}}\n",
     "unknown value 'maybe'"),
    ("    url: https://acme.okta.com\n    auth: {token: '${T}'}\n    key: upn\n", "unknown value 'upn'"),
    ("    url: https://acme.okta.com\n    auth: {token: '${T}'}\n    concurrency: 0\n", "concurrency"),
])
def test_settings_are_checked_before_any_request(tmp_path: Path, source: str, expected: str) -> None:
    assert expected in config_problems(tmp_path, source)


# ------------------------------------------------------------------ cached pages and typed decoding (issue 13)


def test_a_user_changed_between_reads_is_served_changed_not_from_the_page_cache() -> None:
    sim = org_app()
    assert read(sim, config())["active@example.com"][0] == "active"
    world = sim.state.ctx.extra["okta"]
    user = next(u for u in world.users.values() if u.login == "active@example.com")
    user.status = "SUSPENDED"  # a mutation in place: the encoded fragment must not outlive it
    assert read(sim, config())["active@example.com"][0] == "disabled"


class OddPages(httpx.AsyncBaseTransport):
    """The simulator, except that `path` answers `body` (a page of another shape than Okta's)."""

    def __init__(self, sim: Starlette, path: str, body: Any) -> None:
        self.inner, self.path, self.body = httpx.ASGITransport(app=sim), path, body

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == self.path:
            return httpx.Response(200, json=self.body)
        return await self.inner.handle_async_request(request)


@pytest.mark.parametrize(("path", "body", "expected"), [
    ("/okta/api/v1/users", {"users": []}, "expected a list of Okta objects"),
    ("/okta/api/v1/users", [1, 2], "expected a list of Okta objects"),
    ("/okta/api/v1/users", [{"id": "00u1", "status": "ACTIVE", "profile": "x"}],
     "an Okta user without id, status or profile.login: '00u1'"),
    ("/okta/api/v1/groups", [{"id": "00g1", "profile": {"description": "no name"}}],
     "an Okta group without id or profile.name: '00g1'"),
])
def test_a_page_of_another_shape_fails_closed_with_one_line(path: str, body: Any, expected: str) -> None:
    source = OktaSource(config(), transport=OddPages(org_app(), path, body), backoff=Backoff(base=0.5))
    with pytest.raises(SourceError) as caught:
        asyncio.run(source.read())
    assert expected in caught.value.message and "\n" not in caught.value.message


# ------------------------------------------------------------------ read costs (issue 13's performance target)


class Thresholds(httpx.AsyncBaseTransport):
    """The simulator, noting the collector's thresholds while each request is under way."""

    def __init__(self, sim: Starlette) -> None:
        self.inner, self.seen = httpx.ASGITransport(app=sim), set[tuple[int, int, int]]()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import gc

        self.seen.add(gc.get_threshold())
        return await self.inner.handle_async_request(request)


def test_the_read_pauses_full_collections_and_builds_what_desired_state_build_would() -> None:
    import gc

    from reconcile.collector import PAUSED
    from reconcile.model import DesiredState

    before = gc.get_threshold()
    transport = Thresholds(org_app())
    state = asyncio.run(OktaSource(config(), transport=transport, backoff=Backoff(base=0.5)).read())
    assert {t[2] for t in transport.seen} == {PAUSED} and gc.get_threshold() == before
    # built in one pass, without DesiredState.build: the same state it would make (keys, groups normalised)
    assert state.users and state == DesiredState.build(state.users.values(), state.groups, state.notes)
