"""What an apply did: one `ActionOutcome` per action, the actions it held back and why, and the failure message.

Failure policy (docs/safety.md, "Execution order, concurrency and failures"): a failed action holds back only
the later membership changes of the same user; everything else still runs in its phase.
Names: an `ActionOutcome` is one action's outcome (the run report, reconcile/report.py, is the report).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_never

from reconcile.plan import Action, ActionKind, Plan
from reconcile.targets.base import Outcome, Result

REMEDY = "re-run plan to see the target's current state, fix the cause, then run the same apply again"


def sentence(action: Action, outcome: Outcome | None) -> str:
    """The one sentence per action: "Would …" before, "Did …" / "Failed to …" after."""
    what = action.describe()
    if outcome is None:
        return f"Would {what}"
    if outcome.result is Result.FAILED:
        return f"Failed to {what}: {outcome.message}"
    if outcome.result is Result.SKIPPED:
        return f"Skipped {what}: {outcome.message}"
    if outcome.result is Result.ALREADY:
        return f"Did {what} (already in effect: {outcome.message})" if outcome.message else f"Did {what}"
    return f"Did {what}"


def holds_back(failed: Action, later: Action) -> bool:
    """Whether `failed` keeps `later` (an action of a later phase) from running in this apply.

    Only the same user's later membership changes wait: after a failed `enable` there is no point
    in them, and after a failed `add_member` the `remove_member` of the same move would leave the user
    without access. Taking access away (`disable`, `delete`) never waits for anything: a departed
    user must not stay enabled because a membership change failed.
    """
    if failed.subject.ref != later.subject.ref or later.kind.rank <= failed.kind.rank:
        return False
    match later.kind:
        case ActionKind.ADD_MEMBER | ActionKind.REMOVE_MEMBER | ActionKind.REMOVE_LICENCE:
            return True
        case ActionKind.ENABLE | ActionKind.DISABLE | ActionKind.DELETE:
            return False
        case _:
            assert_never(later.kind)


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    action: Action
    outcome: Outcome
    seconds: float


@dataclass(frozen=True, slots=True)
class Held:
    """An action not started because an earlier action of the same user failed."""

    action: Action
    cause: Action


@dataclass(frozen=True, slots=True)
class ApplyResult:
    digest: str
    outcomes: tuple[ActionOutcome, ...]
    not_run: tuple[Action, ...]  # left for a later apply: beyond --limit, or held back by a failure
    confirmed: tuple[Action, ...] = ()
    residual: Plan | None = None  # the plan after applying (None when re-reading failed)
    seconds: float = 0.0
    dry_run: bool = False
    held: tuple[Held, ...] = ()  # the part of not_run held back by a failure
    undo: Plan | None = None  # the undo plan of every change this plan's apply made so far (reconcile/undo.py)
    undo_path: str | None = None  # where it was written

    def count(self, result: Result) -> int:
        return sum(1 for r in self.outcomes if r.outcome.result is result)

    @property
    def failures(self) -> tuple[ActionOutcome, ...]:
        return tuple(r for r in self.outcomes if r.outcome.result is Result.FAILED)

    @property
    def drift(self) -> tuple[Action, ...]:
        """Residual actions that should have been done by now (should be none)."""
        if self.residual is None:
            return ()
        expected = {a.id for a in self.not_run} | {r.action.id for r in self.failures}
        return tuple(a for a in self.residual.actions if a.id not in expected)

    def why_not_run(self, action: Action) -> str:
        """Why an action of `not_run` did not run: held back by a failure, or beyond --limit."""
        for held in self.held:
            if held.action.id == action.id:
                return f"not started: waits for the failed {held.cause.describe()}"
        return "not started: beyond --limit"

    def summary(self) -> str:
        if self.dry_run:
            skipped = self.count(Result.SKIPPED)
            also = f" ({skipped} skipped: precondition no longer holds)" if skipped else ""
            return f"Dry run: {len(self.outcomes) - skipped} actions would be applied{also}; nothing was changed."
        parts = [
            f"{self.count(Result.DONE)} done",
            f"{self.count(Result.ALREADY)} already in effect",
            f"{self.count(Result.FAILED)} failed",
        ]
        if self.count(Result.SKIPPED):
            parts.append(f"{self.count(Result.SKIPPED)} skipped (precondition no longer holds)")
        if self.confirmed:
            parts.append(f"{len(self.confirmed)} confirmed done by an interrupted apply")
        if self.not_run:
            parts.append(f"{len(self.not_run)} left for a later apply of this plan")
        return f"Apply of plan {self.digest[:12]}: " + ", ".join(parts) + f" in {self.seconds:.1f}s."


def failure_message(result: ApplyResult) -> str:
    """Each failure with its cause and what to do; then what waits for them."""
    lines = [result.summary(), f"{len(result.failures)} action(s) failed:"]
    for r in result.failures:
        text = sentence(r.action, r.outcome).replace("\n", "\n  ")
        lines.append(f"  {text}" if "→" in text else f"  {text}\n    → {REMEDY}")
    if result.held:
        lines.append(f"{len(result.held)} action(s) of the same users wait for these failures:")
        lines += [f"  {h.action.describe()} (waits for: {h.cause.describe()})" for h in result.held]
    beyond = len(result.not_run) - len(result.held)
    if beyond > 0:
        lines.append(f"{beyond} action(s) not started: beyond --limit")
    return "\n".join(lines)
