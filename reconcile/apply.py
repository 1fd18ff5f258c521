"""The executor: approval check, stale-plan refusal, ordered concurrent apply, journal, audit, resume.

One switch between "would" and "did": `sentence()` words every action the same way, prefixed
"Would" (dry run), "Did" or "Failed". Failure policy: a failed action does not stop the other
actions of its phase (kind), but later phases are not started; a later apply retries what is not done.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from deepdiff import DeepDiff

from reconcile.diff import diff
from reconcile.errors import ApplyFailed, ApprovalMismatch, ReconcileError, StalePlan, UsageError
from reconcile.journal import ApprovalMode, AuditContext, AuditLog, Journal, JournalView, now
from reconcile.model import DesiredState
from reconcile.plan import Action, ActionKind, Plan, match_digest, target_label
from reconcile.settings import Config
from reconcile.targets.base import Outcome, Progress, Result, Target

log = logging.getLogger(__name__)

Report = Callable[[str], None]
HEX = frozenset("0123456789abcdef")
MIN_PREFIX = 12


@dataclass(frozen=True, slots=True)
class Approval:
    """How the operator approved: typed `yes` for a digest, `--approve DIGEST`, or `--auto-approve`."""

    mode: ApprovalMode
    digest: str = ""  # the digest (or prefix) approved; empty for AUTO

    @staticmethod
    def interactive(plan_digest: str) -> Approval:
        return Approval(ApprovalMode.INTERACTIVE, plan_digest)

    @staticmethod
    def given(digest: str) -> Approval:
        """`--approve DIGEST`: the whole digest or a prefix of at least 12 hex characters."""
        text = digest.strip().lower()
        if len(text) < MIN_PREFIX or len(text) > 64 or not set(text) <= HEX:
            raise UsageError(
                f"--approve {digest!r} is not a plan digest: give the whole hex sha256 (upper or "
                f"lower case) or a prefix of at least {MIN_PREFIX} hex characters",
                hint="`reconcile show PLAN_FILE` prints the digest",
            )
        return Approval(ApprovalMode.DIGEST, text)

    @staticmethod
    def auto() -> Approval:
        return Approval(ApprovalMode.AUTO)


def check_approval(plan: Plan, approval: Approval) -> None:
    """Raise ApprovalMismatch (exit 4) unless `approval` approves exactly this plan."""
    if approval.mode is ApprovalMode.AUTO or match_digest(plan.digest, approval.digest):
        return
    raise ApprovalMismatch(
        f"refused: the approved digest {approval.digest} does not match the plan's digest {plan.digest}; "
        "nothing was changed",
        hint="the plan is not the one that was approved: review it (`reconcile show`) and approve its digest",
    )


def sentence(action: Action, outcome: Outcome | None) -> str:
    """The one sentence per action: "Would …" before, "Did …" / "Failed to …" after."""
    what = action.describe()
    if outcome is None:
        return f"Would {what}"
    if outcome.result is Result.FAILED:
        return f"Failed to {what}: {outcome.message}"
    if outcome.result is Result.ALREADY:
        return f"Did {what} (already in effect: {outcome.message})" if outcome.message else f"Did {what}"
    return f"Did {what}"


async def make_plan(
    config: Config, target: Target, *, desired: DesiredState | None = None, progress: Progress | None = None
) -> tuple[DesiredState, Plan]:
    """Read the desired state (unless given), fetch the actual state, and plan."""
    if desired is None:
        from reconcile.desired import read_desired

        wanted: DesiredState = await asyncio.to_thread(read_desired, config)
        desired = wanted
    actual = await target.fetch(config.scope, progress)
    plan = diff(desired, actual, scope=config.scope, policy=config.policy, target=target.describe())
    return desired, replace(plan, created_at=now())


@dataclass(frozen=True, slots=True)
class Prepared:
    """An approved-to-be plan checked against a fresh reading: what is left to do."""

    plan: Plan
    desired: DesiredState
    run: tuple[Action, ...]  # still to perform, in plan order
    confirmed: tuple[Action, ...] = ()  # in flight or failed before, now found done by re-reading


def stale_reasons(plan: Plan, fresh: Plan, view: JournalView) -> list[str]:
    """Why `plan` is stale given a fresh plan and the journal; empty when it is still good.

    Fresh must be exactly the plan's actions minus those the journal records as finished; an
    action whose outcome is uncertain (in flight when an apply died, or failed) may be either.
    """
    reasons: list[str] = []
    if dict(plan.target) != dict(fresh.target):
        reasons.append(f"the target changed: the plan is for {target_label(plan.target)}, the configuration "
                       f"names {target_label(fresh.target)}")
    if plan.desired_digest != fresh.desired_digest:
        reasons.append(f"desired state changed since planning (desired digest {plan.desired_digest[:12]} "
                       f"-> {fresh.desired_digest[:12]})")
    planned = {a.id: a for a in plan.actions}
    now_needed = {a.id: a for a in fresh.actions}
    uncertain = view.in_flight | set(view.failed)
    for aid, action in planned.items():
        if aid not in view.finished and aid not in uncertain and aid not in now_needed:
            reasons.append(f"action no longer needed: {action.describe()}")
    for aid, action in now_needed.items():
        if aid not in planned:
            reasons.append(f"new action: {action.describe()}")
        elif aid in view.finished:
            reasons.append(f"new action: {action.describe()} (the journal records it as done: "
                           "changed again behind the plan?)")
        else:
            changes = DeepDiff(planned[aid].to_json(), action.to_json(), verbose_level=2)
            if changes:
                reasons.append(f"action changed: {action.describe()}: {changes.pretty()}")
    return reasons


async def prepare(
    plan: Plan, config: Config, target: Target, *, state_dir: Path, force: bool = False,
    progress: Progress | None = None,
) -> Prepared:
    """Re-read desired and actual state, refuse a stale plan (StalePlan), re-check the limits."""
    plan.check_limits(config.policy.limits, force=force)
    desired, fresh = await make_plan(config, target, progress=progress)
    view = Journal(state_dir, plan.digest).read()
    reasons = stale_reasons(plan, fresh, view)
    if reasons:
        raise StalePlan(
            "refused: the plan is stale, nothing was changed:\n" + "\n".join(f"  {r}" for r in reasons),
            hint="run `reconcile plan` again, review it, and approve the new digest",
        )
    needed = {a.id for a in fresh.actions}
    run = tuple(a for a in plan.actions if a.id in needed)
    uncertain = view.in_flight | set(view.failed)
    confirmed = tuple(a for a in plan.actions if a.id in uncertain and a.id not in needed)
    return Prepared(plan=plan, desired=desired, run=run, confirmed=confirmed)


def prepare_fresh(plan: Plan, desired: DesiredState) -> Prepared:
    """A plan computed just now (`apply` without a plan file): every action is still to do."""
    return Prepared(plan=plan, desired=desired, run=plan.actions)


@dataclass(frozen=True, slots=True)
class ActionReport:
    action: Action
    outcome: Outcome
    seconds: float


@dataclass(frozen=True, slots=True)
class ApplyResult:
    digest: str
    reports: tuple[ActionReport, ...]
    not_run: tuple[Action, ...]  # left for a later apply: beyond --limit, or phases after a failure
    confirmed: tuple[Action, ...] = ()
    residual: Plan | None = None  # the plan after applying (None when re-reading failed)
    seconds: float = 0.0
    dry_run: bool = False

    def count(self, result: Result) -> int:
        return sum(1 for r in self.reports if r.outcome.result is result)

    @property
    def failures(self) -> tuple[ActionReport, ...]:
        return tuple(r for r in self.reports if r.outcome.result is Result.FAILED)

    @property
    def drift(self) -> tuple[Action, ...]:
        """Residual actions that should have been done by now (should be none)."""
        if self.residual is None:
            return ()
        expected = {a.id for a in self.not_run} | {r.action.id for r in self.failures}
        return tuple(a for a in self.residual.actions if a.id not in expected)

    def summary(self) -> str:
        if self.dry_run:
            return f"Dry run: {len(self.reports)} actions would be applied; nothing was changed."
        parts = [
            f"{self.count(Result.DONE)} done",
            f"{self.count(Result.ALREADY)} already in effect",
            f"{self.count(Result.FAILED)} failed",
        ]
        if self.confirmed:
            parts.append(f"{len(self.confirmed)} confirmed done by an interrupted apply")
        if self.not_run:
            parts.append(f"{len(self.not_run)} left for a later apply of this plan")
        return f"Apply of plan {self.digest[:12]}: " + ", ".join(parts) + f" in {self.seconds:.1f}s."


async def execute(
    prepared: Prepared, target: Target, *, state_dir: Path, audit: AuditLog, context: AuditContext,
    limit: int | None = None, dry_run: bool = False, report: Report | None = None,
) -> ApplyResult:
    """Perform the prepared actions in SPEC §5 order; journal and audit each; never raises for a failure."""
    say = report or (lambda line: None)
    started = time.monotonic()
    todo = prepared.run if limit is None else prepared.run[: max(0, limit)]
    if dry_run:
        for action in todo:
            say(sentence(action, None))
        return ApplyResult(prepared.plan.digest, tuple(ActionReport(a, Outcome(Result.DONE), 0.0)
                                                      for a in todo), prepared.run[len(todo):],
                           dry_run=True)
    journal = Journal(state_dir, prepared.plan.digest)
    for action in prepared.confirmed:
        outcome = Outcome(Result.ALREADY, "confirmed by re-reading the target after an interrupted apply")
        journal.finished(action, outcome)
        audit.record(context, action, outcome)
        say(sentence(action, outcome))

    def record(action: Action, outcome: Outcome) -> None:
        journal.finished(action, outcome)
        audit.record(context, action, outcome)

    async def one(action: Action, gate: asyncio.Semaphore) -> ActionReport:
        async with gate:
            # fsync'd in a worker thread: durable before the request, without stalling other requests
            await asyncio.to_thread(journal.started, action)
            t0 = time.monotonic()
            try:
                outcome = await target.perform(action)
            except ReconcileError as exc:
                outcome = Outcome(Result.FAILED, str(exc), http_status=getattr(exc, "status", None))
            except Exception as exc:  # a transport or target bug must not leave the action "in flight"
                log.exception("unexpected error performing %s", action.describe())
                outcome = Outcome(Result.FAILED, f"{type(exc).__name__}: {exc}")
            await asyncio.to_thread(record, action, outcome)
            say(sentence(action, outcome))
            return ActionReport(action, outcome, time.monotonic() - t0)

    reports: list[ActionReport] = []
    for kind in ActionKind:
        batch = [a for a in todo if a.kind is kind]
        if not batch:
            continue
        if any(r.outcome.result is Result.FAILED for r in reports):
            log.warning("not starting %d %s actions: an earlier phase failed", len(batch), kind)
            break
        gate = asyncio.Semaphore(max(1, target.concurrency(kind)))
        reports.extend(await asyncio.gather(*(one(a, gate) for a in batch)))
    ran = {r.action.id for r in reports}
    return ApplyResult(
        digest=prepared.plan.digest,
        reports=tuple(reports),
        not_run=tuple(a for a in prepared.run if a.id not in ran),
        confirmed=prepared.confirmed,
        seconds=time.monotonic() - started,
    )


async def apply(
    prepared: Prepared, config: Config, target: Target, *, state_dir: Path, audit: AuditLog,
    context: AuditContext, limit: int | None = None, report: Report | None = None,
) -> ApplyResult:
    """Execute, then re-read and re-plan to report residual drift; ApplyFailed if any action failed."""
    result = await execute(prepared, target, state_dir=state_dir, audit=audit, context=context,
                           limit=limit, report=report)
    try:
        _, residual = await make_plan(config, target, desired=prepared.desired)
    except ReconcileError as exc:
        log.warning("could not re-read the target to check for residual drift: %s", exc)
        residual = None
    result = replace(result, residual=residual)
    if result.failures:
        raise ActionsFailed(result)
    return result


class ActionsFailed(ApplyFailed):
    """ApplyFailed carrying the apply's result (for the run report and notifications)."""

    def __init__(self, result: ApplyResult) -> None:
        super().__init__(failure_message(result), hint="fix the cause, then run the same apply again: "
                         "it retries only what is not done")
        self.result = result


def failure_message(result: ApplyResult) -> str:
    lines = [result.summary(), f"{len(result.failures)} action(s) failed:"]
    lines += [f"  {sentence(r.action, r.outcome)}" for r in result.failures]
    if result.not_run:
        lines.append(f"{len(result.not_run)} action(s) not started (later phases wait for failures "
                     "to be resolved, or beyond --limit)")
    return "\n".join(lines)

