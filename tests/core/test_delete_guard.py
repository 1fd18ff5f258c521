"""policy.delete_guard (issue 14 item 5): a delete becomes a disable when the user owns spaces or content,
with the evidence in the plan; unknown facts block unless `unknown: allow`; the evidence is re-checked at
apply by re-reading it. Through the CLI, against the simulator's example world and the memory target.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from reconcile.cli import app
from reconcile.impact import Impact, judge
from reconcile.plan import ActionKind, Plan
from reconcile.policies import DeleteGuard, GuardCondition, GuardUnknown
from reconcile.sim.app import build_app
from reconcile.sim.scenario import parse_scenario
from reconcile.sim.server import running

REPO = Path(__file__).resolve().parents[1].parent
TOKEN = "example-admin-token"  # the example world's administrator (docs/simulator.md)


def cli(tmp: Path, desired: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--desired", str(desired), "--state-dir", str(tmp / "state"), *args],
                                env={"NO_COLOR": "1", "USER": "tester", "CONFLUENCE_TOKEN": TOKEN})
    return result.exit_code, result.stdout + result.stderr


def example_desired(tmp: Path, url: str, policy: str) -> Path:
    """desired/ of the repository against `url`, with `policy.absent: delete` and the given guard lines."""
    desired = tmp / "desired"
    shutil.copytree(REPO / "desired", desired, ignore=shutil.ignore_patterns("examples"))
    site = desired / "confluence.yaml"
    text = site.read_text(encoding="utf-8").replace("http://127.0.0.1:8990", url)
    text = text.replace("  absent: disable ", "  absent: delete  ")
    site.write_text(text.replace("  unsynced: delete", policy + "\n  unsynced: delete"), encoding="utf-8")
    return desired


@pytest.fixture
def example() -> Iterator[tuple[str, Any]]:
    application = build_app()
    with running(application) as url:
        yield url, application.state.ctx.dc


def plan_of(tmp: Path, desired: Path) -> Plan:
    code, output = cli(tmp, desired, "plan", "--out", str(tmp / "plan.json"))
    assert code == 0, output
    return Plan.loads((tmp / "plan.json").read_text(encoding="utf-8"))


def test_delete_of_the_sole_admin_of_ops_becomes_a_disable_with_the_evidence(
        tmp_path: Path, example: tuple[str, Any]) -> None:
    url, world = example
    desired = example_desired(tmp_path, url, "  delete_guard: {}")
    plan = plan_of(tmp_path, desired)
    by_user = {a.subject.identity: a for a in plan.actions if a.kind in (ActionKind.DISABLE, ActionKind.DELETE)}
    rupert = by_user["rupert"]
    assert rupert.kind is ActionKind.DISABLE
    # the example world: rupert created ~rupert (9 pages) and is the only direct admin of OPS (57 pages)
    assert rupert.reason == ("delete → disable: personal space ~rupert, sole admin of OPS, 66 pages; "
                             "not in the desired state (policy.absent: delete)")
    assert rupert.precondition.guarded is not None
    assert rupert.precondition.guarded.evidence == ("personal space ~rupert", "sole admin of OPS", "66 pages")
    assert by_user["sybil"].kind is ActionKind.DISABLE  # sole admin of the archived OLD space
    assert "sole admin of OLD" in by_user["sybil"].reason
    # the unsynced jsmith entries own nothing: still deleted, the check said so
    jsmith = [a for a in plan.actions if a.subject.identity == "jsmith"]
    assert {a.kind for a in jsmith} == {ActionKind.DELETE}
    assert all(a.reason.endswith("; delete_guard: nothing found") for a in jsmith)

    code, output = cli(tmp_path, desired, "apply", str(tmp_path / "plan.json"), "--approve", plan.digest)
    assert code == 0, output
    assert "Did disable rupert" in output and "delete rupert" not in output
    rupert = world.users[world.by_username["rupert"]]
    assert not rupert.active and rupert.key not in world.deleted  # kept, with his spaces, reversibly


def test_without_the_guard_rupert_is_deleted(tmp_path: Path, example: tuple[str, Any]) -> None:
    plan = plan_of(tmp_path, example_desired(tmp_path, example[0], ""))
    kinds = {a.subject.identity: a.kind for a in plan.actions}
    assert kinds["rupert"] is ActionKind.DELETE  # the guard is what makes the difference


OLD_DC = """
confluence_dc:
  version: "9.1"
  groups: [{name: confluence-administrators}, {name: team-a}]
  users:
    - {username: admin, tokens: [example-admin-token], groups: [confluence-administrators]}
    - {username: alice, groups: [team-a]}
    - {username: gone, groups: [team-a]}
  spaces:
    - {key: TEAM, name: Team, admins: [alice]}
