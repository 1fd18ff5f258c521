"""The inactivity, licence, delete-guard and exemption rules of `policy:` and `exemptions:` (issue 14).

Frozen values only; what they select is the planner's business. Absent sections mean "off".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from fractions import Fraction


class InactiveAction(StrEnum):
    """`policy.inactive.action`: what happens to an inactive user (never `delete`)."""

    REMOVE_LICENCE = "remove_licence"  # removal from `policy.licences.groups` only
    DISABLE = "disable"


class AppliesTo(StrEnum):
    """`policy.inactive.applies_to`: which in-scope users the inactivity rule looks at."""

    ALL = "all"
    ABSENT = "absent"  # only users missing from the desired state
    DESIRED = "desired"  # only users the desired state names


class UnknownActivity(StrEnum):
    """`policy.inactive.unknown`: a user whose activity the target does not reveal."""

    WARN = "warn"  # one plan warning, no action
    SKIP = "skip"  # no action, no warning


ANY_PRODUCT = "any"


@dataclass(frozen=True, slots=True)
class InactivePolicy:
    """`policy.inactive`: select users whose last activity is older than `now - after`."""

    action: InactiveAction
    after: timedelta | None = None  # None: only `never_active_after` selects
    never_active_after: timedelta | None = None  # never active, and known to the org for longer than this
    # Product keys whose activity counts; empty: any product (Confluence DC reports its last login only).
    activity: frozenset[str] = frozenset()
    applies_to: AppliesTo = AppliesTo.ALL
    warn_before: timedelta | None = None  # list users crossing within this window as `upcoming`
    unknown: UnknownActivity = UnknownActivity.WARN


@dataclass(frozen=True, slots=True)
class SeatThreshold:
    """`warn_at` / `fail_at`: a number of seats, or a percentage of the licence's maximum."""

    seats: int | None = None
    percent: Fraction | None = None

    def of(self, maximum: int | None) -> Fraction | None:
        """The threshold in seats; None when it is a percentage and the maximum is not known."""
        if self.seats is not None:
            return Fraction(self.seats)
        if maximum is None or self.percent is None:
            return None
        return self.percent * maximum / 100

    def __str__(self) -> str:
        return f"{self.seats}" if self.seats is not None else f"{float(self.percent or 0):g}%"


@dataclass(frozen=True, slots=True)
class LicencePolicy:
    """`policy.licences`: the licence-granting groups the policy may remove; seat thresholds after the plan."""

    groups: tuple[str, ...] = ()  # exact, normalised group names
    warn_at: SeatThreshold | None = None
    fail_at: SeatThreshold | None = None  # exceeding it refuses the plan (exit 4; --force passes)


class GuardCondition(StrEnum):
    """`policy.delete_guard.when`: a fact about a user that turns a planned delete into a disable."""

    PERSONAL_SPACE = "personal_space"
    SOLE_SPACE_ADMIN = "sole_space_admin"  # the only direct `administer` grantee of a space
    CONTENT_CREATED = "content_created"  # created more than `content_over` pages and blog posts


class GuardUnknown(StrEnum):
    """`policy.delete_guard.unknown`: facts that could not be read (endpoint missing or refused)."""

    BLOCK = "block"  # counts as a match: the delete becomes a disable
    ALLOW = "allow"


@dataclass(frozen=True, slots=True)
class DeleteGuard:
    """`policy.delete_guard`: before any delete, read the user's footprint and disable instead."""

    when: frozenset[GuardCondition] = frozenset(GuardCondition)
    content_over: int = 0
    unknown: GuardUnknown = GuardUnknown.BLOCK
    downgrade_to: str = "disable"  # the one downgrade: reversible, and it frees the seat


class ExemptFrom(StrEnum):
    """`exemptions[].from`: the rules an exemption lifts (never `absent`, never above `protect`)."""

    INACTIVE = "inactive"
    LICENCES = "licences"


@dataclass(frozen=True, slots=True)
class ExemptionRules:
    """`policy.exemptions`: how far ahead an exemption may run, and when its expiry is announced."""

    max_ahead: timedelta = timedelta(days=365)
    warn_within: timedelta = timedelta(days=14)


@dataclass(frozen=True, slots=True)
class Exemption:
    """One `exemptions:` entry: `user` is exempt from `covers` through the end of `until` (UTC)."""

    user: str  # as written: email, username or account id
    reason: str
    owner: str
    until: date
    covers: frozenset[ExemptFrom] = frozenset(ExemptFrom)
