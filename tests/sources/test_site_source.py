"""An Atlassian site as a read-only source: DC -> Cloud, Cloud -> DC and DC -> DC plans through the CLI
against the simulator (reconcile/sim/scenarios/migration.yaml), the source site's request log showing no
write, fail-closed reads, one-line errors naming the source, and no secret in any output.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from reconcile.config import load
from reconcile.errors import ConfigError, SourceError
from reconcile.http import Backoff
from reconcile.model import Globs, Status
from reconcile.plan import Plan
from reconcile.settings import (
    CloudSourceSettings,
    DcSourceSettings,
    HttpSettings,
    Secret,
    SiteDisabled,
    SiteGroupsSettings,
    SiteKey,
    SiteUsersSettings,
)
from reconcile.sim.app import build_app
from reconcile.sim.context import CLOUD, DC, SimContext
from reconcile.sim.scenario import parse_scenario
from reconcile.sim.server import running
from reconcile.sources.registry import SOURCES
from reconcile.sources.site.cloud import CloudSource
from reconcile.sources.site.common import read_only_client
from reconcile.sources.site.dc import DcSource
from tests.support.cli import reconcile
from tests.support.fake_clock import FakeClock

ROOT = Path(__file__).resolve().parents[2]
MIGRATION = (ROOT / "reconcile" / "sim" / "scenarios" / "migration.yaml").read_text(encoding="utf-8")
EXAMPLE = ROOT / "desired" / "examples" / "dc-to-cloud"
ORG = "9c1e3f2a-4e6f-7b4d-9a8b-5a6b1c2d3e4f"
DC_TOKEN = "migration-dc-token"
CLOUD_KEY = "migration-cloud-key"
ENV = {"NO_COLOR": "1", "DC_TOKEN": DC_TOKEN, "ATLASSIAN_ORG_ID": ORG, "ATLASSIAN_ADMIN_KEY": CLOUD_KEY}
# The account ids of the migration world's Cloud organization.
CAROL, ALICE, BOB = ("712020:c0000000-0000-4000-8000-0000000000a4", "712020:a1000000-0000-4000-8000-0000000000a2",
                     "712020:b0000000-0000-4000-8000-0000000000a3")
DAVE, FRANK = "712020:d0000000-0000-4000-8000-0000000000a5", "712020:f0000000-0000-4000-8000-0000000000a6"


def migration_app(text: str = MIGRATION) -> Starlette:
    return build_app(parse_scenario(text))


def ctx_of(sim: Starlette) -> SimContext:
    ctx: SimContext = sim.state.ctx
    return ctx


def writes(sim: Starlette, api: str) -> list[str]:
    """Every request to `api` that is not a read (the Organizations API's POST …/search are reads)."""
    return [f"{e.method} {e.path}" for e in ctx_of(sim).log.entries
            if e.api == api and e.kind == "request" and not (e.method == "POST" and e.path.endswith("/search"))]


@dataclass
class Run:
    desired: Path
    state: Path

    def __call__(self, *args: str, **env: str) -> tuple[int, str]:
        result = reconcile("--desired", str(self.desired), "--state-dir", str(self.state), *args,
                                    env={**ENV, **env})
        return result.exit_code, result.output


def copy_example(tmp: Path, url: str) -> Run:
    desired = tmp / "desired"
    desired.mkdir()
    for path in EXAMPLE.glob("*.yaml"):
        (desired / path.name).write_text(path.read_text(encoding="utf-8").replace("http://127.0.0.1:8990", url),
                                         encoding="utf-8")
    return Run(desired, tmp / "state")


def write_desired(tmp: Path, text: str) -> Run:
    desired = tmp / "desired"
    desired.mkdir(parents=True)
    (desired / "desired.yaml").write_text(text, encoding="utf-8")
    return Run(desired, tmp / "state")


def rows(plan: Plan) -> list[tuple[str, str, str, str]]:
    return [(a.kind.value, a.subject.identity, a.group or "", a.reason) for a in plan.actions]


@pytest.fixture(name="migration")
def migration_fixture() -> Iterator[tuple[Starlette, str]]:
    sim = migration_app()
    with running(sim) as url:
        yield sim, url


# ---------------------------------------------------------------------------------------- DC -> Cloud


def test_the_dc_to_cloud_example_plans_exactly_and_applies_without_writing_to_the_source(
        migration: tuple[Starlette, str], tmp_path: Path) -> None:
    sim, url = migration
    run = copy_example(tmp_path, url)
    plan_file = tmp_path / "plan.json"
    code, output = run("plan", "--out", str(plan_file), "--detailed-exitcode")
    assert code == 3, output
    plan = Plan.loads(plan_file.read_text(encoding="utf-8"))
    assert rows(plan) == [
        ("enable", "carol@acme.example", "", "desired status is active (confluence-dc status=active)"),
        ("add_member", "bob@acme.example", "team-docs", "desired member of team-docs"),
        ("add_member", "bob@acme.example", "team-platform", "desired member of team-platform"),
        ("remove_member", "alice@acme.example", "team-platform", "not a desired member of team-platform"),
        # deactivated on DC: 9.3+ shows emails of active users only, so dave is not desired; absent here
        ("disable", "dave@acme.example", "", "not in the desired state (policy.absent: disable)"),
        ("disable", "frank@acme.example", "", "not in the desired state (policy.absent: disable)"),
    ]
    assert [a.subject.ref for a in plan.actions] == [CAROL, BOB, BOB, ALICE, DAVE, FRANK]
    # who exists on DC but not in Cloud
    assert sorted((w.kind.value, w.subject) for w in plan.warnings) == [
        ("missing_user", "admin@acme.example"), ("missing_user", "erin@acme.example"),
        ("protected", "olga@acme.example")]
    assert "source dc: 1 users without an email (confluence-dc status=deactivated) skipped" in output

    code, output = run("apply", str(plan_file), "--approve", plan.digest)
    assert code == 0, output
    code, output = run("plan", "--detailed-exitcode")
    assert code == 0, output  # converged
    assert writes(sim, CLOUD), "the target was written"
    assert writes(sim, DC) == []  # the source site: reads only
    assert [e for e in ctx_of(sim).log.entries if e.api == DC] == []  # not even a fault or a refusal


# ---------------------------------------------------------------------------------------- Cloud -> DC

CLOUD_TO_DC = """\
version: 1
target:
  type: confluence-dc
  url: {url}
  auth: {{token: "${{DC_TOKEN}}"}}
scope:
  users: ["*@acme.example"]
  groups: ["team-*"]
policy:
  absent: ignore
sources:
  cloud:
    type: atlassian-cloud
    org_id: ${{ATLASSIAN_ORG_ID}}
    url: {url}
    auth: {{api_key: "${{ATLASSIAN_ADMIN_KEY}}"}}
    key: email
    groups:
      include: ["team-*"]
"""


def test_cloud_to_dc_plans_the_cloud_facts_onto_the_dc_site(migration: tuple[Starlette, str],
                                                             tmp_path: Path) -> None:
    sim, url = migration
    run = write_desired(tmp_path, CLOUD_TO_DC.format(url=url))
    plan_file = tmp_path / "plan.json"
    code, output = run("plan", "--out", str(plan_file))
    assert code == 0, output
    plan = Plan.loads(plan_file.read_text(encoding="utf-8"))
    assert [(kind, who, group, reason) for kind, who, group, reason in rows(plan)] == [
        ("add_member", "alice@acme.example", "team-platform", "desired member of team-platform"),
        ("remove_member", "bob@acme.example", "team-docs", "not a desired member of team-docs"),
        ("remove_member", "bob@acme.example", "team-platform", "not a desired member of team-platform"),
        ("disable", "carol@acme.example", "", "desired status is disabled (atlassian-cloud "
                                              "membershipStatus=suspended)"),
    ]
    # who exists in Cloud but not on DC (dave is there, deactivated: DC shows no email to find him by)
    assert sorted((w.kind.value, w.subject) for w in plan.warnings) == [
        ("missing_user", "dave@acme.example"), ("missing_user", "frank@acme.example"),
        ("missing_user", "gina@acme.example"), ("missing_user", "olga@acme.example")]
    assert writes(sim, CLOUD) == [] and writes(sim, DC) == []  # a plan writes nothing anywhere


# ---------------------------------------------------------------------------------------- DC -> DC

DC_TO_DC = """\
version: 1
target:
  type: confluence-dc
  url: {target}
  auth: {{token: "${{TARGET_TOKEN}}"}}
scope:
  users: ["*"]
  groups: ["team-*"]
  protect: [admin]
policy:
  absent: ignore
sources:
  old-site:
    type: confluence-dc
    url: {source}
    auth:
      token_file: dc-token
    key: username
    users:
      include: [alice, bob, carol, dave, erin]
    groups:
      map:
        "team-*": "team-*"
"""


def test_dc_to_dc_between_two_sites_writes_only_the_target(migration: tuple[Starlette, str],
                                                           tmp_path: Path) -> None:
    source, source_url = migration
    target = build_app()  # the example world: another site
    with running(target) as target_url:
        run = write_desired(tmp_path, DC_TO_DC.format(source=source_url, target=target_url))
        (run.desired / "dc-token").write_text(DC_TOKEN + "\n", encoding="utf-8")
        plan_file = tmp_path / "plan.json"
        code, output = run("plan", "--out", str(plan_file), TARGET_TOKEN="example-admin-token")
        assert code == 0, output
        plan = Plan.loads(plan_file.read_text(encoding="utf-8"))
        assert rows(plan) == [
            ("add_member", "bob", "team-platform", "desired member of team-platform"),
            ("add_member", "carol", "team-platform", "desired member of team-platform"),
            ("remove_member", "carol", "team-docs", "not a desired member of team-docs"),
            ("remove_member", "dave", "team-platform", "not a desired member of team-platform"),
            ("disable", "dave", "", "desired status is disabled (confluence-dc status=deactivated)"),
        ]
        code, output = run("apply", str(plan_file), "--approve", plan.digest, TARGET_TOKEN="example-admin-token")
        assert code == 0, output
        assert len(writes(target, DC)) == 5
    assert ctx_of(source).log.entries == []  # the source site saw no write, fault or refusal
    assert ctx_of(source).log.counts[DC] > 0  # ... and was read (twice: plan, then apply's re-plan)


def test_a_source_has_no_write_path_and_its_client_refuses_writes_before_sending() -> None:
    for kind in ("confluence-dc", "atlassian-cloud"):
        product = SOURCES.get(kind).factory
        assert product.__name__ == f"_{kind.replace('-', '_')}"
    for cls in (DcSource, CloudSource):
        assert [n for n in dir(cls) if not n.startswith("_")] == ["read"]
    sim = migration_app()

    async def go() -> None:
        client = read_only_client("http://sim.test", auth=None, settings=HttpSettings(), flavor="dc",
                                  transport=httpx.ASGITransport(app=sim))
        try:
            for method, path in (("PUT", "/rest/api/user/alice/disable"), ("DELETE", "/rest/api/admin/user/bob"),
                                 ("POST", "/rest/api/admin/group"), ("PATCH", "/x/search")):
                with pytest.raises(SourceError, match="refused; a source only reads"):
                    await client.request(method, path)
            assert client.requests == 0
        finally:
            await client.aclose()

    asyncio.run(go())
    assert ctx_of(sim).log.counts == {} and ctx_of(sim).log.entries == []


# ---------------------------------------------------------------------------------------- reading


def dc_config(**changes: Any) -> DcSourceSettings:
    base = DcSourceSettings(name="dc", url="http://sim.test", token=Secret(DC_TOKEN, "${DC_TOKEN}"),
                          groups=SiteGroupsSettings())
    return replace(base, **changes)


def read_dc(sim: Starlette, config: DcSourceSettings, clock: FakeClock | None = None) -> dict[str, Any]:
    source = DcSource(config, transport=httpx.ASGITransport(app=sim), backoff=Backoff(base=0.5),
                      clock=clock.clock() if clock else None)
    state = asyncio.run(source.read())
    return {k: (u.status.value, sorted(u.groups), u.fact, list(u.identity.items()))
            for k, u in sorted(state.users.items())}


def test_dc_statuses_keys_groups_and_unsynced_entries() -> None:
    sim = migration_app()
    users = read_dc(sim, dc_config())
    active = "confluence-dc status=active"
    assert users == {  # dave (deactivated) has no email on 9.3+: not keyable by email; jsmith is no user
        "admin@acme.example": ("active", ["confluence-administrators", "confluence-users"], active,
                               [("email", "admin@acme.example")]),
        "alice@acme.example": ("active", ["confluence-users", "team-docs"], active, [("email", "alice@acme.example")]),
        "bob@acme.example": ("active", ["confluence-users", "team-docs", "team-platform"], active,
                             [("email", "bob@acme.example")]),
        "carol@acme.example": ("active", ["confluence-users", "team-platform"], active,
                               [("email", "carol@acme.example")]),
        "erin@acme.example": ("active", ["confluence-users", "team-platform"], active,
                              [("email", "erin@acme.example")]),
    }
    by_username = read_dc(sim, dc_config(key=SiteKey.USERNAME, users=SiteUsersSettings(disabled=SiteDisabled.SKIP),
                                         groups=SiteGroupsSettings(map=(("team-*", "cloud-*"),))))
    assert {k: v[:2] for k, v in by_username.items()} == {
        "admin": ("active", []), "alice": ("active", ["cloud-docs"]),
        "bob": ("active", ["cloud-docs", "cloud-platform"]),
        "carol": ("active", ["cloud-platform"]), "erin": ("active", ["cloud-platform"])}  # dave skipped
    with_dave = read_dc(sim, dc_config(key=SiteKey.USERNAME, groups=None))
    assert with_dave["dave"] == ("disabled", [], "confluence-dc status=deactivated", [("username", "dave")])
    assert "jsmith" not in with_dave  # the unsynced entry is not a user
    assert ctx_of(sim).log.entries == []


def test_a_dc_before_9_3_with_key_email_is_a_clear_source_error() -> None:
    sim = migration_app(MIGRATION.replace('version: "9.4"', 'version: "8.4"'))
    with pytest.raises(SourceError) as caught:
        read_dc(sim, dc_config())
    assert caught.value.message.startswith("source 'dc' (confluence-dc): http://sim.test/rest/api/admin/users/"
                                           "list/active -> 404: this Confluence version (before 9.3) reveals no "
                                           "emails")
    assert "`key: username`" in (caught.value.hint or "")
    assert sorted(read_dc(sim, dc_config(key=SiteKey.USERNAME))) == ["admin", "alice", "bob", "carol", "dave", "erin"]


def test_a_page_failing_after_retries_stops_the_read() -> None:
    sim = migration_app()
    ctx_of(sim).apply_settings(ctx_of(sim).settings.updated(
        {"error_rate": 1.0, "error_statuses": [503], "paths": ["/rest/api/group/team-platform/member"]}))
    clock = FakeClock()
    with pytest.raises(SourceError) as caught:
        read_dc(sim, dc_config(http=HttpSettings(max_retries=2)), clock)
    assert caught.value.message.startswith("source 'dc' (confluence-dc): GET http://sim.test/rest/api/group/"
                                           "team-platform/member?start=0&limit=1000 -> 503")
    assert len([e for e in ctx_of(sim).log.entries if e.kind == "fault"]) == 3  # the first try and 2 retries
    assert len(clock.sleeps) == 2


def cloud_source(sim: Starlette, **changes: Any) -> CloudSource:
    config = CloudSourceSettings(name="cloud", org_id=ORG, api_key=Secret(CLOUD_KEY, "${KEY}"), url="http://sim.test",
                               groups=SiteGroupsSettings(include=Globs(("team-*",))))
    return CloudSource(replace(config, **changes), transport=httpx.ASGITransport(app=sim))


def test_cloud_statuses_and_keys() -> None:
    sim = migration_app()
    state = asyncio.run(cloud_source(sim, key=SiteKey.ACCOUNT_ID).read())
    facts = {u.display_name: (u.status, u.fact, sorted(u.groups)) for u in state.users.values()}
    assert facts == {
        "Olga Owner": (Status.ACTIVE, "atlassian-cloud status=active", []),
        "Alice Archer": (Status.ACTIVE, "atlassian-cloud status=active", ["team-docs", "team-platform"]),
        "Bob Baker": (Status.ACTIVE, "atlassian-cloud status=active", []),
        "Carol Chen": (Status.DISABLED, "atlassian-cloud membershipStatus=suspended", ["team-platform"]),
        "Dave Dawson": (Status.ACTIVE, "atlassian-cloud status=active", []),
        "Frank Fox": (Status.ACTIVE, "atlassian-cloud status=active", []),
        "Gina Gray": (Status.DISABLED, "atlassian-cloud accountStatus=inactive", []),
    }
    assert CAROL in state.users and state.users[CAROL].identity.account_id == CAROL
    assert writes(sim, CLOUD) == []


# ---------------------------------------------------------------------------------------- failures, via the CLI


def test_bad_credentials_on_the_source_name_the_source_and_plan_nothing(migration: tuple[Starlette, str],
                                                                       tmp_path: Path) -> None:
    sim, url = migration
    run = copy_example(tmp_path, url)
    plan_file = tmp_path / "plan.json"
    code, output = run("plan", "--out", str(plan_file), DC_TOKEN="not-the-token")
    assert code == 1, output
    assert output.splitlines()[0] == (
        f"Error: source 'dc' (confluence-dc): GET {url}/rest/api/user/current -> 200 as anonymous: the personal "
        "access token is unknown, expired or revoked: Confluence DC runs requests with a bad token as the "
        "anonymous user instead of refusing them")
    assert "sources.dc.auth.token" in output and "Traceback" not in output
    assert not plan_file.exists()

    run = write_desired(tmp_path / "cloud", CLOUD_TO_DC.format(url=url))
    code, output = run("plan", "--out", str(plan_file), ATLASSIAN_ADMIN_KEY="not-the-key")
    assert code == 1, output
    assert output.startswith(f"Error: source 'cloud' (atlassian-cloud): GET {url}/admin/v2/orgs/{ORG}/directories"
                             "?limit=100 -> 401"), output
    assert not plan_file.exists() and writes(sim, CLOUD) == [] and writes(sim, DC) == []


def test_a_truncated_read_is_an_error_not_mass_removals(migration: tuple[Starlette, str], tmp_path: Path) -> None:
    sim, url = migration
    run = copy_example(tmp_path, url)
    with (run.desired / "source.yaml").open("a", encoding="utf-8") as handle:
        handle.write("    http: {max_retries: 0}\n")  # the in-process test above covers the retries
    faults = {"error_rate": 1.0, "error_statuses": [502], "paths": ["/rest/api/group/team-docs/member"]}
    assert httpx.put(f"{url}/_sim/faults", content=json.dumps(faults)).status_code == 200
    plan_file = tmp_path / "plan.json"
    code, output = run("plan", "--out", str(plan_file))
    assert code == 1, output
    assert output.startswith(f"Error: source 'dc' (confluence-dc): GET {url}/rest/api/group/team-docs/member"
                             "?start=0&limit=1000 -> 502"), output
    assert not plan_file.exists() and "remove" not in output
    code, output = run("apply", "--auto-approve")
    assert code == 1, output
    assert writes(sim, CLOUD) == []  # nothing was removed from anyone


SECRET = "s3cr3t-source-token-value"


def test_no_secret_of_the_source_in_any_output_or_file(tmp_path: Path) -> None:
    sim = migration_app()
    dc = ctx_of(sim).dc
    dc.tokens[SECRET] = dc.by_username["admin"]
    with running(sim) as url:
        run = copy_example(tmp_path, url)
        plan_file = tmp_path / "plan.json"
        outputs = []
        for args, token in ((("plan", "--out", str(plan_file)), SECRET), (("show", str(plan_file)), SECRET),
                            (("plan",), SECRET + "-wrong")):
            outputs.append(run(*args, DC_TOKEN=token)[1])
        result = reconcile("--verbose", "--desired", str(run.desired), "--state-dir", str(run.state),
                                          "plan", env={**ENV, "DC_TOKEN": SECRET})
        outputs.append(result.output)
    assert "GET " in outputs[-1]  # --verbose logged every request
    assert "source 'dc'" in outputs[2]
    written = [plan_file, *run.state.rglob("*")]
    for text in [*outputs, *(p.read_text(encoding="utf-8") for p in written if p.is_file())]:
        assert SECRET not in text
        assert DC_TOKEN not in text


# ---------------------------------------------------------------------------------------- configuration


def config_problems(tmp_path: Path, source: str) -> str:
    desired = tmp_path / "desired"
    desired.mkdir(exist_ok=True)
    (desired / "d.yaml").write_text(
        "version: 1\ntarget: {type: memory, state: w.json}\nscope: {users: ['*']}\nsources:\n  s:\n" + source,
        encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load(desired, env={"T": "x"})
    return str(caught.value)


def test_settings_are_checked_like_the_targets(tmp_path: Path) -> None:
    remote = config_problems(tmp_path, "    type: confluence-dc\n    url: http://dc.example.com\n"
                                       "    auth: {token: '${T}'}\n")
    assert "`insecure: true` on the source" in remote
    literal = config_problems(tmp_path, "    type: confluence-dc\n    url: https://dc.example.com\n"
                                        "    auth: {token: abc}\n")
    assert "${" in literal  # a secret is a ${VAR} reference or a *_file, never the value
    key = config_problems(tmp_path, "    type: confluence-dc\n    url: https://dc.example.com\n"
                                    "    auth: {token: '${T}'}\n    key: account_id\n")
    assert "account_id" in key and "email" in key
    cloud = config_problems(tmp_path, "    type: atlassian-cloud\n    org_id: o\n    auth: {api_key: '${T}'}\n"
                                      "    key: username\n    users: {disabled: maybe}\n")
    assert "username" in cloud and "maybe" in cloud