"""


@pytest.mark.parametrize(("guard", "kind", "evidence"), [
    ("delete_guard: {}", ActionKind.DISABLE, "delete → disable: space administrators unknown (GET "),
    ("delete_guard: {unknown: allow}", ActionKind.DELETE, "; delete_guard: space administrators unknown"),
    ("delete_guard: {when: [personal_space, content_created]}", ActionKind.DELETE,
     "; delete_guard: nothing found"),
], ids=["unknown-blocks", "unknown-allow", "not-asked"])
def test_space_permissions_missing_before_9_2_count_as_unknown(tmp_path: Path, guard: str, kind: ActionKind,
                                                                evidence: str) -> None:
    application = build_app(parse_scenario(OLD_DC, "<9.1 world>"))
    with running(application) as url:
        desired = tmp_path / "desired"
        desired.mkdir()
        (desired / "site.yaml").write_text(f"""version: 1
target: {{type: confluence-dc, url: "{url}", auth: {{token: "${{CONFLUENCE_TOKEN}}"}},
         admin_groups: [confluence-administrators]}}
scope: {{users: ["*"], groups: ["team-*"], protect: [admin]}}
policy:
  absent: delete
  {guard}
users:
  alice: {{groups: [team-a]}}
""", encoding="utf-8")
        plan = plan_of(tmp_path, desired)
    gone = next(a for a in plan.actions if a.subject.identity == "gone")
    assert gone.kind is kind
    assert evidence in gone.reason
    if kind is ActionKind.DISABLE:
        assert "/rest/api/space/TEAM/permissions -> 404)" in gone.reason  # the request that failed, named


# -- the memory target: impact from its state file ----------------------------------------------------


def memory_world(tmp: Path, impact: dict[str, Any] | None) -> Path:
    users: list[dict[str, Any]] = [
        {"ref": "u-admin", "username": "admin"},
        {"ref": "u-alice", "username": "alice"},
        {"ref": "u-bob", "username": "bob", **({"impact": impact} if impact is not None else {})},
    ]
    path = tmp / "world.json"
    path.write_text(json.dumps({"me": "u-admin", "users": users,
                                "groups": [{"name": "team-a", "members": ["u-alice", "u-bob"]}]}), encoding="utf-8")
    return path


def memory_desired(tmp: Path, world: Path, guard: str) -> Path:
    desired = tmp / "desired"
    desired.mkdir(exist_ok=True)
    (desired / "site.yaml").write_text(f"""version: 1
target: {{type: memory, state: "{world}"}}
scope: {{users: ["*"], groups: ["team-*"], protect: [admin]}}
policy:
  absent: delete
  {guard}
users:
  alice: {{groups: [team-a]}}
