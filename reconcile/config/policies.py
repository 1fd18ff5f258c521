"""The format of `policy.inactive`, `policy.licences`, `policy.delete_guard`, `policy.exemptions` and the
top-level `exemptions:` list: durations, dates, product keys, and the words that are refused on purpose.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from fractions import Fraction
from typing import Any

from reconcile.config.into import Into, check_into
from reconcile.config.nodes import At, Context, ListOf, Node, kind_of
from reconcile.config.records import Record
from reconcile.config.scalars import Choice, Integer, LimitValue, Text
from reconcile.model import Limit
from reconcile.policies import (
    ANY_PRODUCT,
    AppliesTo,
    DeleteGuard,
    ExemptFrom,
    Exemption,
    ExemptionRules,
    GuardCondition,
    GuardUnknown,
    InactiveAction,
    InactivePolicy,
    LicencePolicy,
    SeatThreshold,
    UnknownActivity,
)

# The product keys of the Organizations API: `UserProductLastActive.key` (v1, an enum) and the v2
# `productAccess[].key` examples (`jira`, `confluence`). A closed list on purpose: a misspelt product
# would match no activity at all and make every user look inactive.
PRODUCTS = ("confluence", "jira", "jira-software", "jira-service-desk", "jira-core", "jira-ops", "bitbucket",
            "trello", "opsgenie", "statuspage", "stride", "hipchat")
DURATION_PATTERN = r"^[1-9][0-9]{0,4}[dw]$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_DURATION = re.compile(DURATION_PATTERN)
_DATE = re.compile(DATE_PATTERN)
DURATION_HELP = "write whole days or weeks, e.g. 90d or 12w"


class Duration(Node):
    """`90d` or `12w`: whole days (cutoffs are whole days at 00:00 UTC, so hours would mean nothing)."""

    def check(self, value: Any, at: At, ctx: Context) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return ctx.problem(at.loc, f"{at.path}: {value} has no unit; add a unit, e.g. {max(value, 1)}d")
        if not isinstance(value, str):
            return ctx.problem(at.loc, f"{at.path}: expected a duration such as 90d, got {kind_of(value)}")
        text = value.strip()
        if re.fullmatch(r"0+[dw]", text):
            return ctx.problem(at.loc, f"{at.path}: must be at least 1d, got '{text}'")
        if not _DURATION.search(text):
            return ctx.problem(at.loc, f"{at.path}: '{value}' is not a duration; {DURATION_HELP}")
        days = int(text[:-1]) * (7 if text.endswith("w") else 1)
        return timedelta(days=days)

    def own_schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": DURATION_PATTERN}


class Day(Node):
    """A calendar date, `YYYY-MM-DD` (YAML 1.2 reads it as a string)."""

    def check(self, value: Any, at: At, ctx: Context) -> Any:
        text = value.strip() if isinstance(value, str) else None
        if text is not None and _DATE.search(text):
            try:
                return date.fromisoformat(text)
            except ValueError:
                pass
        shown = f"'{value}'" if isinstance(value, str | int | float) else kind_of(value)
        return ctx.problem(at.loc, f"{at.path}: {shown} is not a date; write YYYY-MM-DD, e.g. 2027-03-01")

    def own_schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "date", "pattern": DATE_PATTERN}


class Refusing(Choice):
    """A Choice where some words are common and wrong: each gets its own reason instead of 'unknown'."""

    def __init__(self, values: Sequence[str], refused: Mapping[str, str], doc: str = "",
                 default: Any = None) -> None:
        super().__init__(values, doc, default)
        self.refused = dict(refused)

    def check(self, value: Any, at: At, ctx: Context) -> Any:
        if isinstance(value, str) and value in self.refused:
            return ctx.problem(at.loc, f"{at.path}: {self.refused[value]}")
        return super().check(value, at, ctx)


class Products(ListOf):
    """`any`, or a list of product keys whose activity counts (built as a set: empty means any)."""

    def __init__(self, doc: str) -> None:
        super().__init__(Choice(PRODUCTS), doc=doc, default=ANY_PRODUCT, min_items=1)

    def check(self, value: Any, at: At, ctx: Context) -> Any:
        if value == ANY_PRODUCT:
            return []
        if isinstance(value, str):
            return ctx.problem(at.loc, f"{at.path}: write `any` or a list of product keys, e.g. [confluence]")
        return super().check(value, at, ctx)

    def own_schema(self) -> dict[str, Any]:
        return {"anyOf": [{"const": ANY_PRODUCT}, super().own_schema()]}


def _seats(limit: Limit) -> SeatThreshold:
    if limit.percent:
        return SeatThreshold(percent=Fraction(repr(limit.value)))
    return SeatThreshold(seats=int(limit.value))


def _groups(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n.strip().lower() for n in names))


INACTIVE = Record(
    {
        "after": Duration(doc="inactive when the last activity is older than now minus this, e.g. 90d"),
        "never_active_after": Duration(doc="never active, and in the organization for longer than this "
                                       "(Cloud addedToOrg; unknown age: a warning)"),
        "activity": Products("Cloud product keys whose activity counts, or `any`; Confluence Data Center "
                             "reports the last login only (leave it out, or `any`)"),
        "action": Refusing([str(a) for a in InactiveAction], {
            "delete": "never delete for inactivity; use remove_licence (frees the seat, keeps the account) "
                      "or disable (policy.absent and policy.delete_guard decide deletes)"},
            doc="remove_licence: removal from policy.licences.groups only; disable: the account"),
        "applies_to": Choice([str(a) for a in AppliesTo], doc="all in-scope users, only those absent from "
                             "the desired state, or only those it names", default="all"),
        "warn_before": Duration(doc="list users crossing within this window as `upcoming` (no action)"),
        "unknown": Choice([str(u) for u in UnknownActivity], doc="a user without activity data: one "
                          "warning, or skipped silently", default="warn"),
    },
    required=["action"],
    choices=[["after"], ["never_active_after"], ["after", "never_active_after"]],
    choices_message="give after (e.g. 90d), never_active_after, or both",
    hints={"action": "say what happens to inactive users: action: remove_licence (frees the seat) or "
                     "action: disable"},
    doc="users who could log in but do not (issue 14); absent: no inactivity rule",
    into=Into(InactivePolicy),
)

LICENCES = Record(
    {
        "groups": ListOf(Text(r"^\S(?:.*\S)?$", "'{value}' is not a group name (no leading or trailing "
                              "spaces)"),
                         doc="exact names of the licence-granting groups the policy may remove (each in "
                         "scope.groups); no globs: a later group must not start losing members unreviewed"),
        "warn_at": LimitValue(doc="seats used after the plan at which it warns: a count or a percentage "
                              "of the licence's maximum"),
        "fail_at": LimitValue(doc="seats used after the plan above which it is refused (exit 4; --force "
                              "passes); at least warn_at"),
    },
    doc="licence seats: which groups grant one, thresholds on the seats after the plan",
    into=Into(LicencePolicy, convert={"groups": _groups, "warn_at": _seats, "fail_at": _seats}),
)

DELETE_GUARD = Record(
    {
        "when": ListOf(Choice([str(c) for c in GuardCondition]), min_items=1,
                       doc="facts that turn a planned delete into a disable (default: all three)",
                       default=[str(c) for c in GuardCondition]),
        "content_over": Integer(minimum=0, doc="content_created matches above this many pages and blog "
                                "posts", default=0),
        "unknown": Choice([str(u) for u in GuardUnknown], doc="facts that cannot be read: block (count as "
                          "a match) or allow", default="block"),
        "downgrade_to": Choice(["disable"], doc="what a guarded delete becomes", default="disable"),
    },
    doc="before any delete, read the user's spaces and content; absent: deletes are not checked",
    into=Into(DeleteGuard),
)

EXEMPTION_RULES = Record(
    {
        "max_ahead": Duration(doc="how far after now an exemption's `until` may be", default="365d"),
        "warn_within": Duration(doc="exemptions ending within this are listed as expiring", default="14d"),
    },
    doc="limits on the top-level exemptions:",
    into=Into(ExemptionRules),
)

EXEMPTION = Record(
    {
        "user": Text(r"^\S(?:.*\S)?$", "'{value}' is not a user key (no leading or trailing spaces)",
                     doc="email, username or account id"),
        "reason": Text(doc="why, in words a reviewer understands"),
        "owner": Text(r"^\S(?:.*\S)?$", "'{value}' is not an owner (an email or username)",
                      doc="who answers for it (named in the warning when it expires)"),
        "until": Day(doc="last day it holds (through 23:59:59 UTC); at most policy.exemptions.max_ahead "
                     "after now"),
        "from": ListOf(Refusing([str(f) for f in ExemptFrom], {
            "absent": "an exemption never covers absent: leaving the source still offboards; remove the user "
                      "from the desired state's sources only when they should go",
            "protect": "protect is not a rule to be exempted from: protected principals are never touched "
                       "(scope.protect)"}),
            min_items=1, doc="rules it lifts (default: inactive and licences)",
            default=[str(f) for f in ExemptFrom]),
    },
    required=["user", "reason", "owner", "until"],
    hints={"owner": "name who answers for it, e.g. owner: bob@example.com",
           "reason": "say why, e.g. reason: parental leave",
           "until": "every exemption ends: until: YYYY-MM-DD (at most 365 days ahead by default)"},
    doc="a user exempt from the inactivity and licence rules, with a reason, an owner and an end",
    into=Into(Exemption, keys={"covers": ("from",)}),
)

for _record in (INACTIVE, LICENCES, DELETE_GUARD, EXEMPTION_RULES, EXEMPTION):
    check_into(_record)
