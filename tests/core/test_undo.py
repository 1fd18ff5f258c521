"""Undo plans (issue 14 item 6): every apply writes `<state-dir>/undo-<digest12>.json`, the inverse of what it
did, applied with `reconcile apply UNDO.json` against fresh per-action facts; deletes are listed as
irreversible. The 500-user reclamation is reversed through the CLI on the simulator, state compared.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from typer.testing import CliRunner

from reconcile.cli import app
from reconcile.model import Status
from reconcile.plan import Action, ActionKind, Plan, Subject
from reconcile.precondition import Precondition
from reconcile.report import SCHEMA
from reconcile.sim.app import build_app
from reconcile.sim.scenario import parse_scenario
from reconcile.sim.server import running
from reconcile.undo import build_undo, inverse

TOKEN = "pat-undo-7f3e"
KEPT, GONE = 100, 500  # users the desired state keeps (moved team-a -> team-b), users it reclaims


def cli(tmp: Path, *args: str, desired: Path | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--desired", str(desired or tmp / "desired"), "--state-dir",
                                      str(tmp / "state"), *args],
                                env={"NO_COLOR": "1", "USER": "tester", "TOKEN": TOKEN})
    return result.exit_code, result.stdout + result.stderr


def undo_command(output: str) -> tuple[str, str]:
    """The undo plan's path and digest from the line apply prints."""
    found = re.search(r"reverse this apply with: reconcile apply (\S+) --approve ([0-9a-f]{64})", output)
    assert found, output
    return found.group(1), found.group(2)


def dc_state(url: str) -> dict[str, Any]:
    """/_sim/state of the DC world, each group's members as a set (a re-added member goes to the end)."""
    state: dict[str, Any] = httpx.get(f"{url}/_sim/state", params={"api": "confluence-dc"}).json()
    dc: dict[str, Any] = state["confluence-dc"]
    for group in dc["groups"]:
        group["members"] = sorted(group["members"])
    return dc


@pytest.mark.slow  # a large world is the point: make test runs it, make check leaves it out
def test_undo_of_a_500_user_reclamation_restores_the_exact_prior_state(tmp_path: Path) -> None:
    names = [f"u{i:04d}" for i in range(KEPT + GONE)]
    users = "\n".join(f"    - {{username: {n}, email: {n}@example.com, groups: [confluence-users, team-a"
                      f"{', team-c' if i % 7 == 0 else ''}]}}" for i, n in enumerate(names))
    world = f"""confluence_dc:
  version: "9.4"
  groups: [{{name: confluence-administrators}}, {{name: confluence-users}}, {{name: team-a}}, {{name: team-b}},
           {{name: team-c}}]
  users:
    - {{username: admin, email: admin@example.com, tokens: [{TOKEN}], groups: [confluence-administrators]}}
{users}
"""
    application = build_app(parse_scenario(world, "<reclamation world>"))
    desired = tmp_path / "desired"
    desired.mkdir()
    kept = "\n".join(f"  {n}: {{groups: [team-b]}}" for n in names[:KEPT])
    with running(application) as url:
        (desired / "site.yaml").write_text(f"""version: 1
target: {{type: confluence-dc, url: "{url}", auth: {{token: "${{TOKEN}}"}}, admin_groups: [confluence-administrators]}}
scope: {{users: ["*"], groups: ["team-*"], protect: [admin]}}
policy:
  absent: disable
  limits: {{disable: "100%", remove_member: "100%"}}
users:
{kept}
""", encoding="utf-8")
        before = dc_state(url)
        code, output = cli(tmp_path, "plan", "--out", str(tmp_path / "plan.json"))
        assert code == 0, output
        plan = Plan.loads((tmp_path / "plan.json").read_text(encoding="utf-8"))
        counts = plan.counts()
        assert (counts["disable"], counts["add_member"], counts["remove_member"]) == (GONE, KEPT, KEPT + 15)
        code, output = cli(tmp_path, "apply", str(tmp_path / "plan.json"), "--approve", plan.digest)
        assert code == 0, output
        reclaimed = dc_state(url)
        assert sum(not u["active"] for u in reclaimed["users"]) == GONE
        path, digest = undo_command(output)
        assert Path(path) == tmp_path / "state" / f"undo-{plan.digest[:12]}.json"

        code, output = cli(tmp_path, "apply", path, "--approve", digest)
        assert code == 0, output
        assert f"{GONE + 2 * KEPT + 15} done, 0 already in effect, 0 failed" in output
        assert dc_state(url) == before

        code, output = cli(tmp_path, "apply", path, "--approve", digest)  # once more: nothing left to do
        assert code == 0, output
        assert "is already done" in output
        assert dc_state(url) == before


