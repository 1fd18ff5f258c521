"""Preconditions at apply: a fact that selected an action and no longer holds skips it (reported, exit 0);
apply re-plans with the plan's own `evaluated_at`; preconditions and `evaluated_at` survive the plan file.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconcile.apply import ApplyResult, Prepared, apply, make_plan, prepare
from reconcile.errors import ReconcileError, StalePlan, TargetError
from reconcile.export import to_csv
from reconcile.journal import ApprovalMode, AuditContext, AuditLog, Journal
from reconcile.model import Activity, Status, User
from reconcile.plan import Action, ActionKind, Plan, Subject, order
from reconcile.precondition import Inactive, Precondition
from reconcile.targets.base import Result
from reconcile.targets.memory import MemoryTarget
from tests.support.apply import EXPECTED, make_config, read_world, status_of, world, write_world
from tests.support.builders import NOW
from tests.support.cli import make_cli

CUTOFF = datetime(2026, 8, 28, tzinfo=UTC)  # NOW - 90 days
BEFORE = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)
AFTER = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)  # logged in since the plan was made
INACTIVE = Inactive(CUTOFF, ("confluence",), BEFORE)


def disable_bob(inactive: Inactive = INACTIVE) -> Action:
    """What issue 14's `policy.inactive` (applies_to: desired, action: disable) will plan for bob."""
    return Action(ActionKind.DISABLE, Subject("bob@example.com", "u-bob"),
                  reason="inactive since 2026-06-01 (policy.inactive: 90d)",
                  precondition=Precondition(status=Status.ACTIVE, inactive=inactive))


def world_where_bob_was_active(at: datetime) -> dict[str, object]:
    data = world()
    bob = next(u for u in data["users"] if u["ref"] == "u-bob")
    bob["last_active"] = {"confluence": at.isoformat().replace("+00:00", "Z"), "jira-software": "2026-11-01T00:00:00Z"}
    return data


def with_action(plan: Plan, action: Action) -> Plan:
    return replace(plan, actions=order([*plan.actions, action]))


def run(state: Path, tmp: Path, plan: Plan) -> tuple[Prepared, ApplyResult, list[str]]:
    config = make_config(state)
    target = MemoryTarget(config.target)  # type: ignore[arg-type]
    prepared = asyncio.run(prepare(plan, config, target, state_dir=tmp))
    lines: list[str] = []
    context = AuditContext("tester", ApprovalMode.DIGEST, plan.digest, plan.target)
    result = asyncio.run(apply(prepared, config, target, state_dir=tmp, audit=AuditLog(tmp / "audit.jsonl"),
                               context=context, on_line=lines.append))
    return prepared, result, lines


def planned(state: Path) -> Plan:
    config = make_config(state)
    return asyncio.run(make_plan(config, MemoryTarget(config.target), now=NOW))[1]  # type: ignore[arg-type]


def test_an_action_whose_selection_no_longer_holds_is_skipped_and_reported(tmp_path: Path) -> None:
    state = write_world(tmp_path / "world.json", world_where_bob_was_active(BEFORE))
    plan = with_action(planned(state), disable_bob())
    write_world(state, world_where_bob_was_active(AFTER))  # bob logs in between plan and apply

    prepared, result, lines = run(state, tmp_path, plan)

    assert [s.action.describe() for s in prepared.skipped] == ["disable bob@example.com (u-bob)"]
    assert "disable bob@example.com (u-bob)" not in [a.describe() for a in prepared.run]
    assert status_of(read_world(state), "u-bob") == "active"  # not performed
    assert "Skipped disable bob@example.com (u-bob): active since the plan: last active " \
           "2026-11-25T08:00:00Z, after the cutoff 2026-08-28T00:00:00Z" in lines
    assert (result.count(Result.SKIPPED), result.count(Result.DONE), result.failures) == (1, len(EXPECTED), ())
    assert "1 skipped (precondition no longer holds)" in result.summary()
    assert result.drift == ()  # the rest of the plan applied and converged
    events = [json.loads(line) for line in Journal(tmp_path, plan.digest).path.read_text().splitlines()]
    assert ("skipped", "u-bob") in {(e["event"], e.get("ref")) for e in events}
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [a["outcome"] for a in audit if a["action"]["ref"] == "u-bob"] == ["skipped"]


