"""The SCIM 2.0 source against a real scim2-server (tests/support/scim_server.py): desired/examples/scim/ plans
through the CLI to an exact plan against the simulator's example world; pages clamped to 10 are followed; nested groups
and cycles; inactive users disabled with the raw fact; bad token, rejected filter, unknown group, an HTML
answer and a server that stops paging each one line naming the source, nothing planned; no secret anywhere.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from typer.testing import CliRunner

from reconcile.cli import app
from reconcile.config.idp_scim import ScimGroupsSettings, ScimKey, ScimSourceSettings, ScimUsersSettings
from reconcile.errors import SourceError
from reconcile.http import Backoff
from reconcile.model import DesiredState, Globs, Status
from reconcile.plan import Plan
from reconcile.settings import HttpSettings, Secret
from reconcile.sim.server import running
from reconcile.sources.scim import ScimSource
from tests.support.fake_clock import FakeClock
from tests.support.scim_server import MAX_RESULTS, SEED_USERS, ScimServer, start_scim_server

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "desired" / "examples" / "scim"
TOKEN = "scim-example-secret-token-4711"  # this module's server only: must never be printed or written


def world_module() -> ModuleType:
    """desired/examples/scim/world.py: the example's seeding code, the same the docs run."""
    spec = importlib.util.spec_from_file_location("scim_example_world", EXAMPLE / "world.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session", name="idp")  # not module: xdist interleaves modules, which restarts it
def idp_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScimServer]:
    """scim2-server (pages of at most 10) seeded with the example's directory.json."""
    server = start_scim_server(tmp_path_factory.mktemp("scim-example"), token=TOKEN)
    try:
        server.user_ids = world_module().seed(server.base, TOKEN)
        yield server
    finally:
        server.stop()


@dataclass
class Run:
    desired: Path
    state: Path
    env: dict[str, str]

    def __call__(self, *args: str, **env: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, ["--desired", str(self.desired), "--state-dir", str(self.state), *args],
                                    env={**self.env, **env})
        return result.exit_code, result.output


def example(tmp: Path, sim_url: str, idp: ScimServer, *, edit: dict[str, str] | None = None) -> Run:
    desired = tmp / "desired"
    desired.mkdir()
    for path in EXAMPLE.glob("*.yaml"):
        text = path.read_text(encoding="utf-8").replace("http://127.0.0.1:8990", sim_url)
        for old, new in (edit or {}).items():
            text = text.replace(old, new)
        (desired / path.name).write_text(text, encoding="utf-8")
    env = {"NO_COLOR": "1", "CONFLUENCE_TOKEN": "example-admin-token", "SCIM_URL": idp.base, "SCIM_TOKEN": TOKEN}
    return Run(desired, tmp / "state", env)


@pytest.fixture(name="sim_url")
def sim_url_fixture() -> Iterator[str]:
    with running() as url:  # the example world
        yield url


def rows(plan: Plan) -> list[tuple[str, str, str, str]]:
    return [(a.kind.value, a.subject.identity, a.group or "", a.reason) for a in plan.actions]


# ---------------------------------------------------------------------------------------- the example, end to end


def test_the_scim_example_plans_exactly_through_the_cli(idp: ScimServer, sim_url: str, tmp_path: Path) -> None:
    run = example(tmp_path, sim_url, idp)
    plan_file = tmp_path / "plan.json"
    code, output = run("plan", "--out", str(plan_file), "--detailed-exitcode")
    assert code == 3, output
    plan = Plan.loads(plan_file.read_text(encoding="utf-8"))
    assert rows(plan) == [  # in execution order
        ("enable", "zoe@example.com", "", "desired status is active (scim active=true)"),
        # carol: in platform-oncall, nested in dept-platform (which platform-oncall contains in turn)
        ("add_member", "carol@example.com", "team-platform", "desired member of team-platform"),
        ("add_member", "grace@example.com", "team-docs", "desired member of team-docs"),
        ("add_member", "olivia@example.com", "team-support", "desired member of team-support"),
        ("remove_member", "mallory@example.com", "team-platform", "not a desired member of team-platform"),
        ("remove_member", "niaj@example.com", "team-support", "not a desired member of team-support"),
        ("remove_member", "zoe@example.com", "team-support", "not a desired member of team-support"),
        ("disable", "erin@example.com", "", "desired status is disabled (scim active=false)"),
        ("disable", "rupert", "", "not in the desired state (policy.absent: disable)"),
        ("disable", "sybil", "", "not in the desired state (policy.absent: disable)"),
    ]
    assert sorted((w.kind.value, w.subject) for w in plan.warnings) == [
        ("missing_user", "quentin@example.com"), ("protected", "admin"), ("protected", "svc-backup")]
    for text in (output, plan_file.read_text(encoding="utf-8"),
                 *(p.read_text(encoding="utf-8") for p in run.state.rglob("*") if p.is_file())):
        assert TOKEN not in text


