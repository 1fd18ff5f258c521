"""Action, Plan and its canonical JSON: ordering, digest, safety limits, (de)serialisation.

The digest is a lower-case hex sha256 of the canonical JSON of everything but `created_at`,
`evaluated_at` and `desired_dir` (SPEC §7), so identical inputs give identical digests wherever they were planned.
Nothing here does I/O.
Names: `describe()` is one sentence for people; a target's identifying dict is `Target.address()`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, assert_never

import msgspec

from reconcile import __version__
from reconcile.errors import LimitExceeded, PlanFileError, StalePlan
from reconcile.model import Limit, iso_instant, parse_instant
from reconcile.plan_facts import PolicyRecord, Seats
from reconcile.policies import LicencePolicy, SeatThreshold
from reconcile.precondition import NO_PRECONDITION, Precondition

FORMAT_VERSION = 1


class ActionKind(StrEnum):
    """The kinds of change, in execution order (SPEC §5).

    `remove_licence` is a removal from one of `policy.licences.groups` chosen by the inactivity policy:
    a membership change like `remove_member`, after it (exact membership first), before `disable`.
    """

    ENABLE = "enable"
    ADD_MEMBER = "add_member"
    REMOVE_MEMBER = "remove_member"
    REMOVE_LICENCE = "remove_licence"
    DISABLE = "disable"
    DELETE = "delete"

    @property
    def rank(self) -> int:
        return _ORDER[self]


_ORDER = {kind: i for i, kind in enumerate(ActionKind)}

# Defaults when `policy.limits` does not name a kind (SPEC §5).
DEFAULT_LIMITS: Mapping[ActionKind, Limit] = {
    ActionKind.DELETE: Limit(10, percent=True),
    ActionKind.DISABLE: Limit(10, percent=True),
    ActionKind.REMOVE_MEMBER: Limit(25, percent=True),
    ActionKind.REMOVE_LICENCE: Limit(10, percent=True),  # of the users, like disable: a seat each
}
DEFAULT_LIMITS_MIN_USERS = 20
USER_KINDS = frozenset({ActionKind.ENABLE, ActionKind.DISABLE, ActionKind.DELETE})


@dataclass(frozen=True, slots=True)
class Subject:
    """Who an action is about: the key shown to people and the target's stable reference."""

    identity: str
    ref: str


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    subject: Subject
    group: str | None = None
    reason: str = ""
    precondition: Precondition = NO_PRECONDITION
    unsynced: bool = False  # a DC "unsynced from directory" entry (deleted by userKey)

    @property
    def id(self) -> str:
        """Stable across plans: the same change has the same id whatever else is planned."""
        text = f"{self.kind}\x00{self.subject.ref}\x00{self.group or ''}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def sort_key(self) -> tuple[int, str, str, str]:
        return (self.kind.rank, self.subject.identity.lower(), self.group or "", self.subject.ref)

    def describe(self) -> str:
        """One line: `add_member alice@example.com (userKey) -> team-docs`."""
        who = f"{self.subject.identity} ({self.subject.ref})"
        match self.kind:
            case ActionKind.ADD_MEMBER:
                return f"add {who} to {self.group}"
            case ActionKind.REMOVE_MEMBER:
                return f"remove {who} from {self.group}"
            case ActionKind.REMOVE_LICENCE:
                return f"remove licence of {who}: out of {self.group}"
            case ActionKind.ENABLE | ActionKind.DISABLE | ActionKind.DELETE:
                what = "unsynced entry " if self.unsynced else ""
                return f"{self.kind} {what}{who}"
            case _:
                assert_never(self.kind)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "kind": str(self.kind),
            "subject": {"identity": self.subject.identity, "ref": self.subject.ref},
            "group": self.group,
            "reason": self.reason,
            "precondition": self.precondition.to_json(),
        }
        if self.unsynced:
            data["unsynced"] = True
        return data

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Action:
        subject = data["subject"]
        return Action(
            kind=ActionKind(data["kind"]),
            subject=Subject(identity=str(subject["identity"]), ref=str(subject["ref"])),
            group=data.get("group"),
            reason=str(data.get("reason", "")),
            precondition=Precondition.from_json(data.get("precondition") or {}),
            unsynced=bool(data.get("unsynced", False)),
        )