""", encoding="utf-8")
    return desired


@pytest.mark.parametrize(("impact", "guard", "kind", "reason"), [
    (None, "delete_guard: {}", ActionKind.DISABLE, "personal space unknown (world.json records no impact"),
    (None, "delete_guard: {unknown: allow}", ActionKind.DELETE, "allowed (unknown: allow)"),
    ({"personal_space": None, "sole_admin_of": [], "content": 3}, "delete_guard: {}", ActionKind.DISABLE,
     "delete → disable: 3 pages;"),
    ({"personal_space": None, "sole_admin_of": [], "content": 3}, "delete_guard: {content_over: 3}",
     ActionKind.DELETE, "nothing found"),
    ({"personal_space": None, "sole_admin_of": []}, "delete_guard: {when: [content_created]}",
     ActionKind.DISABLE, "content created unknown (not in world.json)"),
    ({"personal_space": "~bob", "sole_admin_of": ["DOCS"], "content": 214},
     "delete_guard: {when: [sole_space_admin]}", ActionKind.DISABLE, "delete → disable: sole admin of DOCS;"),
], ids=["unknown-blocks", "unknown-allow", "content", "content-over", "one-fact-unknown", "only-sole-admin"])
def test_memory_target_impact(tmp_path: Path, impact: dict[str, Any] | None, guard: str, kind: ActionKind,
                              reason: str) -> None:
    desired = memory_desired(tmp_path, memory_world(tmp_path, impact), guard)
    bob = next(a for a in plan_of(tmp_path, desired).actions if a.subject.identity == "bob")
    assert bob.kind is kind
    assert reason in bob.reason


def test_the_evidence_is_read_again_at_apply_and_a_changed_fact_makes_the_plan_stale(tmp_path: Path) -> None:
    world = memory_world(tmp_path, {"personal_space": None, "sole_admin_of": ["DOCS"], "content": 0})
    desired = memory_desired(tmp_path, world, "delete_guard: {}")
    plan = plan_of(tmp_path, desired)
    assert [a.kind for a in plan.actions if a.subject.identity == "bob"] == [ActionKind.DISABLE]
    data = json.loads(world.read_text(encoding="utf-8"))
    data["users"][2]["impact"]["sole_admin_of"] = []  # DOCS got a second administrator since the plan
    world.write_text(json.dumps(data), encoding="utf-8")
    code, output = cli(tmp_path, desired, "apply", str(tmp_path / "plan.json"), "--approve", plan.digest)
    assert code == 4, output
    assert "stale" in output and "new action: delete bob" in output
    assert json.loads(world.read_text(encoding="utf-8"))["users"][2].get("status", "active") == "active"


def test_already_disabled_user_is_kept_with_a_warning(tmp_path: Path) -> None:
    world = memory_world(tmp_path, {"personal_space": "~bob", "sole_admin_of": [], "content": 0})
    data = json.loads(world.read_text(encoding="utf-8"))
    data["users"][2]["status"] = "disabled"
    world.write_text(json.dumps(data), encoding="utf-8")
    plan = plan_of(tmp_path, memory_desired(tmp_path, world, "delete_guard: {}"))
    assert not [a for a in plan.actions if a.subject.identity == "bob"]
    guarded = [w for w in plan.warnings if w.kind == "guarded"]
    assert [w.subject for w in guarded] == ["bob"]
    assert "kept as a disabled user: personal space ~bob (policy.delete_guard)" in guarded[0].message


def test_judge_orders_evidence_and_reads_nothing_as_unknown() -> None:
    guard = DeleteGuard()
    assert judge(guard, None).blocked
    assert judge(DeleteGuard(unknown=GuardUnknown.ALLOW), None).blocked is False
    full = Impact(personal_space="~a", sole_admin_of=("X", "Y"), content=1)
    assert judge(guard, full).evidence == ("personal space ~a", "sole admin of X, Y", "1 page")
    only = DeleteGuard(when=frozenset({GuardCondition.CONTENT_CREATED}), content_over=1)
    assert judge(only, full) == judge(only, Impact())  # not above content_over, other facts not asked


CLOUD_ENV = {"NO_COLOR": "1", "ATLASSIAN_ORG_ID": "3f2a9c1e-7b4d-4e6f-9a8b-1c2d3e4f5a6b",
             "ATLASSIAN_ADMIN_KEY": "sim-cloud-admin-key", "ATLASSIAN_SITE_TOKEN": "sim-site-token"}
SITE = "  site: {url: URL, email: olga@acme.example, token: \"${ATLASSIAN_SITE_TOKEN}\"}\n"


def cloud_plan(tmp: Path, url: str, guard: str, *, site: bool = True) -> Plan:
    """desired/examples/atlassian-cloud against `url`, `absent: delete` with the given guard (and target.site)."""
    desired = tmp / "cloud"
    shutil.copytree(REPO / "desired" / "examples" / "atlassian-cloud", desired)
    target = desired / "target.yaml"
    text = target.read_text(encoding="utf-8").replace("http://127.0.0.1:8990", url)
    text = text.replace("  absent: disable", f"  absent: delete\n  delete_guard: {guard}")
    if site:
        text = text.replace("\nscope:", SITE.replace("URL", url) + "\nscope:")
    target.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["--desired", str(desired), "--state-dir", str(tmp / "state"),
                                      "plan", "--out", str(tmp / "plan.json")], env=CLOUD_ENV)
    assert result.exit_code == 0, result.output
    return Plan.loads((tmp / "plan.json").read_text(encoding="utf-8"))


def test_cloud_owner_fields_downgrade_bobs_delete_with_the_evidence(tmp_path: Path) -> None:
    with running(build_app()) as url:
        plan = cloud_plan(tmp_path, url, "{}")
    # the example organization's site: bob owns ~bob, is the only direct admin of SALES, created 88 pages
    assert [(a.kind, a.subject.identity, a.group, a.reason) for a in plan.actions] == [
        (ActionKind.ENABLE, "carol@acme.example", None, "desired status is active"),
        (ActionKind.ADD_MEMBER, "carol@acme.example", "team-docs", "desired member of team-docs"),
        (ActionKind.ADD_MEMBER, "erin@acme.example", "confluence-users", "desired member of confluence-users"),
        (ActionKind.DISABLE, "bob@acme.example", None, "delete → disable: personal space ~bob, sole admin of SALES, "
                                                       "88 pages; not in the desired state (policy.absent: delete)"),
    ]
    bob = plan.actions[-1]
    assert bob.precondition.guarded is not None
    assert bob.precondition.guarded.evidence == ("personal space ~bob", "sole admin of SALES", "88 pages")


@pytest.mark.parametrize(("guard", "kind"), [("{}", ActionKind.DISABLE), ("{unknown: allow}", ActionKind.DELETE)])
def test_without_target_site_cloud_facts_are_unknown_so_the_guard_blocks_unless_allowed(
        tmp_path: Path, guard: str, kind: ActionKind) -> None:
    with running(build_app()) as url:
        plan = cloud_plan(tmp_path, url, guard, site=False)
    bob = next(a for a in plan.actions if a.subject.identity == "bob@acme.example")
    assert bob.kind is kind
    assert "personal space unknown (target.site is not configured: Confluence Cloud is read through" in bob.reason


def test_a_cloud_site_refusing_the_reads_blocks_the_delete(tmp_path: Path) -> None:
    application = build_app()
    application.state.ctx.cloud.site_credentials["olga@acme.example"] = "rotated"  # the token was revoked
    with running(application) as url:
        plan = cloud_plan(tmp_path, url, "{}")
    bob = next(a for a in plan.actions if a.subject.identity == "bob@acme.example")
    assert bob.kind is ActionKind.DISABLE
    assert bob.reason.startswith(f"delete → disable: personal space unknown (GET {url}/wiki/api/v2/spaces -> 401), "
                                 f"space administrators unknown (GET {url}/wiki/api/v2/spaces -> 401), "
                                 f"content created unknown (GET {url}/wiki/rest/api/search -> 401); ")


def test_the_cloud_site_token_appears_in_no_output_plan_or_state_file(tmp_path: Path) -> None:
    """The guard reads Confluence with `target.site`'s token: refused (401) and accepted, it never leaves memory."""
    application = build_app()
    application.state.ctx.cloud.site_credentials["olga@acme.example"] = "rotated"  # every wiki read is refused
    with running(application) as url:
        cloud_plan(tmp_path, url, "{}")
        result = CliRunner().invoke(app, ["--desired", str(tmp_path / "cloud"), "--state-dir", str(tmp_path / "state"),
                                          "--verbose", "plan"], env=CLOUD_ENV)
    written = [p.read_text(encoding="utf-8", errors="replace") for p in tmp_path.rglob("*")
               if p.is_file() and "cloud" not in p.relative_to(tmp_path).parts]
    assert written and "401" in result.output
    for text in (result.output, *written):
        assert CLOUD_ENV["ATLASSIAN_SITE_TOKEN"] not in text