def test_no_secret_in_output_plan_journal_or_verbose_log(idp: ScimServer, sim_url: str, tmp_path: Path) -> None:
    run = example(tmp_path, sim_url, idp, edit={"token: ${SCIM_TOKEN}": "token_file: scim-token"})
    (run.desired / "scim-token").write_text(TOKEN + "\n", encoding="utf-8")
    plan_file = tmp_path / "plan.json"
    outputs = [run("--verbose", "plan", "--out", str(plan_file))[1], run("show", str(plan_file))[1]]
    plan = Plan.loads(plan_file.read_text(encoding="utf-8"))
    outputs.append(run("apply", str(plan_file), "--approve", plan.digest)[1])
    assert "GET " in outputs[0] and "/Users" in outputs[0]  # --verbose logged the SCIM requests
    written = [plan_file, *run.state.rglob("*")]
    assert any(p.name.endswith(".jsonl") for p in written), written  # a journal was written and is searched
    for text in [*outputs, *(p.read_text(encoding="utf-8") for p in written if p.is_file())]:
        assert TOKEN not in text


# ---------------------------------------------------------------------------------------- reading, against the server


def config(server: ScimServer, **changes: Any) -> ScimSourceSettings:
    base = ScimSourceSettings(name="idp", url=server.base, token=Secret(server.token, "${SCIM_TOKEN}"),
                            groups=ScimGroupsSettings(), http=HttpSettings(max_retries=1))
    return replace(base, **changes)


def read(source_config: ScimSourceSettings, **kwargs: Any) -> tuple[DesiredState, int]:
    source = ScimSource(source_config, **kwargs)
    state = asyncio.run(source.read())
    return state, source.requests