class WarningKind(StrEnum):
    PROTECTED = "protected"
    IDP_MANAGED = "synced"  # IdP/SCIM-managed user or group (Cloud); the value is Atlassian's word, kept in plans
    READONLY = "readonly"  # membership change in a read-only group (DC)
    MISSING_USER = "missing_user"  # desired user that does not exist on the target
    MISSING_GROUP = "missing_group"  # desired group that does not exist on the target
    INCOMPLETE = "incomplete"  # something the target could not read (e.g. unsynced entries without websudo)
    AMBIGUOUS = "ambiguous"  # an account that may be a desired user not found by email (email hidden)
    SOURCE = "source"  # something a source read but left out (e.g. group members that are devices)
    GUARDED = "guarded"  # a delete policy.delete_guard kept from happening, with no disable left to do
    IRREVERSIBLE = "irreversible"  # undo plans: a change the apply made that no action can reverse (delete)
    UPCOMING = "upcoming"  # crosses an inactivity cutoff within policy.inactive.warn_before (no action)
    UNKNOWN_ACTIVITY = "unknown_activity"  # no activity data, or never active with no known age
    EXEMPTION = "exemption"  # an exemption expired, expiring, or naming nobody in scope
    SEATS = "seats"  # seats after the plan reach policy.licences.warn_at, or cannot be counted


@dataclass(frozen=True, slots=True)
class PlanWarning:
    kind: WarningKind
    subject: str
    message: str

    @property
    def sort_key(self) -> tuple[str, str, str]:
        return (str(self.kind), self.subject.lower(), self.message)

    def to_json(self) -> dict[str, str]:
        return {"kind": str(self.kind), "subject": self.subject, "message": self.message}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> PlanWarning:
        return PlanWarning(WarningKind(data["kind"]), str(data["subject"]), str(data["message"]))


@dataclass(frozen=True, slots=True)
class LimitBase:
    """What percentage limits are measured against."""

    users: int  # in-scope, unprotected users (unsynced entries not counted)
    memberships: int  # in-scope memberships of managed groups
    in_scope: int = 0  # in-scope users, protected included: default limits need at least 20

    def of(self, kind: ActionKind) -> int:
        """What a percentage limit of `kind` is measured against."""
        match kind:
            case ActionKind.ENABLE | ActionKind.DISABLE | ActionKind.DELETE | ActionKind.REMOVE_LICENCE:
                return self.users
            case ActionKind.ADD_MEMBER | ActionKind.REMOVE_MEMBER:
                return self.memberships
            case _:
                assert_never(kind)


