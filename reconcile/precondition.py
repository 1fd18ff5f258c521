"""What the planner saw when it planned an action: kept in the plan file, checked again at apply.

Two kinds of fact, checked two ways. The state an action changes (`status`, `member`, `unsynced`)
is checked by re-planning: when it changed, the plan is stale and nothing is applied (SPEC §7).
The facts that *selected* the subject (`inactive`: no activity since a cutoff) are checked per
action against the fresh reading: an action whose selection no longer holds (someone logged in
since the plan) is skipped and reported, never performed, and the rest of the plan still applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconcile.model import Status, User, iso_instant, parse_instant


@dataclass(frozen=True, slots=True)
class Inactive:
    """No activity counted after `cutoff`, in `products` (every product when empty; DC: `confluence`)."""

    cutoff: datetime
    products: tuple[str, ...] = ()
    last_active: datetime | None = None  # as read when planning (None: never active); shown, not checked
    rule: str = ""  # which rule selected it: `inactive` (after) or `never_active` (never_active_after)
    source: str = ""  # where the activity was read: `lastLogin`, `productAccess[confluence]`

    def broken(self, user: User) -> str | None:
        """Why the subject is no longer inactive, as read now; None while it still is."""
        if user.last_active is None:  # it was known at planning: not confirmed now is not inactive
            return "last activity can no longer be read, so inactivity is not confirmed"
        latest = user.last_active.latest(self.products)
        if latest is None or latest < self.cutoff:
            return None
        return (f"active since the plan: last active {iso_instant(latest)}, after the cutoff "
                f"{iso_instant(self.cutoff)}")

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "cutoff": iso_instant(self.cutoff),
            "products": list(self.products),
            "last_active": iso_instant(self.last_active) if self.last_active else None,
        }
        if self.rule:
            data["rule"] = self.rule
        if self.source:
            data["source"] = self.source
        return data

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Inactive:
        cutoff = parse_instant(data["cutoff"])
        if cutoff is None:
            raise ValueError(f"precondition cutoff {data['cutoff']!r} is not a timestamp")
        products = data.get("products") or []
        if not isinstance(products, list):
            raise ValueError("precondition products is not a list")
        return Inactive(cutoff, tuple(str(p) for p in products), parse_instant(data.get("last_active")),
                        str(data.get("rule") or ""), str(data.get("source") or ""))


@dataclass(frozen=True, slots=True)
class Guarded:
    """A delete the impact guard turned into `downgrade`: the facts it read (policy.delete_guard).

    Recorded, and re-checked at apply by re-planning: apply reads the impact again, and when the facts
    changed (the space got a second administrator) the action differs and the plan is stale.
    """

    evidence: tuple[str, ...]
    downgrade: str = "disable"

    def to_json(self) -> dict[str, Any]:
        return {"evidence": list(self.evidence), "downgrade": self.downgrade}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Guarded:
        evidence = data.get("evidence")
        if not isinstance(evidence, list):
            raise ValueError("precondition guarded.evidence is not a list")
        return Guarded(tuple(str(e) for e in evidence), str(data.get("downgrade") or "disable"))


@dataclass(frozen=True, slots=True)
class Precondition:
    """The facts an action was planned on; each None when it does not apply to the action."""

    status: Status | None = None  # the user's status (enable, disable, delete)
    member: bool | None = None  # whether the user is a member of the action's group
    unsynced: bool | None = None  # the account is a DC "unsynced from directory" entry
    inactive: Inactive | None = None  # the fact that selected an inactivity action
    guarded: Guarded | None = None  # a delete downgraded by policy.delete_guard, with its evidence

    def broken(self, user: User | None) -> str | None:
        """Why a fact that selected the action no longer holds on `user` as read now; None: all hold.

        A user no longer there is the stale-plan check's business (the action is no longer needed).
        """
        if self.inactive is None or user is None:
            return None
        return self.inactive.broken(user)

    def to_json(self) -> dict[str, Any]:
        """A flat object of the facts that apply: `{"status": "active"}`, `{"member": false}`, `{}`."""
        data: dict[str, Any] = {}
        if self.status is not None:
            data["status"] = self.status.value
        if self.member is not None:
            data["member"] = self.member
        if self.unsynced is not None:
            data["unsynced"] = self.unsynced
        if self.inactive is not None:
            data["inactive"] = self.inactive.to_json()
        if self.guarded is not None:
            data["guarded"] = self.guarded.to_json()
        return data

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Precondition:
        unknown = sorted(set(data) - {"status", "member", "unsynced", "inactive", "guarded"})
        if unknown:
            raise ValueError(f"unknown precondition {unknown[0]!r} (a plan of a newer reconcile?)")
        return Precondition(
            status=Status(data["status"]) if data.get("status") is not None else None,
            member=_flag(data, "member"),
            unsynced=_flag(data, "unsynced"),
            inactive=Inactive.from_json(data["inactive"]) if data.get("inactive") is not None else None,
            guarded=Guarded.from_json(data["guarded"]) if data.get("guarded") is not None else None,
        )


def _flag(data: Mapping[str, Any], name: str) -> bool | None:
    value = data.get(name)
    if value is None or isinstance(value, bool):
        return value
    raise ValueError(f"precondition {name} is {value!r}, not true or false")


NO_PRECONDITION = Precondition()
