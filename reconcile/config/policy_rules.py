"""Rules of `policy.inactive`, `policy.licences` and `exemptions:` that span keys, sections or files, or
need the clock: each a problem at the key that has to change.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from reconcile.config.into import build
from reconcile.config.nodes import Fields, Item
from reconcile.config.policies import EXEMPTION
from reconcile.model import Location, Policy, Scope, norm
from reconcile.policies import Exemption, InactiveAction, SeatThreshold

Problems = list[tuple[Location, str]]


def exemptions(docs: Sequence[Fields], problems: Problems) -> tuple[Exemption, ...]:
    """Every file's `exemptions:`, in file order; a second one for a user and rule is a problem."""
    out: list[Exemption] = []
    seen: dict[tuple[str, str], Location] = {}
    for doc in docs:
        item = doc.get("exemptions")
        for entry in (item.value if item is not None else None) or []:
            exemption = build(EXEMPTION, Exemption, entry.value)
            clash = [f for f in sorted(exemption.covers) if (norm(exemption.user), f) in seen]
            if clash:
                first = seen[(norm(exemption.user), clash[0])]
                problems.append((entry.loc, f"exemptions: user '{exemption.user}' is already exempt from "
                                 f"{clash[0]} at {first}; write one exemption per user and rule"))
                continue
            seen.update({(norm(exemption.user), f): entry.loc for f in exemption.covers})
            out.append(exemption)
    return tuple(out)


def _at(fields: Fields | None, *path: str) -> Item | None:
    """The item at `path` inside `fields` (nested records), or None."""
    item: Item | None = None
    for key in path:
        if fields is None:
            return None
        item = fields.get(key)
        fields = item.value if item is not None and isinstance(item.value, dict) else None
    return item


def check(section: Fields | None, policy: Policy, *, scope: Scope | None, target_type: object,
          problems: Problems) -> None:
    """Cross-key rules of `policy:` (`scope` None: scope is invalid, groups are not judged)."""
    inactive = policy.inactive
    action = _at(section, "inactive", "action")
    if inactive is not None and inactive.action is InactiveAction.REMOVE_LICENCE and not policy.licences.groups \
            and action is not None:
        problems.append((action.loc, "policy.inactive.action: remove_licence needs policy.licences.groups: "
                         "name the licence-granting groups it may remove, e.g. groups: [confluence-users]"))
    groups = _at(section, "licences", "groups")
    if scope is not None and groups is not None:
        for entry in groups.value:
            if not scope.owns_group(entry.value):
                problems.append((entry.loc, f"policy.licences.groups: group '{norm(entry.value)}' is outside "
                                 "scope.groups; the policy removes managed groups only: add it (or a glob "
                                 "matching it) to scope.groups, or remove it here"))
    warn, fail = policy.licences.warn_at, policy.licences.fail_at
    fail_item = _at(section, "licences", "fail_at")
    if warn is not None and fail is not None and fail_item is not None and _below(fail, warn):
        problems.append((fail_item.loc, f"policy.licences.fail_at: {fail} is below warn_at {warn}; fail_at "
                         "must be at least warn_at"))
    before = _at(section, "inactive", "warn_before")
    if inactive is not None and before is not None and inactive.after is not None and inactive.warn_before \
            is not None and inactive.warn_before >= inactive.after:
        problems.append((before.loc, f"policy.inactive.warn_before: {before.value.days}d is not shorter than "
                         f"after ({inactive.after.days}d); the warning window must end before the cutoff"))
    products = _at(section, "inactive", "activity")
    if target_type == "confluence-dc" and inactive is not None and inactive.activity and products is not None:
        problems.append((products.loc, "policy.inactive.activity: Confluence Data Center reports only the last "
                         "login; leave activity out (or write `any`): the last login counts"))


def _below(fail: SeatThreshold, warn: SeatThreshold) -> bool:
    """Whether `fail` is lower than `warn`; counts and percentages are not compared (the max is not known)."""
    if fail.seats is not None and warn.seats is not None:
        return fail.seats < warn.seats
    if fail.percent is not None and warn.percent is not None:
        return fail.percent < warn.percent
    return False


def horizon(docs: Sequence[Fields], policy: Policy, now: datetime, problems: Problems) -> None:
    """An exemption's `until` at most `policy.exemptions.max_ahead` after `now` (past ones only warn)."""
    today = now.date()
    limit = policy.exemption_rules.max_ahead.days
    for doc in docs:
        item = doc.get("exemptions")
        for i, entry in enumerate((item.value if item is not None else None) or []):
            until = entry.value.get("until")
            if until is None:
                continue
            ahead = (until.value - today).days
            if ahead > limit:
                problems.append((until.loc, f"exemptions[{i}].until: {until.value.isoformat()} is {ahead} days "
                                 f"ahead of {today.isoformat()}, more than the {limit} allowed; choose an "
                                 "earlier date (or raise policy.exemptions.max_ahead)"))
