"""The contract every target fulfils: fetch the actual state, perform one action.

Targets make no decisions: `diff` decides, the executor orders and approves, a target only reads
and writes. `perform` must be idempotent in outcome: a change that is already in effect is
`Result.ALREADY`, not a failure.
Names: `address()` is the target's type/url/org (the plan's `target`); `describe()` is a sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from reconcile.impact import Impact
from reconcile.model import ActualState, Licence, Scope, User
from reconcile.plan import Action, ActionKind

# progress(what, done, total): total is None while unknown
Progress = Callable[[str, int, int | None], None]


class Result(StrEnum):
    DONE = "done"  # the target changed
    ALREADY = "already"  # the target was already in the desired state (404 on delete, 409 member)
    FAILED = "failed"
    SKIPPED = "skipped"  # not performed: a fact that selected it no longer holds (never from `perform`)


@dataclass(frozen=True, slots=True)
class Outcome:
    result: Result
    message: str = ""
    http_status: int | None = None
    request_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.result is not Result.FAILED


ALL_KINDS: frozenset[ActionKind] = frozenset(ActionKind)


class Target(Protocol):
    """What the core needs of a target."""

    @property
    def supports(self) -> frozenset[ActionKind]:
        """The kinds of action `perform` carries out; a plan with any other kind is refused before
        it is shown or applied (`reconcile.apply.check_supported`)."""
        ...

    def address(self) -> dict[str, str]:
        """`type` plus `url` / `org`, for the plan file (never a secret)."""
        ...

    def concurrency(self, kind: ActionKind) -> int:
        """How many actions of this kind may run at once (Confluence DC deletes: 1)."""
        ...

    async def fetch(self, scope: Scope, progress: Progress | None = None) -> ActualState:
        """Read the actual state: every user, the groups, and the members of the managed groups."""
        ...

    async def impact(self, users: Sequence[User]) -> Mapping[str, Impact]:
        """What deleting each user would destroy, by ref (policy.delete_guard): read only for the delete
        candidates of a plan. A fact the target cannot read is `unknown` with the reason (never raises
        for a missing or refused endpoint: the guard decides what unknown means)."""
        ...

    async def licence(self, scope: Scope, product: str) -> Licence | None:
        """Seats of `product` and the groups granting one (issue 14); read only when a policy needs them.
        None when the target reveals nothing of the kind."""
        ...

    async def perform(self, action: Action) -> Outcome:
        """Carry out one action; never raises for a refused action, returns FAILED instead."""
        ...

    async def aclose(self) -> None: ...