def test_a_product_that_does_not_count_does_not_unselect(tmp_path: Path) -> None:
    # Active in Jira since the cutoff, but only Confluence counts: still inactive, so the fact holds,
    # and today's planner (no inactivity policy yet) plans no such action: the plan is stale.
    state = write_world(tmp_path / "world.json", world_where_bob_was_active(BEFORE))
    plan = with_action(planned(state), disable_bob())
    with pytest.raises(StalePlan, match=r"action no longer needed: disable bob@example\.com"):
        run(state, tmp_path, plan)
    assert status_of(read_world(state), "u-bob") == "active"
    every = with_action(planned(state), disable_bob(replace(INACTIVE, products=())))  # any product counts
    prepared, _, _ = run(state, tmp_path / "any", every)
    assert [s.why for s in prepared.skipped] == [
        "active since the plan: last active 2026-11-01T00:00:00Z, after the cutoff 2026-08-28T00:00:00Z"]


def test_a_skipped_action_is_not_reconsidered_by_a_later_apply_of_the_plan(tmp_path: Path) -> None:
    state = write_world(tmp_path / "world.json", world_where_bob_was_active(BEFORE))
    plan = with_action(planned(state), disable_bob())
    write_world(state, world_where_bob_was_active(AFTER))
    run(state, tmp_path, plan)
    again, result, _ = run(state, tmp_path, plan)
    assert (again.run, again.skipped, result.outcomes) == ((), (), ())


def test_the_cli_reports_skips_and_exits_0(tmp_path: Path) -> None:
    cli = make_cli(tmp_path)
    write_world(cli.state, world_where_bob_was_active(BEFORE))
    path, plan = cli.plan_file()
    edited = with_action(plan, disable_bob())
    path.write_text(edited.dumps(), encoding="utf-8")
    write_world(cli.state, world_where_bob_was_active(AFTER))

    result = cli("apply", str(path), "--approve", edited.digest, "--report", str(tmp_path / "report.json"))

    assert result.exit_code == 0, result.output
    assert "Skipped disable bob@example.com (u-bob): active since the plan" in result.stdout
    assert "1 skipped (precondition no longer holds)" in result.stdout
    assert status_of(read_world(cli.state), "u-bob") == "active"
    report = cli.report()
    assert report["apply"]["counts"]["skipped"] == 1 and report["status"] == "applied"
    bob = next(a for a in report["actions"] if a["subject"]["ref"] == "u-bob")
    assert bob["outcome"]["result"] == "skipped"
    assert bob["precondition"]["inactive"] == {"cutoff": "2026-08-28T00:00:00Z", "products": ["confluence"],
                                               "last_active": "2026-06-01T09:30:00Z"}


def test_apply_replans_with_the_plans_own_time(tmp_path: Path) -> None:
    state = write_world(tmp_path / "world.json")
    plan = replace(planned(state), evaluated_at=NOW - timedelta(days=3))
    _, result, _ = run(state, tmp_path, plan)
    assert result.residual is not None and result.residual.evaluated_at == NOW - timedelta(days=3)


def test_a_plan_without_an_evaluation_time_is_refused(tmp_path: Path) -> None:
    state = write_world(tmp_path / "world.json")
    with pytest.raises(ReconcileError, match="does not record when it was evaluated"):
        run(state, tmp_path, replace(planned(state), evaluated_at=None))
    assert read_world(state) == world()


def test_plan_file_keeps_typed_preconditions_and_evaluated_at(tmp_path: Path) -> None:
    state = write_world(tmp_path / "world.json")
    plan = with_action(planned(state), disable_bob())
    data = plan.to_json()
    assert data["evaluated_at"] == "2026-11-26T12:00:00Z"
    preconditions = {a["subject"]["ref"] + (a["group"] or ""): a["precondition"] for a in data["actions"]}
    assert preconditions["u-erin"] == {"status": "disabled"}
    assert preconditions["u-aliceteam-eng"] == {"member": False}
    assert preconditions["u-bob"]["status"] == "active"
    loaded = Plan.loads(plan.dumps())
    assert loaded == plan
    old = dict(data)  # a plan file written before evaluated_at existed: evaluated when created
    del old["evaluated_at"]
    old["created_at"] = "2026-11-20T10:00:00.000Z"
    assert Plan.loads(json.dumps(old)).evaluated_at == datetime(2026, 11, 20, 10, tzinfo=UTC)


