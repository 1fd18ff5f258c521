"""Seats before and after a plan, and `policy.licences.warn_at` (issue 14). Pure.

A user holds a seat while active and in a licence-granting group; the plan's actions move users in and
out of both. `used` is what the target counts now (Data Center's licence resource, Cloud's user count
approximation); `after` is `used` plus the change the actions make, so a target's own counting rules
(which accounts it bills) carry over.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import assert_never

from reconcile.model import ActualState, Status
from reconcile.plan import Action, ActionKind, PlanWarning, WarningKind
from reconcile.plan_facts import Seats
from reconcile.policies import LicencePolicy


def granting(actual: ActualState, licences: LicencePolicy) -> Mapping[str, frozenset[str]]:
    """Licence-granting group -> member refs: the target's (DC: "Can use"), else `policy.licences.groups`."""
    if actual.licence is not None and actual.licence.granting is not None:
        return actual.licence.granting
    return {g: actual.members.get(g, frozenset()) for g in licences.groups}


def other_grants(ref: str, removing: Iterable[str], grants: Mapping[str, frozenset[str]]) -> list[str]:
    """The licence-granting groups `ref` stays in after leaving `removing`."""
    gone = set(removing)
    return sorted(g for g, refs in grants.items() if ref in refs and g not in gone)


def _after(status: Status, groups: set[str], action: Action, grants: Mapping[str, frozenset[str]]) -> Status:
    match action.kind:
        case ActionKind.ENABLE:
            return Status.ACTIVE
        case ActionKind.DISABLE | ActionKind.DELETE:
            return Status.DISABLED
        case ActionKind.ADD_MEMBER:
            if action.group is not None and action.group in grants:
                groups.add(action.group)
        case ActionKind.REMOVE_MEMBER | ActionKind.REMOVE_LICENCE:
            groups.discard(action.group or "")
        case _:
            assert_never(action.kind)
    return status


def seat_change(actual: ActualState, actions: Iterable[Action], licences: LicencePolicy) -> tuple[int, int]:
    """(change in seats held, seats freed by `remove_licence`) over the users the actions touch."""
    grants = granting(actual, licences)
    by_user: dict[str, list[Action]] = {}
    for action in actions:
        by_user.setdefault(action.subject.ref, []).append(action)
    delta = freed = 0
    for ref, mine in by_user.items():
        user = actual.users.get(ref)
        if user is None or user.unsynced:
            continue
        before = {g for g, refs in grants.items() if ref in refs}
        groups, status = set(before), user.status
        for action in mine:
            status = _after(status, groups, action, grants)
        held = user.status is Status.ACTIVE and bool(before)
        holds = status is Status.ACTIVE and bool(groups)
        delta += int(holds) - int(held)
        if held and not holds and status is Status.ACTIVE:
            freed += 1  # still active, out of every granting group: the licence removal freed it
    return delta, freed


def summarise(actual: ActualState, actions: Iterable[Action], licences: LicencePolicy
              ) -> tuple[Seats | None, int, list[PlanWarning]]:
    """The seat summary, the seats `remove_licence` frees, and the seat warnings (warn_at; not counted)."""
    licence = actual.licence
    actions = list(actions)
    if licence is None:
        return None, seat_change(actual, actions, licences)[1] if licences.groups else 0, []
    delta, freed = seat_change(actual, actions, licences)
    warnings: list[PlanWarning] = []
    if licence.note:
        warnings.append(PlanWarning(WarningKind.SEATS, licence.product, licence.note))
    if licence.used is None:
        return None, freed, warnings
    seats = Seats(licence.product, licence.used, max(0, licence.used + delta), licence.maximum,
                  licence.approximate, licence.source)
    for name, threshold in (("warn_at", licences.warn_at), ("fail_at", licences.fail_at)):
        if threshold is None:
            continue
        limit = threshold.of(seats.maximum)
        if limit is None:
            warnings.append(PlanWarning(WarningKind.SEATS, licence.product, (
                f"policy.licences.{name} {threshold} is a share of the licence's maximum, which the target "
                "does not reveal: not evaluated; give a number of seats instead")))
        elif name == "warn_at" and seats.after >= limit:
            of = f" of {seats.maximum}" if threshold.percent is not None else ""
            warnings.append(PlanWarning(WarningKind.SEATS, licence.product, (
                f"{seats.after} seats in use after the plan{' (approximate)' if seats.approximate else ''} "
                f"reach policy.licences.warn_at {threshold}{of}")))
    return seats, freed, warnings
