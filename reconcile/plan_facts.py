"""What a plan records about its policies besides actions: the seat summary, each inactivity rule's
cutoff and the exemptions in play (issue 14). Frozen values with their canonical JSON; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconcile.model import iso_instant, parse_instant


@dataclass(frozen=True, slots=True)
class Seats:
    """`seats: used → after (max, headroom)` of one product; `approximate` on Cloud (a user count)."""

    product: str
    used: int
    after: int
    maximum: int | None = None  # None: unlimited or not revealed
    approximate: bool = False
    source: str = ""

    @property
    def headroom(self) -> int | None:
        return None if self.maximum is None else self.maximum - self.after

    def line(self) -> str:
        """`seats: 27 → 25 (max 30, headroom 5)`; `(max unknown)` and `approximate` where so."""
        bounds = (f"max {self.maximum}, headroom {self.headroom}" if self.maximum is not None
                  else "max unknown")
        approx = f", approximate: {self.source}" if self.approximate else ""
        return f"seats ({self.product}): {self.used} → {self.after} ({bounds}{approx})"

    def to_json(self) -> dict[str, Any]:
        return {"product": self.product, "used": self.used, "after": self.after, "max": self.maximum,
                "headroom": self.headroom, "approximate": self.approximate, "source": self.source}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Seats:
        maximum = data.get("max")
        return Seats(str(data["product"]), int(data["used"]), int(data["after"]),
                     int(maximum) if maximum is not None else None, bool(data.get("approximate", False)),
                     str(data.get("source", "")))


@dataclass(frozen=True, slots=True)
class Cutoff:
    """One rule's cutoff: `inactive` (after), `never_active` (never_active_after) or `upcoming` (warn_before)."""

    rule: str
    window: str  # as configured: `90d`
    cutoff: datetime  # 00:00 UTC of the evaluation day minus the window (upcoming: plus warn_before)


@dataclass(frozen=True, slots=True)
class ExemptionNote:
    """An exemption as the plan saw it: `active`, `expiring` (within warn_within), `expired` or `unused`."""

    user: str
    owner: str
    reason: str
    until: str  # YYYY-MM-DD
    covers: tuple[str, ...]
    state: str

    def to_json(self) -> dict[str, Any]:
        return {"user": self.user, "owner": self.owner, "reason": self.reason, "until": self.until,
                "from": list(self.covers), "state": self.state}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> ExemptionNote:
        return ExemptionNote(str(data["user"]), str(data["owner"]), str(data["reason"]), str(data["until"]),
                             tuple(str(c) for c in data.get("from") or ()), str(data["state"]))


@dataclass(frozen=True, slots=True)
class PolicyRecord:
    """`policy` in the plan file: the inactivity rule's action, products, cutoffs, and the exemptions."""

    action: str
    products: tuple[str, ...] = ()  # empty: any product
    cutoffs: tuple[Cutoff, ...] = ()
    exemptions: tuple[ExemptionNote, ...] = ()

    def exemption_of(self, keys: tuple[str, ...]) -> ExemptionNote | None:
        wanted = {k.lower() for k in keys}
        return next((e for e in self.exemptions if e.user.lower() in wanted), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "activity": list(self.products) or "any",
            "cutoffs": {c.rule: {"window": c.window, "cutoff": iso_instant(c.cutoff)} for c in self.cutoffs},
            "exemptions": [e.to_json() for e in self.exemptions],
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> PolicyRecord:
        cutoffs = []
        for rule, item in (data.get("cutoffs") or {}).items():
            stamp = parse_instant(item["cutoff"])
            if stamp is None:
                raise ValueError(f"policy cutoff {item['cutoff']!r} is not a timestamp")
            cutoffs.append(Cutoff(str(rule), str(item["window"]), stamp))
        products = data.get("activity")
        return PolicyRecord(
            action=str(data["action"]),
            products=tuple(str(p) for p in products) if isinstance(products, list) else (),
            cutoffs=tuple(cutoffs),
            exemptions=tuple(ExemptionNote.from_json(e) for e in data.get("exemptions") or ()),
        )