# -- the memory target ---------------------------------------------------------------------------------


def memory(tmp: Path, absent: str = "disable") -> tuple[Path, Path]:
    world = tmp / "world.json"
    world.write_text(json.dumps({"me": "u-admin", "users": [
        {"ref": "u-admin", "username": "admin"}, {"ref": "u-alice", "username": "alice"},
        {"ref": "u-bob", "username": "bob"}, {"ref": "u-carol", "username": "carol"},
        {"ref": "u-dave", "username": "dave", "status": "disabled"},
    ], "groups": [{"name": "team-a", "members": ["u-alice", "u-bob", "u-carol"]}, {"name": "team-b", "members": []}]}),
        encoding="utf-8")
    desired = tmp / "desired"
    desired.mkdir(exist_ok=True)
    (desired / "site.yaml").write_text(f"""version: 1
target: {{type: memory, state: "{world}"}}
scope: {{users: ["*"], groups: ["team-*"], protect: [admin]}}
policy: {{absent: {absent}}}
users:
  alice: {{groups: [team-b]}}
  dave: {{}}
""", encoding="utf-8")
    return world, desired


def people(world: Path) -> dict[str, Any]:
    data = json.loads(world.read_text(encoding="utf-8"))
    return {"users": {u["ref"]: u.get("status", "active") for u in data["users"]},
            "groups": {g["name"]: sorted(g["members"]) for g in data["groups"]}}


def test_an_undo_action_whose_subject_changed_since_is_skipped_and_reported(tmp_path: Path) -> None:
    world, _ = memory(tmp_path)
    before = people(world)
    code, output = cli(tmp_path, "apply", "--auto-approve")
    assert code == 0, output
    path, digest = undo_command(output)
    data = json.loads(world.read_text(encoding="utf-8"))
    for user in data["users"]:
        if user["ref"] == "u-bob":
            user["status"] = "active"  # someone re-enabled bob by hand since
    data["users"] = [u for u in data["users"] if u["ref"] != "u-carol"]  # and carol was deleted
    for group in data["groups"]:
        group["members"] = [m for m in group["members"] if m != "u-carol"]
    world.write_text(json.dumps(data), encoding="utf-8")

    code, output = cli(tmp_path, "apply", path, "--approve", digest)
    assert code == 0, output
    assert "Skipped enable bob (u-bob): already active (changed since the apply)" in output
    assert "Skipped enable carol (u-carol): the user no longer exists" in output
    after = people(world)
    assert after["users"] == {r: s for r, s in before["users"].items() if r != "u-carol"}
    assert after["groups"]["team-a"] == ["u-alice", "u-bob"] and after["groups"]["team-b"] == []


def test_deletes_are_listed_as_irreversible_and_an_edited_undo_plan_is_refused(tmp_path: Path) -> None:
    world, _ = memory(tmp_path, absent="delete")
    code, output = cli(tmp_path, "apply", "--auto-approve", "--report", str(tmp_path / "report.json"))
    assert code == 0, output
    assert "2 change(s) cannot be undone: see its warnings" in output
    path, digest = undo_command(output)
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(SCHEMA).validate(report)
    assert report["apply"]["undo_plan"] == {"path": path, "digest": digest}
    undo = Plan.loads(Path(path).read_text(encoding="utf-8"))
    assert [(w.kind, w.subject) for w in undo.warnings] == [("irreversible", "bob"), ("irreversible", "carol")]
    assert [a.describe() for a in undo.actions] == ["add alice (u-alice) to team-a",
                                                     "remove alice (u-alice) from team-b", "disable dave (u-dave)"]
    assert undo.undoes and undo.digest == digest
    edited = Path(path).read_text(encoding="utf-8").replace('"team-a"', '"team-x"')
    Path(path).write_text(edited, encoding="utf-8")
    code, output = cli(tmp_path, "apply", path, "--approve", digest)
    assert code == 1 and "the file was edited after planning" in output
    assert people(world)["groups"]["team-b"] == ["u-alice"]