@dataclass(frozen=True, slots=True)
class Plan:
    target: Mapping[str, str]  # type + url / org
    desired_digest: str
    actual_fingerprint: str
    actions: tuple[Action, ...]
    warnings: tuple[PlanWarning, ...] = ()
    limit_base: LimitBase = LimitBase(0, 0, 0)
    seats_freed: int | None = None  # licence seats freed, where the target reveals billing
    seats: Seats | None = None  # `seats: used → after (max, headroom)`, when a policy reads them
    policy: PolicyRecord | None = None  # the inactivity rule's cutoffs and the exemptions (issue 14)
    created_at: str = ""
    # The `now` the planner decided with; `apply` re-plans with it, not with the wall clock. Outside
    # the digest like created_at: decisions depend only on what is derived from it (cutoffs, issue 14).
    evaluated_at: datetime | None = None
    # The desired directory as given to `plan` (relative as written): `apply PLAN` reads it again.
    # Outside the digest: where the files live is not what was reviewed; their content is (desired_digest).
    desired_dir: str = ""
    # An undo plan (reconcile/undo.py): the digest of the plan whose apply it reverses. In the digest;
    # such a plan is applied against fresh per-action facts, not re-planned against the desired state.
    undoes: str = ""
    tool_version: str = __version__
    format_version: int = FORMAT_VERSION
    # The digest, kept once computed: the plan is frozen, and hashing a large one costs milliseconds
    # (building an undo plan asked for it once per action: 7 s for 1,000 actions).
    _digest: str = field(default="", init=False, repr=False, compare=False)

    @property
    def empty(self) -> bool:
        return not self.actions

    def counts(self) -> dict[str, int]:
        out = {str(k): 0 for k in ActionKind}
        for action in self.actions:
            out[str(action.kind)] += 1
        return out

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.counts(), "warnings": len(self.warnings), "seats_freed": self.seats_freed}
        if self.seats is not None:
            out["seats"] = self.seats.to_json()
        return out

    def body(self) -> dict[str, Any]:
        """Everything the digest covers (all but `created_at`, `evaluated_at`, `desired_dir` and the digest)."""
        return {
            "format_version": self.format_version,
            "tool_version": self.tool_version,
            "target": dict(self.target),
            "desired_digest": self.desired_digest,
            "actual_fingerprint": self.actual_fingerprint,
            "limit_base": {
                "users": self.limit_base.users,
                "memberships": self.limit_base.memberships,
                "in_scope": self.limit_base.in_scope,
            },
            "actions": [a.to_json() for a in self.actions],
            "warnings": [w.to_json() for w in self.warnings],
            "summary": self.summary(),
            **({"undoes": self.undoes} if self.undoes else {}),  # absent from other plans: their digests stay
            **({"policy": self.policy.to_json()} if self.policy is not None else {}),
        }

    @property
    def digest(self) -> str:
        if not self._digest:
            object.__setattr__(self, "_digest", sha256_json(self.body()))
        return self._digest

    def to_json(self) -> dict[str, Any]:
        data = self.body()
        digest = sha256_json(data)  # the body is built once: it is large for big plans
        data["created_at"] = self.created_at
        if self.evaluated_at is not None:
            data["evaluated_at"] = iso_instant(self.evaluated_at)
        if self.desired_dir:
            data["desired_dir"] = self.desired_dir
        data["digest"] = digest
        return data

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @staticmethod
    def loads(text: str, source: str = "plan") -> Plan:
        """Parse a plan file, checking its digest; raises PlanFileError (exit 1) saying why not.

        Not a ConfigError: that one reads "problems in the desired state", and a plan file is not.
        """
        again = "run `reconcile plan --out FILE` again, review it and approve the new digest"
        data: Any = None
        try:
            data = json.loads(text)
            base = data.get("limit_base") or {}
            plan = Plan(
                target=dict(data["target"]),
                desired_digest=str(data["desired_digest"]),
                actual_fingerprint=str(data["actual_fingerprint"]),
                actions=tuple(Action.from_json(a) for a in data["actions"]),
                warnings=tuple(PlanWarning.from_json(w) for w in data.get("warnings", [])),
                limit_base=LimitBase(
                    int(base.get("users", 0)), int(base.get("memberships", 0)), int(base.get("in_scope", 0))
                ),
                seats_freed=(data.get("summary") or {}).get("seats_freed"),
                seats=_seats(data),
                policy=PolicyRecord.from_json(data["policy"]) if data.get("policy") is not None else None,
                created_at=str(data.get("created_at", "")),
                # plans written before `evaluated_at` existed were evaluated when they were created
                evaluated_at=_evaluated_at(data),
                desired_dir=str(data.get("desired_dir") or ""),
                undoes=str(data.get("undoes") or ""),
                tool_version=str(data["tool_version"]),
                format_version=int(data["format_version"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise not_a_plan(source, _why_not(exc, data)) from exc
        if plan.format_version != FORMAT_VERSION:
            raise PlanFileError(f"{source}: plan format {plan.format_version} is not {FORMAT_VERSION}",
                                 hint=again)
        recorded = data.get("digest")
        if recorded != plan.digest:
            raise PlanFileError(
                f"{source}: the plan's digest does not match its content: the file was edited after "
                "planning (or damaged); nothing was changed",
                hint=again,
            )
        return plan

    def check_limits(self, limits: Mapping[str, Limit], *, force: bool = False,
                     licences: LicencePolicy | None = None) -> None:
        """Raise LimitExceeded (exit 4) when any kind exceeds its limit, or the seats after the plan
        exceed `policy.licences.fail_at`, unless forced."""
        problems = self.limit_problems(limits)
        seat = seat_problem(self.seats, licences.fail_at if licences is not None else None)
        if seat:
            problems.append(seat)
        if problems and not force:
            raise LimitExceeded(
                "refused: the plan exceeds safety limits:\n" + "\n".join(f"  {p}" for p in problems),
                hint="review the plan; if it is right, re-run plan and apply with --force "
                "(or raise policy.limits)",
            )

    def limit_problems(self, limits: Mapping[str, Limit]) -> list[str]:
        counts = self.counts()
        problems = []
        for kind in ActionKind:
            limit = limits.get(str(kind))
            if limit is None:
                if self.limit_base.in_scope < DEFAULT_LIMITS_MIN_USERS:
                    continue
                limit = DEFAULT_LIMITS.get(kind)
                if limit is None:
                    continue
            base = self.limit_base.of(kind)
            count = counts[str(kind)]
            if not limit.allows(count, base):
                if limit.percent:
                    share = f"{count * 100 / base:.1f}%" if base else "100%"
                    problems.append(
                        f"{kind}: {count} of {base} ({share}) exceeds the limit of {limit}"
                    )
                else:
                    problems.append(f"{kind}: {count} exceeds the limit of {limit}")
        return problems


def not_a_plan(source: str, why: str) -> PlanFileError:
    """The error for a file that is not a plan (binary, truncated, another JSON document)."""
    return PlanFileError(f"{source}: not a reconcile plan file: {why}; nothing was changed",
                          hint="give the file written by `reconcile plan --out FILE` (or plan again)")


def _why_not(exc: Exception, data: Any) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON at line {exc.lineno} column {exc.colno} ({exc.msg}; truncated or damaged?)"
    if not isinstance(data, dict):
        return "not a JSON object" if data is not None else str(exc)
    if isinstance(exc, KeyError):
        return f"the field {exc.args[0]!r} is missing"
    return f"a field has the wrong type or value ({exc})"


def _seats(data: Mapping[str, Any]) -> Seats | None:
    seats = (data.get("summary") or {}).get("seats")
    return Seats.from_json(seats) if seats is not None else None


def seat_problem(seats: Seats | None, fail_at: SeatThreshold | None) -> str | None:
    """Why the seats after the plan exceed `fail_at` (strictly above it); None when they do not."""
    if seats is None or fail_at is None:
        return None
    limit = fail_at.of(seats.maximum)
    if limit is None or seats.after <= limit:
        return None
    approx = " (approximate)" if seats.approximate else ""
    return (f"seats: {seats.after} in use after the plan{approx} exceeds policy.licences.fail_at {fail_at}"
            + (f" of {seats.maximum}" if fail_at.percent is not None else ""))


def _evaluated_at(data: Mapping[str, Any]) -> datetime | None:
    """When the plan was evaluated; plans written before the field existed: when they were created."""
    if "evaluated_at" not in data:
        return parse_instant(data.get("created_at"))
    stamp = parse_instant(data["evaluated_at"])
    if stamp is None:
        raise ValueError(f"evaluated_at {data['evaluated_at']!r} is not a timestamp")
    return stamp


def target_label(target: Mapping[str, str]) -> str:
    """A target for people: `atlassian-cloud https://api.atlassian.com org 1234`, `confluence-dc URL`."""
    words = [target.get("type", "?")]
    if target.get("url"):
        words.append(target["url"])
    if target.get("org"):
        words += ["org", target["org"]]
    return " ".join(words)


def check_target(plan: Plan, configured: Mapping[str, str]) -> None:
    """Refuse (StalePlan, exit 4) a plan made for another target than the configuration names.

    Checked before anything else about the plan (limits included): a plan for another site says
    nothing about this one, and `--force` must not appear to be the remedy.
    """
    if dict(plan.target) != dict(configured):
        raise StalePlan(
            f"refused: the plan is for {target_label(plan.target)}, but the configuration names "
            f"{target_label(configured)}; nothing was changed",
            hint="apply it with the desired directory it was planned from (`--desired`), or plan "
            "against this target",
        )


def order(actions: Iterable[Action]) -> tuple[Action, ...]:
    """The execution order of SPEC §5: by kind, then lower-cased subject, then group."""
    return tuple(sorted(actions, key=lambda a: a.sort_key))


def order_warnings(warnings: Iterable[PlanWarning]) -> tuple[PlanWarning, ...]:
    return tuple(sorted(set(warnings), key=lambda w: w.sort_key))


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_json(data: Any) -> str:
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()


_SORTED = msgspec.json.Encoder(order="sorted")


def sha256_canonical(data: Any) -> str:
    """`sha256_json(data)`, encoded by msgspec: the same bytes for strings, ints, bools, None, lists and
    str-keyed dicts, five times faster for the large state digests. Floats differ (msgspec writes `1e20`,
    json `1e+20`): a part that may hold one goes in as `raw(part)`, encoded by `canonical_json`."""
    return hashlib.sha256(_SORTED.encode(data)).hexdigest()


def raw(data: Any) -> msgspec.Raw:
    """`data`'s canonical JSON, embedded as is by `sha256_canonical`."""
    return msgspec.Raw(canonical_json(data).encode())


def match_digest(plan_digest: str, given: str) -> bool:
    """Whether `given` approves `plan_digest` (whole, or a prefix of at least 12 hex chars)."""
    given = given.strip().lower()
    return len(given) >= 12 and plan_digest.startswith(given)


def by_kind(actions: Sequence[Action]) -> dict[ActionKind, list[Action]]:
    out: dict[ActionKind, list[Action]] = {}
    for action in actions:
        out.setdefault(action.kind, []).append(action)
    return out
