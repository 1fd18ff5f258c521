"""What a notification says: the event (planned, applied, refused or failed) and its words.

Pure: `build_message` turns an `Event` into a `Message`; emails are masked unless told otherwise and
names are cleaned of control characters (no header injection).
Names: *Event* means what a notification is about (the journal's line kinds are `LineKind`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from reconcile.plan import Plan, target_label
from reconcile.render import clean, mask_email, plan_sentence
from reconcile.settings import NotifySettings, NotifyWhen
from reconcile.targets.base import Result

if TYPE_CHECKING:
    from reconcile.apply import ApplyResult


class Phase(StrEnum):
    PLAN = "plan"
    APPLY = "apply"


When = NotifyWhen  # the name notify.py has always used


@dataclass(frozen=True, slots=True)
class ApplyCounts:
    done: int = 0
    already: int = 0
    failed: int = 0
    not_run: int = 0
    drift: int = 0
    failures: tuple[str, ...] = ()  # one sentence per failed action


@dataclass(frozen=True, slots=True)
class Event:
    """What happened: a plan was computed, a plan was applied (with its counts), or a run stopped.

    A run that stopped (`error` set) was refused for safety (`refused`: limits, empty source, stale
    plan, approval mismatch; nothing changed) or failed with an error; `plan` is there when known.
    """

    phase: Phase
    plan: Plan | None
    applied: ApplyCounts | None = None
    target: Mapping[str, str] = field(default_factory=dict)  # when there is no plan to take it from
    error: str | None = None
    refused: bool = False

    @staticmethod
    def planned(plan: Plan) -> Event:
        return Event(Phase.PLAN, plan)

    @staticmethod
    def from_apply(plan: Plan, result: ApplyResult) -> Event:
        failures = tuple(f"{r.action.describe()}: {r.outcome.message}" for r in result.failures)
        counts = ApplyCounts(
            done=result.count(Result.DONE), already=result.count(Result.ALREADY),
            failed=len(result.failures), not_run=len(result.not_run), drift=len(result.drift),
            failures=failures,
        )
        return Event(Phase.APPLY, plan, counts)

    @staticmethod
    def nothing_to_apply(plan: Plan) -> Event:
        """An apply that found nothing to do (no changes, or every action already done)."""
        return Event(Phase.APPLY, plan, ApplyCounts())

    @staticmethod
    def stopped(phase: Phase, error: str, *, refused: bool, plan: Plan | None = None,
                target: Mapping[str, str] | None = None) -> Event:
        return Event(phase, plan, target=dict(target or {}), error=error, refused=refused)

    @property
    def failed(self) -> bool:
        if self.error is not None:
            return True
        return self.applied is not None and (self.applied.failed > 0 or self.applied.drift > 0)

    @property
    def changed(self) -> bool:
        if self.applied is not None:
            return self.applied.done > 0
        return self.error is None and self.plan is not None and not self.plan.empty


@dataclass(frozen=True, slots=True)
class Message:
    subject: str
    summary: tuple[str, ...]
    actions: tuple[str, ...]
    more: int  # actions not listed
    footer: str
    failed: bool = False

    def text(self) -> str:
        lines = [*self.summary, ""]
        if self.actions:
            lines += ["Actions:", *(f"  {a}" for a in self.actions)]
            if self.more:
                lines.append(f"  ... and {self.more} more")
            lines.append("")
        return "\n".join([*lines, self.footer]) + "\n"


def should_send(settings: NotifySettings, event: Event) -> bool:
    on = settings.on
    return (When.ALWAYS in on or (When.CHANGES in on and event.changed)
            or (When.FAILURE in on and event.failed))


def build_message(event: Event, *, mask_emails: bool = True, max_actions: int = 50) -> Message:
    """The words of a notification; emails masked unless told otherwise, names cleaned of control chars."""

    def fmt(value: str) -> str:
        value = clean(value)
        return mask_email(value) if mask_emails else value

    plan = event.plan
    where = plan.target if plan is not None else event.target
    target = fmt(target_label(where)) if where else "an unknown target"
    summary = [f"Target: {target}"]
    if plan is not None:
        summary.append(plan_sentence(plan))
        warnings: dict[str, int] = {}
        for w in plan.warnings:
            warnings[str(w.kind)] = warnings.get(str(w.kind), 0) + 1
        if warnings:
            summary.append(f"{len(plan.warnings)} warnings: "
                           + ", ".join(f"{n} {k}" for k, n in sorted(warnings.items())))
    if event.error is not None:
        return _stopped(event, target, summary, fmt, max_actions)
    assert plan is not None  # only a stopped run may lack a plan
    digest = plan.digest
    shown = plan.actions[:max_actions]
    applied = event.applied
    if applied is None:
        n = len(plan.actions)
        subject = (f"[reconcile] {n} change{'s' if n != 1 else ''} planned for {target}" if n
                   else f"[reconcile] no changes for {target}")
        footer = (f"Plan {digest}. Apply it with: reconcile apply PLAN_FILE --approve {digest}" if n
                  else f"Plan {digest}.")
        return Message(subject, tuple(summary), tuple(fmt(a.describe()) for a in shown),
                       len(plan.actions) - len(shown), footer)
    state = "FAILED" if event.failed else "applied"
    subject = f"[reconcile] {state}: {applied.done} changed, {applied.failed} failed on {target}"
    summary.insert(1, f"Applied: {applied.done} done, {applied.already} already in effect, "
                      f"{applied.failed} failed, {applied.not_run} left for a later apply, "
                      f"{applied.drift} residual drift.")
    failures = tuple(fmt(f) for f in applied.failures[:max_actions])
    return Message(subject, tuple(summary), failures, len(applied.failures) - len(failures),
                   f"Plan {digest}. A later apply of the same plan retries only what is not done.",
                   failed=event.failed)


def _stopped(event: Event, target: str, summary: list[str], fmt: Callable[[str], str],
             max_actions: int) -> Message:
    """A refused or failed run: the reason (each line cleaned and masked), and the plan's actions if any."""
    assert event.error is not None
    state = "REFUSED" if event.refused else "FAILED"
    reason = [fmt(line) for line in event.error.splitlines() if line.strip()] or ["(no message)"]
    subject = f"[reconcile] {event.phase} {state} for {target}: {reason[0]}"[:200]
    listed = reason[:max(max_actions, 1)]
    more_reason = len(reason) - len(listed)
    summary = [*summary, "Reason:", *(f"  {line}" for line in listed)]
    if more_reason:
        summary.append(f"  ... and {more_reason} more lines")
    actions = event.plan.actions if event.plan is not None else ()
    shown = actions[:max_actions]
    if event.refused:
        footer = "Nothing was changed."
    elif event.phase is Phase.APPLY:
        footer = "A later apply of the same plan resumes where this one stopped."
    else:
        footer = "Nothing was changed."
    return Message(subject, tuple(summary), tuple(fmt(a.describe()) for a in shown), len(actions) - len(shown),
                   footer, failed=True)