def test_an_apply_in_steps_leaves_one_undo_plan_for_all_of_it(tmp_path: Path) -> None:
    world, _ = memory(tmp_path)
    before = people(world)
    code, output = cli(tmp_path, "plan", "--out", str(tmp_path / "plan.json"))
    assert code == 0, output
    plan = Plan.loads((tmp_path / "plan.json").read_text(encoding="utf-8"))
    for _ in range(3):  # 5 actions, 2 at a time
        code, output = cli(tmp_path, "apply", str(tmp_path / "plan.json"), "--approve", plan.digest,
                           "--limit", "2")
        assert code == 0, output
    path, digest = undo_command(output)
    assert len(Plan.loads(Path(path).read_text(encoding="utf-8")).actions) == len(plan.actions) == 5
    code, output = cli(tmp_path, "apply", path, "--approve", digest)
    assert code == 0, output
    assert people(world) == before


def test_inverse_of_each_kind() -> None:
    who = Subject("bob", "u-bob")
    cases = {
        Action(ActionKind.ENABLE, who): (ActionKind.DISABLE, Precondition(status=Status.ACTIVE), None),
        Action(ActionKind.DISABLE, who): (ActionKind.ENABLE, Precondition(status=Status.DISABLED), None),
        Action(ActionKind.ADD_MEMBER, who, "g"): (ActionKind.REMOVE_MEMBER, Precondition(member=True), "g"),
        Action(ActionKind.REMOVE_MEMBER, who, "g"): (ActionKind.ADD_MEMBER, Precondition(member=False), "g"),
    }
    for action, (kind, pre, group) in cases.items():
        back = inverse(action, "ab" * 32)
        assert back is not None
        assert (back.kind, back.precondition, back.group, back.subject) == (kind, pre, group, who)
        assert back.reason.startswith(f"undoes {action.kind}") and back.reason.endswith("(plan abababababab)")
    assert inverse(Action(ActionKind.DELETE, who), "ab" * 32) is None
    plan = Plan(target={"type": "memory"}, desired_digest="d", actual_fingerprint="f", actions=())
    assert build_undo(plan, [], created_at="") is None  # nothing done: no undo plan


def test_the_undo_of_a_large_plan_hashes_that_plan_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building the undo asked for the plan's digest once per action, and each time hashed the whole plan:
    7 s for 1,000 actions, hours for 100,000. The frozen plan now keeps its digest."""
    import reconcile.plan as plan_module

    hashed: list[int] = []
    real = plan_module.sha256_json

    def counted(data: Any) -> str:
        hashed.append(len(data["actions"]))
        return real(data)

    monkeypatch.setattr(plan_module, "sha256_json", counted)
    actions = tuple(Action(ActionKind.DISABLE, Subject(f"u{i:04d}", f"ref-{i:04d}"),
                           precondition=Precondition(status=Status.ACTIVE)) for i in range(2000))
    plan = Plan(target={"type": "memory"}, desired_digest="d" * 64, actual_fingerprint="f" * 64, actions=actions)
    undo = build_undo(plan, plan.actions, created_at="")
    assert undo is not None and len(undo.actions) == 2000
    assert hashed == [2000]  # the plan's digest, once; the undo's own is not asked for yet
    assert undo.digest == undo.digest and hashed == [2000, 2000]  # the undo's, once as well
    assert {a.precondition.status for a in undo.actions} == {Status.DISABLED}
    fresh = Plan(target={"type": "memory"}, desired_digest="d" * 64, actual_fingerprint="f" * 64, actions=actions)
    assert plan.digest == fresh.digest  # the kept digest is the one a fresh plan computes
    from dataclasses import replace
    assert replace(plan, actions=actions[:1]).digest != plan.digest  # a changed copy computes its own