def test_pages_clamped_by_the_server_are_all_read(scim_server: ScimServer) -> None:
    # 25 users; the server lowers count=500 to 10 without saying so: 3 pages, followed by itemsPerPage
    state, requests = read(config(scim_server, groups=None))
    assert sorted(str(u.identity.email) for u in state.users.values()) == sorted(u[3][0] for u in SEED_USERS)
    assert requests == 3 == -(-len(SEED_USERS) // MAX_RESULTS)
    small, requests = read(config(scim_server, groups=None, page_size=4))
    assert set(small.users) == set(state.users) and requests == -(-len(SEED_USERS) // 4)
    bob = state.users["bob@example.com"]  # the primary of two emails; the externalId is kept
    assert bob.identity.external_id == "ext-bob" and bob.display_name == "Bob"


def test_nested_groups_and_a_cycle_are_expanded(scim_server: ScimServer) -> None:
    state, _ = read(config(scim_server, key=ScimKey.USERNAME))
    groups = {u.key: sorted(u.groups - {"everyone"}) for u in state.users.values() if u.groups - {"everyone"}}
    assert groups == {
        "alice": ["cycle-a", "cycle-b", "engineering"],  # cycle-b contains cycle-a, which has alice
        "bob": ["backend", "engineering"], "carol": ["backend", "engineering"],
        "dave": ["backend", "engineering", "platform"],  # two levels deep
        "erin": ["cycle-a", "cycle-b"],
    }
    assert "empty" in state.groups  # a mapped group without members is a statement, not an omission
    flat, _ = read(config(scim_server, key=ScimKey.USERNAME, groups=ScimGroupsSettings(nested=False)))
    assert sorted(flat.users["alice"].groups) == ["cycle-a", "engineering", "everyone"]


def test_include_map_and_filters_go_to_the_server(scim_server: ScimServer) -> None:
    groups = ScimGroupsSettings(include=Globs(("engineering", "cycle-*")), filter='displayName ne "everyone"',
                              map=(("cycle-*", "team-cycle"), ("engineering", "team-eng")))
    state, _ = read(config(scim_server, key=ScimKey.EXTERNAL_ID, groups=groups,
                           users=ScimUsersSettings(filter='userName sw "user0"')))
    assert sorted(state.users) == [f"ext-user{i:02d}" for i in range(1, 10)]  # the filter went to the server
    assert state.groups == {"team-cycle", "team-eng"} and all(not u.groups for u in state.users.values())
    assert state.users["ext-user05"].status is Status.DISABLED
    assert state.users["ext-user05"].fact == "scim active=false"


# ------------------------------------------------------------------------------ failures: one line, nothing planned


def test_a_bad_token_names_the_source_request_and_fix(idp: ScimServer, sim_url: str, tmp_path: Path) -> None:
    run = example(tmp_path, sim_url, idp)
    plan_file = tmp_path / "plan.json"
    code, output = run("plan", "--out", str(plan_file), SCIM_TOKEN="not-the-token")
    assert code == 1, output
    # users and groups are read at once: whichever is refused first is reported
    assert re.search(rf"source 'idp' \(scim\): GET {re.escape(idp.base)}/(Users|Groups)\?attributes=\S+ -> 401", output)
    assert "sources.idp (${SCIM_TOKEN}): set it to a valid token" in output
    assert not plan_file.exists() and "Traceback" not in output and "not-the-token" not in output


def test_a_filter_the_server_rejects_shows_its_detail(idp: ScimServer, sim_url: str, tmp_path: Path) -> None:
    run = example(tmp_path, sim_url, idp, edit={'emails.value ew "@example.com"': 'nosuch eq "x"'})
    code, output = run("plan")
    assert code == 1, output
    assert " -> 400: Field not found: nosuch" in output and "fix sources.idp.users.filter" in output
    assert "Traceback" not in output


def test_an_unknown_group_name_is_an_error(idp: ScimServer, sim_url: str, tmp_path: Path) -> None:
    run = example(tmp_path, sim_url, idp, edit={'include: ["dept-*"]': 'include: ["dept-docs", "dept-nope"]'})
    code, output = run("plan")
    assert code == 1, output
    assert "source 'idp' (scim): group 'dept-nope' (sources.idp.groups.include) is not among the groups of " \
        f"GET {idp.base}/Groups" in output
    assert "the server has: dept-docs, dept-platform" in output


def _html(request: Request) -> Response:
    return HTMLResponse("<html><body>Please sign in</body></html>")


def test_an_html_answer_from_a_proxy_is_an_error(idp: ScimServer, tmp_path: Path) -> None:
    proxy = Starlette(routes=[Route("/{path:path}", _html)])
    with running(proxy) as url, running() as sim_url:
        run = example(tmp_path, sim_url, idp)
        code, output = run("plan", SCIM_URL=f"{url}/scim/v2")
    assert code == 1, output
    # users and groups are listed at once: whichever answer comes back first is the one reported
    assert re.search(rf"source 'idp' \(scim\): GET {re.escape(url)}/scim/v2/(Users|Groups)\?", output), output
    assert "-> 200: the server answered text/html, not SCIM JSON (a proxy or a login page?)" in output
    assert "check sources.idp.url" in output


class Lister:
    """A SCIM server that misbehaves when paged: `stall` returns nothing past the first page though the
    total says more; `ignore` answers the first page whatever startIndex; `grow` changes totalResults."""

    def __init__(self, mode: str, total: int = 25) -> None:
        self.mode, self.total, self.calls = mode, total, 0

    def users(self, request: Request) -> Response:
        self.calls += 1
        start = int(request.query_params["startIndex"])
        if self.mode == "ignore":
            start = 1
        first = start if self.mode != "stall" or start == 1 else self.total + 1
        ids = range(first, min(first + 10, self.total + 1))
        total = self.total + (self.calls if self.mode == "grow" else 0)
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": total,
                "startIndex": start, "itemsPerPage": len(ids),
                "Resources": [{"id": f"u{i}", "userName": f"u{i}", "emails": [{"value": f"u{i}@example.com"}]}
                              for i in ids]}
        return JSONResponse(body, media_type="application/scim+json")


@pytest.mark.parametrize(("mode", "said"), [
    ("stall", "GET http://scim.test/v2/Users (startIndex=11): no resources at 11 of 25; the server stopped advancing"),
    # pages 11 and 21 are read concurrently and both are refused: the error names whichever answered first
    ("ignore", r"GET http://scim\.test/v2/Users \(startIndex=(11|21)\): the server answered startIndex=1;"),
    ("grow", "totalResults changed from 26 to"),
])
def test_a_server_that_pages_wrongly_fails_the_read(mode: str, said: str) -> None:
    lister = Lister(mode)
    server = Starlette(routes=[Route("/v2/Users", lister.users)])
    source_config = ScimSourceSettings(name="idp", url="http://scim.test/v2", token=Secret("t", "${T}"))
    with pytest.raises(SourceError) as caught:
        read(source_config, transport=httpx.ASGITransport(app=server))
    assert caught.value.message.startswith("source 'idp' (scim): ")
    assert re.search(said, caught.value.message) if mode == "ignore" else said in caught.value.message


def test_a_page_failing_after_retries_stops_the_read() -> None:
    def failing(request: Request) -> Response:
        if request.query_params["startIndex"] == "1":
            return Lister("ok").users(request)
        return JSONResponse({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "503",
                             "detail": "busy"}, status_code=503)

    server = Starlette(routes=[Route("/v2/Users", failing)])
    source_config = ScimSourceSettings(name="idp", url="http://scim.test/v2", token=Secret("t", "${T}"),
                                     http=HttpSettings(max_retries=2))
    clock = FakeClock()
    with pytest.raises(SourceError) as caught:
        read(source_config, transport=httpx.ASGITransport(app=server), clock=clock, backoff=Backoff())
    assert caught.value.message.startswith("source 'idp' (scim): GET http://scim.test/v2/Users?")
    assert "-> 503: busy" in caught.value.message
    assert len(clock.sleeps) >= 2  # retried before giving up


def test_the_schema_lists_the_scim_source() -> None:
    schema = json.loads((ROOT / "reconcile" / "schema.json").read_text(encoding="utf-8"))
    sources = schema["properties"]["sources"]["anyOf"][1]["additionalProperties"]
    scim = next(r["then"] for r in sources["allOf"] if r["if"]["properties"]["type"]["const"] == "scim")
    assert scim["required"] == ["type", "url"] and scim["properties"]["key"]["enum"] == [
        "email", "username", "external_id"]


def test_settings_are_checked_before_any_request(tmp_path: Path) -> None:
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "d.yaml").write_text(
        "version: 1\ntarget: {type: memory, state: w.json}\nscope: {users: ['*']}\nsources:\n  idp:\n"
        "    type: scim\n    url: http://idp.example.com/scim/v2\n    token: abc\n    key: mail\n"
        "    users: {filtre: x}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["--desired", str(desired), "validate"], env={"NO_COLOR": "1"})
    assert result.exit_code == 1
    for line in ("d.yaml:7:10: sources.idp.url: http:// to a host that is not this machine sends the credentials "
                 "in clear", "d.yaml:8:12: sources.idp.token: literal secret: use ${ENV_VAR} or token_file:",
                 "d.yaml:9:10: sources.idp.key: unknown value 'mail'; did you mean 'email'?",
                 "d.yaml:10:13: unknown key 'filtre' in sources.idp.users; did you mean 'filter'?"):
        assert line in result.output, result.output
    assert "abc" not in result.output


@pytest.mark.slow
def test_the_bench_section_reads_a_seeded_server_the_same_at_any_concurrency() -> None:
    from bench import scim_server_bench
    from bench.report import lines

    row = scim_server_bench.run(users=60, groups=6, max_results=10)
    assert (row["users"], row["groups"], row["memberships"]) == (60, 6, 240) and row["same_result"]
    assert row["requests"] == 6 + 1  # 60 users in pages of 10; 6 groups (members in the list) in one page
    assert any(line.what.startswith("SCIM interoperability: scim2-server read of 60 users (240 memberships, 7 "
                                    "requests, reader CPU") for line in lines({"scim_server": row}))


@pytest.mark.slow
def test_the_simulator_bench_row_reads_the_same_at_both_concurrencies_against_its_floor(tmp_path: Path) -> None:
    from bench import scim_bench
    from bench.report import lines

    row = scim_bench.run(300, 12, 1_200, latency_ms=2.0, max_results=100, nested=3, workdir=tmp_path)
    fast, slow = row["fast"], row["concurrency_1"]
    assert row["same_result"] and fast["users"] == 300 and fast["memberships"] >= 1_200
    assert fast["requests"] == slow["requests"] == 3 + 1  # 300 users in pages of 100; 12 groups with members
    assert fast["latency_floor_s"] == pytest.approx(fast["requests"] / 8 * 2 / 1000, abs=0.01)
    assert fast["simulator_cpu_s"] >= 0 and fast["reader_cpu_s"] > 0 and fast["peak_rss_mb"] > 0
    text = [line.what for line in lines({"scim": row})]
    assert any(t.startswith("SCIM read (reconcile sim, pages of 100): 300 users") for t in text), text


class Omitting:
    """A SCIM server whose group list omits `members` (as many do): each group's members are read alone;
    `inner` is outside the `groups.filter` and reached only as a member of `outer`."""

    LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.members = {"outer": [{"value": "u1", "type": "User"}, {"value": "inner", "type": "Group"}],
                        "inner": [{"value": "u2"}, {"value": "outer", "type": "Group"}]}  # untyped, and a cycle

    def users(self, request: Request) -> Response:
        resources = [{"id": u, "userName": u, "active": True, "emails": [{"value": f"{u}@example.com"}]}
                     for u in ("u1", "u2", "u3")]
        return JSONResponse({"schemas": [self.LIST], "totalResults": 3, "startIndex": 1, "itemsPerPage": 3,
                             "Resources": resources})

    def groups(self, request: Request) -> Response:
        assert request.query_params["filter"] == 'displayName eq "outer"'
        return JSONResponse({"schemas": [self.LIST], "totalResults": 1, "startIndex": 1, "itemsPerPage": 1,
                             "Resources": [{"id": "outer", "displayName": "outer"}]})

    def group(self, request: Request) -> Response:
        gid = request.path_params["gid"]
        self.paths.append(f"{gid}?{request.url.query}")
        return JSONResponse({"id": gid, "members": self.members[gid]})


def test_members_omitted_from_the_list_are_read_per_group_and_nested_outside_the_filter() -> None:
    omitting = Omitting()
    server = Starlette(routes=[Route("/v2/Users", omitting.users), Route("/v2/Groups", omitting.groups),
                               Route("/v2/Groups/{gid}", omitting.group)])
    source_config = ScimSourceSettings(name="idp", url="http://scim.test/v2", token=Secret("t", "${T}"),
                                     groups=ScimGroupsSettings(filter='displayName eq "outer"'))
    state, requests = read(source_config, transport=httpx.ASGITransport(app=server))
    assert sorted(omitting.paths) == ["inner?attributes=members", "outer?attributes=members"]  # each once
    assert requests == 4
    assert {k: sorted(u.groups) for k, u in state.users.items()} == {
        "u1@example.com": ["outer"], "u2@example.com": ["outer"], "u3@example.com": []}
