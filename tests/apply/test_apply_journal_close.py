"""A completed apply closes its journal: the same change recurring (same digest) is applied afresh,
while an unfinished apply still resumes and skips what it did (issue 11, item 1)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from reconcile.apply import Prepared, apply, make_plan, prepare
from reconcile.errors import StalePlan
from reconcile.journal import ApprovalMode, AuditContext, AuditLog, Journal
from reconcile.plan import Action, ActionKind, Plan, Subject
from reconcile.results import ApplyResult
from reconcile.targets.base import Outcome, Result
from reconcile.targets.memory import MemoryTarget
from tests.support.apply import EXPECTED, make_config, member_of, read_world, world, write_world
from tests.support.builders import NOW
from tests.support.cli import make_cli


class World:
    """The memory world of fixtures_apply, planned and applied through the engine."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.state = write_world(tmp / "world.json")
        self.config = make_config(self.state)
        self.target = MemoryTarget(self.config.target)  # type: ignore[arg-type]

    def plan(self) -> Plan:
        return asyncio.run(make_plan(self.config, self.target, now=NOW))[1]

    def prepare(self, plan: Plan) -> Prepared:
        return asyncio.run(prepare(plan, self.config, self.target, state_dir=self.tmp))

    def apply(self, prepared: Prepared, limit: int | None = None) -> ApplyResult:
        context = AuditContext("tester", ApprovalMode.DIGEST, prepared.plan.digest, prepared.plan.target)
        return asyncio.run(apply(prepared, self.config, self.target, state_dir=self.tmp,
                                 audit=AuditLog(self.tmp / "audit.jsonl"), context=context, limit=limit))

    def revert(self) -> None:
        """Everything the plan changed is changed back behind the tool: the same drift again."""
        write_world(self.state, {**world(), "log": read_world(self.state).get("log", [])})

    def events(self, plan: Plan) -> list[str]:
        return [json.loads(line)["event"] for line in Journal(self.tmp, plan.digest).path.read_text().splitlines()]


@pytest.fixture
def w(tmp_path: Path) -> World:
    return World(tmp_path)


def test_a_completed_apply_closes_its_journal(w: World) -> None:
    plan = w.plan()
    w.apply(w.prepare(plan))
    assert w.events(plan)[-1] == "closed"
    assert w.events(plan).count("closed") == 1
    view = Journal(w.tmp, plan.digest).read()
    assert view.closed and view.finished == {a.id for a in plan.actions}
    assert w.prepare(plan).run == ()  # applied again with nothing recurring: nothing to do, not stale


def test_the_same_change_recurring_is_applied_afresh(w: World) -> None:
    plan = w.plan()
    w.apply(w.prepare(plan))
    w.revert()
    again = w.plan()
    assert again.digest == plan.digest  # deterministic: the same inputs, the same digest

    prepared = w.prepare(plan)  # before the fix: StalePlan ("the journal records it as done")
    assert [a.describe() for a in prepared.run] == EXPECTED and prepared.restart
    result = w.apply(prepared)

    assert result.count(Result.DONE) == 5 and result.residual is not None and result.residual.empty
    assert w.events(plan).count("closed") == 2
    assert len(read_world(w.state)["log"]) == 10  # every action performed once per occurrence


def test_an_unfinished_apply_of_a_recurring_change_still_resumes(w: World) -> None:
    plan = w.plan()
    w.apply(w.prepare(plan))
    w.revert()
    first = w.apply(w.prepare(plan), limit=2)
    assert len(first.not_run) == 3
    assert w.events(plan)[-1] != "closed"

    resumed = w.prepare(plan)
    assert not resumed.restart
    assert [a.describe() for a in resumed.run] == EXPECTED[2:]  # the two done in this occurrence are skipped
    w.apply(resumed)
    assert w.events(plan)[-1] == "closed"
    assert len(read_world(w.state)["log"]) == 10


def test_killed_between_its_last_action_and_closing_the_recurrence_still_applies(w: World) -> None:
    plan = w.plan()
    journal = Journal(w.tmp, plan.digest)
    for action in plan.actions:  # an apply that finished every action, then died before closing
        journal.started(action)
        journal.finished(action, asyncio.run(w.target.perform(action)))
    assert w.prepare(plan).run == ()
    w.revert()

    first = w.apply(w.prepare(plan), limit=1)
    assert [r.action.describe() for r in first.outcomes] == EXPECTED[:1]
    # the new occurrence's lines are separate from the old ones: the rest is still to do
    assert [a.describe() for a in w.prepare(plan).run] == EXPECTED[1:]


def test_part_of_a_closed_plan_recurring_is_still_stale(w: World) -> None:
    plan = w.plan()
    w.apply(w.prepare(plan))
    reverted = read_world(w.state)
    next(g for g in reverted["groups"] if g["name"] == "team-docs")["members"].append("u-alice")
    write_world(w.state, reverted)

    with pytest.raises(StalePlan, match="changed again behind the plan"):
        w.prepare(plan)
    assert "u-alice" in member_of(read_world(w.state), "team-docs")


def test_journal_lines_after_a_close_are_a_new_apply(tmp_path: Path) -> None:
    add = Action(ActionKind.ADD_MEMBER, Subject("alice@example.com", "u-alice"), group="team-eng")
    disable = Action(ActionKind.DISABLE, Subject("dave", "u-dave"))
    journal = Journal(tmp_path, "d" * 64)
    for action in (add, disable):
        journal.started(action)
        journal.finished(action, Outcome(Result.DONE))
    journal.begin()  # complete but unclosed: a new apply closes the old one first
    journal.begin()  # and only once
    assert Journal(tmp_path, "d" * 64).read().closed
    journal.started(add)

    view = journal.read()
    assert not view.closed and view.in_flight == {add.id} and view.finished == frozenset()
    lines = [json.loads(line) for line in journal.path.read_text().splitlines()]
    assert [line["event"] for line in lines] == ["started", "done", "started", "done", "closed", "started"]
    assert all("id" in line for line in lines)  # a `closed` line has the same keys (its id is null)


def test_cli_plan_apply_recur_plan_apply(tmp_path: Path) -> None:
    """The issue's repro on the memory target: plan --out b.json; apply; the drift recurs; plan --out
    c.json has the same digest; apply c.json --approve DIGEST converges."""
    cli = make_cli(tmp_path)
    converged = cli("apply", "--auto-approve")
    assert converged.exit_code == 0, converged.output
    drift = read_world(cli.state)
    next(g for g in drift["groups"] if g["name"] == "team-docs")["members"].append("u-alice")
    write_world(cli.state, drift)

    b_path = tmp_path / "b.json"
    assert cli("plan", "--out", str(b_path)).exit_code == 0
    b = Plan.loads(b_path.read_text())
    assert [a.describe() for a in b.actions] == [EXPECTED[3]]
    applied = cli("apply", str(b_path), "--approve", b.digest)
    assert applied.exit_code == 0, applied.output

    write_world(cli.state, drift)  # alice is added back to team-docs behind the tool
    c_path = tmp_path / "c.json"
    assert cli("plan", "--out", str(c_path)).exit_code == 0
    c = Plan.loads(c_path.read_text())
    assert c.digest == b.digest

    again = cli("apply", str(c_path), "--approve", c.digest)
    assert again.exit_code == 0, again.output  # before the fix: exit 4, stale
    assert "1 done" in again.stdout and "Nothing left to change, but 1 warning needs attention" in again.stdout
    assert "u-alice" not in member_of(read_world(cli.state), "team-docs")
