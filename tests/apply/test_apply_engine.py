"""The executor on the memory target: approval, stale plans, order, failures, --limit, resume, audit."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from reconcile.apply import (
    ApplyResult,
    Approval,
    Prepared,
    apply,
    check_approval,
    execute,
    make_plan,
    prepare,
    sentence,
)
from reconcile.errors import ActionsFailed, ApprovalMismatch, LimitExceeded, StalePlan, UsageError
from reconcile.journal import ApprovalMode, AuditContext, AuditLog, Journal
from reconcile.model import AbsentPolicy, DesiredUser, Limit, Policy, Status
from reconcile.plan import Action, ActionKind, Plan, Subject
from reconcile.settings import Config, MemorySettings
from reconcile.targets.base import Outcome, Progress, Result
from reconcile.targets.memory import MemoryTarget
from tests.support.apply import EXPECTED, make_config, member_of, read_world, status_of, world, write_world
from tests.support.builders import NOW


@dataclass
class Observed:
    """A real memory target that also records what ran, and how many ran at once per kind."""

    inner: MemoryTarget
    started: list[ActionKind] = field(default_factory=list)
    running: dict[ActionKind, int] = field(default_factory=dict)
    peak: dict[ActionKind, int] = field(default_factory=dict)

    @property
    def supports(self) -> frozenset[ActionKind]:
        return self.inner.supports

    def address(self) -> dict[str, str]:
        return self.inner.address()

    def concurrency(self, kind: ActionKind) -> int:
        return self.inner.concurrency(kind)

    async def fetch(self, scope: object, progress: Progress | None = None) -> object:
        return await self.inner.fetch(scope, progress)  # type: ignore[arg-type]

    async def perform(self, action: Action) -> Outcome:
        self.started.append(action.kind)
        self.running[action.kind] = self.running.get(action.kind, 0) + 1
        self.peak[action.kind] = max(self.peak.get(action.kind, 0), self.running[action.kind])
        try:
            return await self.inner.perform(action)
        finally:
            self.running[action.kind] -= 1

    async def aclose(self) -> None:
        return None


@dataclass
class Setup:
    tmp: Path
    config: Config
    target: MemoryTarget

    @property
    def state(self) -> Path:
        return Path(self.config.target.address()["url"])

    def plan(self) -> Plan:
        return asyncio.run(make_plan(self.config, self.target, now=NOW))[1]

    def prepare(self, plan: Plan, *, force: bool = False) -> Prepared:
        return asyncio.run(prepare(plan, self.config, self.target, state_dir=self.tmp, force=force))

    def apply(self, prepared: Prepared, *, limit: int | None = None, target: object = None,
              lines: list[str] | None = None) -> ApplyResult:
        context = AuditContext("tester", ApprovalMode.DIGEST, prepared.plan.digest, prepared.plan.target)
        return asyncio.run(apply(prepared, self.config, target or self.target,  # type: ignore[arg-type]
                                 state_dir=self.tmp, audit=AuditLog(self.tmp / "audit.jsonl"),
                                 context=context, limit=limit, on_line=None if lines is None else lines.append))


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    state = write_world(tmp_path / "world.json")
    config = make_config(state)
    return Setup(tmp_path, config, MemoryTarget(config.target))  # type: ignore[arg-type]


def journal_events(setup: Setup, plan: Plan) -> list[tuple[str, str]]:
    lines = Journal(setup.tmp, plan.digest).path.read_text().splitlines()
    return [(json.loads(line)["event"], json.loads(line)["id"]) for line in lines]


# ----------------------------------------------------------------------------------- approval


def test_digest_prefix_of_12_approves_shorter_is_a_usage_error(setup: Setup) -> None:
    plan = setup.plan()
    check_approval(plan, Approval.given(plan.digest[:12]))
    check_approval(plan, Approval.given(plan.digest.upper()))
    with pytest.raises(UsageError, match="at least 12"):
        Approval.given(plan.digest[:11])
    with pytest.raises(UsageError):
        Approval.given("not-a-digest-at-all")


def test_mismatching_digest_is_refused(setup: Setup) -> None:
    plan = setup.plan()
    other = "0" * 64 if not plan.digest.startswith("0") else "1" * 64
    with pytest.raises(ApprovalMismatch) as refused:
        check_approval(plan, Approval.given(other[:12]))
    assert refused.value.exit_code == 4


# ----------------------------------------------------------------------------- apply and order


def test_plan_then_apply_converges_in_spec_order(setup: Setup) -> None:
    plan = setup.plan()
    assert [a.describe() for a in plan.actions] == EXPECTED
    observed = Observed(setup.target)
    lines: list[str] = []

    result = setup.apply(setup.prepare(plan), target=observed, lines=lines)

    assert result.count(Result.DONE) == 5 and not result.failures and not result.not_run
    assert result.residual is not None and result.residual.empty and not result.drift
    ranks = [k.rank for k in observed.started]
    assert ranks == sorted(ranks), "phases run enable -> add -> remove -> disable -> delete"
    assert sorted(lines) == sorted(f"Did {d}" for d in EXPECTED)
    after = read_world(setup.state)
    assert member_of(after, "team-eng") == ["u-alice", "u-bob"]
    assert member_of(after, "team-docs") == ["u-carol", "u-dave", "u-out"]
    assert status_of(after, "u-dave") == "disabled" and status_of(after, "u-erin") == "active"
    assert setup.plan().empty


def test_journal_and_audit_record_every_action_before_and_after(setup: Setup) -> None:
    plan = setup.plan()
    setup.apply(setup.prepare(plan))

    events = journal_events(setup, plan)
    for a in plan.actions:
        mine = [e for e, i in events if i == a.id]
        assert mine == ["started", "done"]
    audit = [json.loads(line) for line in (setup.tmp / "audit.jsonl").read_text().splitlines()]
    assert sorted(line["action"]["id"] for line in audit) == sorted(a.id for a in plan.actions)
    assert {(line["operator"], line["approval"], line["plan_digest"]) for line in audit} == {
        ("tester", "digest", plan.digest)
    }


def test_deletes_run_one_at_a_time_other_kinds_concurrently(tmp_path: Path) -> None:
    state = write_world(tmp_path / "world.json")
    users = [DesiredUser("alice@example.com", groups=frozenset({"team-docs", "team-eng"}))]
    config = make_config(state, users, delay=0.02,
                         policy=Policy(absent=AbsentPolicy.DELETE, limits={"delete": Limit(100)}))
    target = MemoryTarget(config.target)  # type: ignore[arg-type]
    s = Setup(tmp_path, config, target)
    plan = s.plan()
    assert [a.kind for a in plan.actions].count(ActionKind.DELETE) == 4  # bob, carol, dave, erin
    observed = Observed(target)

    s.apply(s.prepare(plan), target=observed)

    assert observed.peak[ActionKind.DELETE] == 1


# ---------------------------------------------------------------------------------- stale plans


def test_state_changed_behind_the_plan_is_stale_and_says_what(setup: Setup) -> None:
    plan = setup.plan()
    changed = world()
    next(g for g in changed["groups"] if g["name"] == "team-eng")["members"].append("u-alice")
    changed["users"].append({"ref": "u-frank", "username": "frank", "email": "frank@example.com"})
    write_world(setup.state, changed)

    with pytest.raises(StalePlan) as stale:
        setup.prepare(plan)

    message = str(stale.value)
    assert "action no longer needed: add alice@example.com (u-alice) to team-eng" in message
    assert "new action: disable frank (u-frank)" in message
    assert read_world(setup.state) == changed  # nothing changed


def test_desired_state_changed_is_stale(setup: Setup, tmp_path: Path) -> None:
    plan = setup.plan()
    users = [u for u in make_config(setup.state).inline.users.values() if u.key != "carol@example.com"]
    setup.config = make_config(setup.state, users)

    with pytest.raises(StalePlan, match="desired state changed") as stale:
        setup.prepare(plan)
    assert "action no longer needed: add carol@example.com (u-carol) to team-docs" in str(stale.value)
    assert "new action: disable carol" in str(stale.value)


def test_limits_are_rechecked_at_apply_and_force_lifts_them(setup: Setup) -> None:
    setup.config = make_config(setup.state, policy=Policy(limits={"add_member": Limit(1)}))
    plan = setup.plan()
    with pytest.raises(LimitExceeded, match="add_member: 2 exceeds the limit of 1"):
        setup.prepare(plan)
    assert len(setup.prepare(plan, force=True).run) == 5


# ----------------------------------------------------------------------------- limit and resume


def test_limit_then_resume_applies_each_action_once(setup: Setup) -> None:
    plan = setup.plan()
    first = setup.apply(setup.prepare(plan), limit=1)
    assert [r.action.describe() for r in first.outcomes] == EXPECTED[:1]
    assert len(first.not_run) == 4 and not first.drift

    again = setup.prepare(plan)  # the same plan is not stale: done actions are subtracted
    assert [a.describe() for a in again.run] == EXPECTED[1:]
    second = setup.apply(again, limit=2)
    third = setup.apply(setup.prepare(plan))

    assert [r.action.describe() for r in second.outcomes + third.outcomes] == EXPECTED[1:]
    assert setup.prepare(plan).run == ()
    performed = [(e["kind"], e["ref"], e["group"]) for e in read_world(setup.state)["log"]]
    assert sorted(performed) == sorted((str(a.kind), a.subject.ref, a.group) for a in plan.actions)
    ranks = [ActionKind(kind).rank for kind, _, _ in performed]
    assert ranks == sorted(ranks)


def test_in_flight_action_is_confirmed_or_retried(setup: Setup) -> None:
    """A crash between `started` and the outcome: the re-read tells whether the change happened."""
    plan = setup.plan()
    enable, add_alice, add_carol = plan.actions[:3]
    journal = Journal(setup.tmp, plan.digest)
    journal.started(enable)
    asyncio.run(setup.target.perform(enable))  # happened, outcome never journaled
    journal.started(add_alice)  # did not happen
    journal.started(add_carol)
    journal.finished(add_carol, asyncio.run(setup.target.perform(add_carol)))

    prepared = setup.prepare(plan)
    assert prepared.confirmed == (enable,)
    assert [a.describe() for a in prepared.run] == [EXPECTED[1], *EXPECTED[3:]]

    setup.apply(prepared)
    assert Journal(setup.tmp, plan.digest).read().finished == {a.id for a in plan.actions}
    kinds = [(e["kind"], e["ref"]) for e in read_world(setup.state)["log"]]
    assert len(kinds) == len(set(kinds)) == 5


# ---------------------------------------------------------------------------------- failures


def test_a_failure_holds_back_only_the_same_users_later_memberships_and_is_retried(setup: Setup) -> None:
    broken = world()
    next(g for g in broken["groups"] if g["name"] == "team-eng")["readonly"] = True
    write_world(setup.state, broken)
    plan = setup.plan()
    lines: list[str] = []

    with pytest.raises(ActionsFailed) as failed:
        setup.apply(setup.prepare(plan), lines=lines)

    message = str(failed.value)
    assert "Failed to add alice@example.com (u-alice) to team-eng" in message
    assert "→ add it to target.readonly_groups" in message  # the cause and its remedy
    assert ("remove alice@example.com (u-alice) from team-docs (waits for: add alice@example.com (u-alice) "
            "to team-eng)") in message
    assert failed.value.exit_code == 1
    result = failed.value.result
    assert [a.describe() for a in result.not_run] == [EXPECTED[3]]
    assert "Not started: " + EXPECTED[3] + " (waits for the failed " + EXPECTED[1] + ")" in lines
    after = read_world(setup.state)
    assert status_of(after, "u-erin") == "active"  # an earlier phase
    assert "u-carol" in member_of(after, "team-docs")  # the same phase, another user
    assert "u-alice" in member_of(after, "team-docs")  # alice's move waits: she keeps her access
    assert status_of(after, "u-dave") == "disabled"  # a later phase, another user: not blocked

    fixed = read_world(setup.state)
    next(g for g in fixed["groups"] if g["name"] == "team-eng")["readonly"] = False
    write_world(setup.state, fixed)
    retry = setup.prepare(plan)
    assert [a.describe() for a in retry.run] == [EXPECTED[1], EXPECTED[3]]
    result = setup.apply(retry)
    assert result.count(Result.DONE) == 2 and result.residual is not None and result.residual.empty


def test_a_failed_membership_never_holds_back_taking_access_away(tmp_path: Path) -> None:
    """A desired-disabled user whose membership change fails is still disabled (and a failed
    enable holds back only that user's memberships)."""
    state = write_world(tmp_path / "world.json", {**world(), "groups": [
        *world()["groups"][:2], {"name": "team-eng", "members": ["u-bob"], "readonly": True},
        {"name": "team-ops", "members": []}]})
    users = [
        DesiredUser("alice@example.com", groups=frozenset({"team-eng", "team-docs"})),
        DesiredUser("bob@example.com", status=Status.DISABLED, groups=frozenset()),  # remove fails
        DesiredUser("erin@example.com", groups=frozenset({"team-ops"})),
        DesiredUser("carol@example.com"), DesiredUser("dave@example.com"),
    ]
    s = Setup(tmp_path, make_config(state, users), MemoryTarget(MemorySettings(state=str(state))))
    plan = s.plan()
    gone = {**read_world(state)}
    gone["users"] = [u for u in gone["users"] if u["ref"] != "u-erin"]  # erin's enable will fail
    write_world(state, gone)
    kinds = {a.describe(): a.kind for a in plan.actions}
    assert "disable bob@example.com (u-bob)" in kinds and "add erin@example.com (u-erin) to team-ops" in kinds

    with pytest.raises(ActionsFailed) as failed:
        s.apply(Prepared(plan, make_config(state, users).inline, plan.actions))

    result = failed.value.result
    assert sorted(r.action.describe() for r in result.failures) == [
        "add alice@example.com (u-alice) to team-eng", "enable erin@example.com (u-erin)",
        "remove bob@example.com (u-bob) from team-eng"]
    assert [(h.action.describe(), h.cause.describe()) for h in result.held] == [
        ("add erin@example.com (u-erin) to team-ops", "enable erin@example.com (u-erin)")]
    assert status_of(read_world(state), "u-bob") == "disabled"


# ------------------------------------------------------------------------------------ dry run


def test_dry_run_says_would_and_changes_nothing(setup: Setup) -> None:
    plan = setup.plan()
    before = setup.state.read_text()
    lines: list[str] = []
    context = AuditContext("tester", ApprovalMode.AUTO, plan.digest, plan.target)
    result = asyncio.run(execute(setup.prepare(plan), setup.target, state_dir=setup.tmp,
                                 audit=AuditLog(setup.tmp / "audit.jsonl"), context=context,
                                 dry_run=True, on_line=lines.append))

    assert lines == [f"Would {d}" for d in EXPECTED]
    assert result.dry_run and "nothing was changed" in result.summary()
    assert setup.state.read_text() == before
    assert not (setup.tmp / "journal").exists() and not (setup.tmp / "audit.jsonl").exists()


def test_one_sentence_would_did_failed() -> None:
    plan_action = Action(ActionKind.DISABLE, Subject("dave", "u-dave"))
    assert sentence(plan_action, None) == "Would disable dave (u-dave)"
    assert sentence(plan_action, Outcome(Result.DONE)) == "Did disable dave (u-dave)"
    assert sentence(plan_action, Outcome(Result.FAILED, "boom")) == "Failed to disable dave (u-dave): boom"