@pytest.mark.parametrize(("field", "value", "why"), [
    ("evaluated_at", "yesterday", "evaluated_at 'yesterday' is not a timestamp"),
    ("precondition", {"owner": "x"}, "unknown precondition 'owner'"),
    ("precondition", {"member": "no"}, "precondition member is 'no', not true or false"),
])
def test_damaged_plan_fields_are_named(tmp_path: Path, field: str, value: object, why: str) -> None:
    data = planned(write_world(tmp_path / "world.json")).to_json()
    if field == "precondition":
        data["actions"][0]["precondition"] = value
    else:
        data[field] = value
    with pytest.raises(ReconcileError, match=f"not a reconcile plan file: .*{why}"):
        Plan.loads(json.dumps(data), "p.json")


def test_activity_is_per_product_immutable_and_hashable() -> None:
    stamps = Activity([("confluence", BEFORE), ("jira-software", AFTER), ("confluence", CUTOFF)])
    assert dict(stamps) == {"confluence": CUTOFF, "jira-software": AFTER}  # two sites: the latest
    assert stamps.latest() == AFTER and stamps.latest(["confluence"]) == CUTOFF
    assert stamps.latest(["bitbucket"]) is None and Activity().latest() is None
    assert hash(User("u", last_active=stamps)) == hash(User("u", last_active=Activity(dict(stamps))))
    with pytest.raises(ValueError, match="no time zone"):
        Activity({"confluence": datetime(2026, 1, 1)})


def test_the_prompt_and_the_dry_run_say_what_will_be_skipped(tmp_path: Path) -> None:
    cli = make_cli(tmp_path)
    write_world(cli.state, world_where_bob_was_active(BEFORE))
    path, plan = cli.plan_file()
    edited = with_action(plan, disable_bob())
    path.write_text(edited.dumps(), encoding="utf-8")
    write_world(cli.state, world_where_bob_was_active(AFTER))

    dry = cli("apply", str(path), "--approve", edited.digest, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "Skipped disable bob@example.com (u-bob): active since the plan" in dry.stdout
    assert f"Dry run: {len(EXPECTED)} actions would be applied (1 skipped: precondition no longer holds)" in dry.stdout

    asked = cli("apply", str(path), input="no\n")
    assert asked.exit_code == 1
    assert "Will skip disable bob@example.com (u-bob): active since the plan" in asked.stdout
    assert "already done" not in asked.stdout
    assert status_of(read_world(cli.state), "u-bob") == "active"
    assert not (tmp_path / "state" / "journal").exists()  # cancelled: not even the skip was recorded


def test_activity_that_can_no_longer_be_read_does_not_confirm_inactivity(tmp_path: Path) -> None:
    state = write_world(tmp_path / "world.json", world_where_bob_was_active(BEFORE))
    plan = with_action(planned(state), disable_bob())
    write_world(state, world())  # bob's last activity is not revealed any more
    prepared, _, _ = run(state, tmp_path, plan)
    assert [s.why for s in prepared.skipped] == ["last activity can no longer be read, so inactivity is not confirmed"]
    assert status_of(read_world(state), "u-bob") == "active"


def test_memory_target_reads_activity_and_export_shows_the_latest(tmp_path: Path) -> None:
    state = write_world(tmp_path / "world.json", world_where_bob_was_active(AFTER))
    config = make_config(state)
    actual = asyncio.run(MemoryTarget(config.target).fetch(config.scope))  # type: ignore[arg-type]
    assert actual.users["u-bob"].last_active == {"confluence": AFTER,
                                                 "jira-software": datetime(2026, 11, 1, tzinfo=UTC)}
    assert actual.users["u-alice"].last_active is None
    rows = {r["ref"]: r for r in csv.DictReader(io.StringIO(to_csv(actual)))}
    assert (rows["u-bob"]["last_active"], rows["u-alice"]["last_active"]) == ("2026-11-25T08:00:00Z", "")
    broken = world()
    broken["users"][2]["last_active"] = {"confluence": "last tuesday"}
    write_world(state, broken)
    with pytest.raises(TargetError, match="last_active of confluence is not an ISO-8601 timestamp"):
        asyncio.run(MemoryTarget(config.target).fetch(config.scope))  # type: ignore[arg-type]
