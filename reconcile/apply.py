"""The executor: approval check, stale-plan refusal, precondition check, ordered concurrent apply,
journal, audit, resume.

One switch between "would" and "did": `sentence()` words every action the same way, prefixed
"Would" (dry run), "Did" or "Failed". Failure policy (reconcile/results.py): a failed action holds
back only the same user's later membership changes; every other action still runs in its phase.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from deepdiff import DeepDiff

from reconcile.collector import full_collections_paused
from reconcile.diff import diff
from reconcile.digest import desired_digest
from reconcile.errors import ActionsFailed, ApprovalMismatch, ReconcileError, StalePlan, UsageError
from reconcile.heap import map_large_buffers
from reconcile.journal import ApprovalMode, AuditContext, AuditLog, Journal, JournalView
from reconcile.journal import now as journal_now
from reconcile.model import ActualState, DesiredState
from reconcile.plan import Action, ActionKind, Plan, match_digest, target_label
from reconcile.results import ActionOutcome, ApplyResult, Held, failure_message, holds_back, sentence
from reconcile.settings import Config
from reconcile.targets.base import Outcome, Progress, Result, Target
from reconcile.undo import with_undo

__all__ = [
    "ActionOutcome", "ApplyResult", "Approval", "Prepared", "Skipped", "apply", "check_approval",
    "check_supported", "execute", "make_plan", "prepare", "prepare_fresh", "sentence", "stale_reasons",
]

log = logging.getLogger(__name__)

LineSink = Callable[[str], None]
HEX = frozenset("0123456789abcdef")
MIN_PREFIX = 12
OVERLAP_SWITCH = 0.001  # s: the GIL's switch interval while the desired state is read in a thread


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


def check_supported(plan: Plan, target: Target) -> None:
    """Refuse a plan holding a kind of action the target cannot perform, before it is shown or applied."""
    unsupported = sorted({a.kind for a in plan.actions} - target.supports, key=lambda k: k.rank)
    if unsupported:
        address = target.address()
        name = " ".join(v for v in (address.get("type"), address.get("url")) if v) or "the target"
        counts = plan.counts()
        kinds = ", ".join(f"{k} ({counts[str(k)]} action(s))" for k in unsupported)
        raise ReconcileError(
            f"target {name} cannot perform {kinds}; nothing was changed",
            hint="change the policy that plans them (policy.absent, policy.unsynced) or the desired state",
        )


async def make_plan(
    config: Config, target: Target, *, now: datetime, desired: DesiredState | None = None,
    progress: Progress | None = None,
) -> tuple[DesiredState, Plan]:
    """Read the desired state (unless given), fetch the actual state, and plan as of `now`."""
    desired, plan, _ = await _plan_and_state(config, target, now=now, desired=desired, progress=progress)
    return desired, plan


async def _plan_and_state(
    config: Config, target: Target, *, now: datetime, desired: DesiredState | None = None,
    progress: Progress | None = None,
) -> tuple[DesiredState, Plan, ActualState]:
    desired, actual, digest = await _desired_and_actual(config, target, desired, progress)
    policy = config.policy
    if policy.inactive is not None or policy.licences.groups or policy.licences.warn_at or policy.licences.fail_at:
        # only then: the seat and licence reads are extra requests a plan without these policies never needs
        wanted = policy.inactive.activity if policy.inactive is not None else frozenset()
        product = "confluence" if not wanted or "confluence" in wanted else min(wanted)
        actual = replace(actual, licence=await target.licence(config.scope, product))
    impacts = None
    if policy.delete_guard is not None:
        # Plan once without the guard to learn the delete candidates, read their footprint only, then
        # plan with it: the planner stays pure, and nobody else's spaces or content are read.
        unguarded = diff(desired, actual, scope=config.scope, policy=replace(policy, delete_guard=None),
                         target=target.address(), now=now)
        candidates = [actual.users[a.subject.ref] for a in unguarded.actions if a.kind is ActionKind.DELETE]
        impacts = await target.impact(candidates) if candidates else {}
    plan = diff(desired, actual, scope=config.scope, policy=policy, target=target.address(), now=now,
                impacts=impacts, known_desired_digest=digest)
    check_supported(plan, target)
    return desired, replace(plan, created_at=journal_now()), actual


async def _desired_and_actual(
    config: Config, target: Target, desired: DesiredState | None, progress: Progress | None,
) -> tuple[DesiredState, ActualState, str | None]:
    """The desired state (unless given) read, and its digest computed, while the actual state is fetched:
    the read is CPU, the fetch mostly waits. The read runs in its own thread and event loop, so its CPU
    never stalls the fetch's requests. Errors are raised as when it was read first: a desired-state error
    wins (the fetch is cancelled), and a fetch error is raised only once the desired state is known good."""
    map_large_buffers()  # thousands of page bodies: returned to the system when freed, not kept as heap
    if desired is not None:
        return desired, await target.fetch(config.scope, progress), None
    from reconcile import aio
    from reconcile.desired import gather_desired

    def read() -> tuple[DesiredState, str]:
        wanted = aio.run(gather_desired(config))
        return wanted, desired_digest(wanted, config.scope, config.policy)

    # No full collection while both run: one started by the read's thread (it builds ~a million objects)
    # stops the fetch's event loop with it, 0.04-0.23 s a pass, six passes in a 100,000-user plan's first
    # 2 s (docs/performance.md, "Cloud plan: where a page's time goes"). Young collections still run.
    # And the GIL changes hands every 1 ms, not 5: each response the loop thread takes in waited for it.
    with full_collections_paused():
        fetching = asyncio.ensure_future(target.fetch(config.scope, progress))
        switch = sys.getswitchinterval()
        sys.setswitchinterval(OVERLAP_SWITCH)
        try:
            wanted, digest = await asyncio.to_thread(read)
        except BaseException:
            fetching.cancel()
            await asyncio.gather(fetching, return_exceptions=True)  # no request left running behind the error
            raise
        finally:
            sys.setswitchinterval(switch)  # the read's thread is done: the loop thread runs alone again
        return wanted, await fetching, digest


@dataclass(frozen=True, slots=True)
class Prepared:
    """An approved-to-be plan checked against a fresh reading: what is left to do."""

    plan: Plan
    desired: DesiredState
    run: tuple[Action, ...]  # still to perform, in plan order
    confirmed: tuple[Action, ...] = ()  # in flight or failed before, now found done by re-reading
    restart: bool = False  # a new apply of the plan: earlier journal lines no longer count
    skipped: tuple[Skipped, ...] = ()  # their precondition no longer holds: reported, never performed


@dataclass(frozen=True, slots=True)
class Skipped:
    """An action whose selecting fact no longer holds on the fresh reading (reconcile/precondition.py)."""

    action: Action
    why: str


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
    """Re-read desired and actual state, refuse a stale plan (StalePlan), re-check the limits.

    A plan whose journal is complete (every action finished: the apply closed it, or died just
    before closing) and whose every action is pending again is the same change recurring
    (drift again, a revert reverted): it starts afresh instead of being refused as stale.
    """
    check_supported(plan, target)
    plan.check_limits(config.policy.limits, force=force, licences=config.policy.licences)
    if plan.evaluated_at is None:
        raise ReconcileError("the plan does not record when it was evaluated; nothing was changed",
                             hint="run `reconcile plan --out FILE` again, review it and approve the new digest")
    # Re-planned as of the plan's own time, not the wall clock: only changed facts make it stale.
    desired, fresh, actual = await _plan_and_state(config, target, now=plan.evaluated_at, progress=progress)
    view = Journal(state_dir, plan.digest).read()
    restart = view.complete(plan) and not stale_reasons(plan, fresh, JournalView.empty())
    if restart:
        view = JournalView.empty()
    skipped = tuple(
        Skipped(a, why) for a in plan.actions
        if a.id not in view.finished and (why := a.precondition.broken(actual.users.get(a.subject.ref)))
    )
    if skipped:  # a skipped action is reported, not planned again: the rest of the plan is compared
        gone = {s.action.id for s in skipped}
        plan_left = replace(plan, actions=tuple(a for a in plan.actions if a.id not in gone))
    else:
        plan_left = plan
    reasons = stale_reasons(plan_left, fresh, view)
    if reasons:
        raise StalePlan(
            "refused: the plan is stale, nothing was changed:\n" + "\n".join(f"  {r}" for r in reasons),
            hint="run `reconcile plan` again, review it, and approve the new digest",
        )
    needed = {a.id for a in fresh.actions}
    run = tuple(a for a in plan_left.actions if a.id in needed)
    uncertain = view.in_flight | set(view.failed)
    confirmed = tuple(a for a in plan_left.actions if a.id in uncertain and a.id not in needed)
    return Prepared(plan=plan, desired=desired, run=run, confirmed=confirmed, restart=restart, skipped=skipped)


def prepare_fresh(plan: Plan, desired: DesiredState) -> Prepared:
    """A plan computed just now (`apply` without a plan file): every action is still to do."""
    return Prepared(plan=plan, desired=desired, run=plan.actions, restart=True)


async def execute(
    prepared: Prepared, target: Target, *, state_dir: Path, audit: AuditLog, context: AuditContext,
    limit: int | None = None, dry_run: bool = False, on_line: LineSink | None = None,
) -> ApplyResult:
    """Perform the prepared actions in SPEC §5 order; journal and audit each; never raises for a failure."""
    say = on_line or (lambda line: None)
    started = time.monotonic()
    todo = prepared.run if limit is None else prepared.run[: max(0, limit)]
    skips = tuple(ActionOutcome(s.action, Outcome(Result.SKIPPED, s.why), 0.0) for s in prepared.skipped)
    if dry_run:
        for r in skips:
            say(sentence(r.action, r.outcome))
        for action in todo:
            say(sentence(action, None))
        return ApplyResult(prepared.plan.digest, skips + tuple(ActionOutcome(a, Outcome(Result.DONE), 0.0)
                                                               for a in todo), prepared.run[len(todo):],
                           dry_run=True)
    journal = Journal(state_dir, prepared.plan.digest)
    if prepared.restart:
        journal.begin()
    for r in skips:  # journaled as finished: a later apply of the plan does not reconsider them
        journal.finished(r.action, r.outcome)
        audit.record(context, r.action, r.outcome)
        say(sentence(r.action, r.outcome))
    for action in prepared.confirmed:
        outcome = Outcome(Result.ALREADY, "confirmed by re-reading the target after an interrupted apply")
        journal.finished(action, outcome)
        audit.record(context, action, outcome)
        say(sentence(action, outcome))

    def record(action: Action, outcome: Outcome) -> None:
        journal.finished(action, outcome)
        audit.record(context, action, outcome)

    async def one(action: Action, gate: asyncio.Semaphore) -> ActionOutcome:
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
            return ActionOutcome(action, outcome, time.monotonic() - t0)

    outcomes: list[ActionOutcome] = list(skips)
    held: list[Held] = []
    failed: dict[str, list[Action]] = {}  # user ref -> its failed actions so far
    for kind in ActionKind:
        batch: list[Action] = []
        for action in (a for a in todo if a.kind is kind):
            cause = next((f for f in failed.get(action.subject.ref, ()) if holds_back(f, action)), None)
            if cause is None:
                batch.append(action)
            else:
                held.append(Held(action, cause))
                say(f"Not started: {action.describe()} (waits for the failed {cause.describe()})")
        if not batch:
            continue
        gate = asyncio.Semaphore(max(1, target.concurrency(kind)))
        done = await asyncio.gather(*(one(a, gate) for a in batch))
        outcomes.extend(done)
        for r in done:
            if r.outcome.result is Result.FAILED:
                failed.setdefault(r.action.subject.ref, []).append(r.action)
    if journal.read().complete(prepared.plan):
        journal.close()  # a later apply of the same digest is the change recurring: it starts afresh
    ran = {r.action.id for r in outcomes}
    return ApplyResult(
        digest=prepared.plan.digest,
        outcomes=tuple(outcomes),
        not_run=tuple(a for a in prepared.run if a.id not in ran),
        confirmed=prepared.confirmed,
        seconds=time.monotonic() - started,
        held=tuple(held),
    )


async def apply(
    prepared: Prepared, config: Config, target: Target, *, state_dir: Path, audit: AuditLog,
    context: AuditContext, limit: int | None = None, on_line: LineSink | None = None,
) -> ApplyResult:
    """Execute, then re-read and re-plan to report residual drift; ActionsFailed if any action failed."""
    result = await execute(prepared, target, state_dir=state_dir, audit=audit, context=context,
                           limit=limit, on_line=on_line)
    residual: Plan | None = None
    when = prepared.plan.evaluated_at  # the plan's own time, so its decisions are the ones compared
    try:
        # An undo plan is not derived from the desired state: comparing with it would show the plan undone
        if when is not None and not prepared.plan.undoes:
            _, residual = await make_plan(config, target, now=when, desired=prepared.desired)
    except ReconcileError as exc:
        log.warning("could not re-read the target to check for residual drift: %s", exc)
    result = replace(result, residual=residual)
    result = with_undo(result, prepared, state_dir)
    if result.failures:
        raise ActionsFailed(failure_message(result), result=result)
    return result
