"""The machine-readable run report of `plan --report` / `apply --report`: what was planned, what each
action came to, and how the run ended. Pure (no I/O); `SCHEMA` is its documented, versioned shape.
Built only from the plan, the apply result and the error message: never from settings, so no secret.
Names: *report* always means this run report; one action's outcome in an apply is an `ActionOutcome`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from reconcile import __version__
from reconcile.plan import Action, ActionKind, Plan, WarningKind
from reconcile.policy_facts import fact_json
from reconcile.policy_facts import facts as policy_facts
from reconcile.targets.base import Result

if TYPE_CHECKING:
    from reconcile.apply import ApplyResult

REPORT_VERSION = 1


class RunStatus(StrEnum):
    """How the run ended, in one word (the exit code says the same for shells)."""

    NO_CHANGES = "no_changes"  # the target matches the desired state (plan or apply)
    CHANGES = "changes"  # plan: actions are pending
    APPLIED = "applied"  # apply: every action of the plan is done
    INCOMPLETE = "incomplete"  # apply: `--limit` left actions for a later apply of the same plan
    DRY_RUN = "dry_run"  # apply --dry-run: nothing changed
    FAILED = "failed"  # apply: some actions failed (exit 1); a later apply retries them
    REFUSED = "refused"  # exit 4: limit exceeded, empty source, stale plan, approval mismatch
    CANCELLED = "cancelled"  # apply: the operator did not type `yes`
    ERROR = "error"  # any other error (exit 1, or 2 for usage)


class ActionResult(StrEnum):
    """What happened to one action of the plan in this run."""

    DONE = "done"  # changed by this run
    ALREADY = "already"  # already in effect (or confirmed done after an interrupted apply)
    FAILED = "failed"
    NOT_RUN = "not_run"  # left for a later apply (beyond --limit, or waiting for a failed action of the user)
    DONE_EARLIER = "done_earlier"  # finished by an earlier apply of the same plan (journal)
    WOULD = "would"  # dry run: would be performed
    SKIPPED = "skipped"  # not performed: a fact that selected it no longer holds (reconcile/precondition.py)


@dataclass(frozen=True, slots=True)
class ErrorFacts:
    type: str  # the error class, e.g. LimitExceeded
    message: str  # as printed after `Error: ` (errors never carry secrets)
    refused: bool = False


@dataclass(frozen=True, slots=True)
class Notification:
    channel: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class RunFacts:
    """Everything a report says, gathered by the CLI while the command runs."""

    command: str  # "plan" | "apply"
    started_at: str
    finished_at: str
    seconds: float
    exit_code: int
    target: Mapping[str, str] = field(default_factory=dict)
    plan: Plan | None = None
    pending: tuple[str, ...] | None = None  # apply: ids still to do when it started (None: unknown)
    result: ApplyResult | None = None
    approval: str | None = None  # interactive | digest | auto
    operator: str | None = None
    cancelled: bool = False
    error: ErrorFacts | None = None
    notifications: tuple[Notification, ...] = ()


def status(facts: RunFacts) -> RunStatus:
    result = facts.result
    if facts.cancelled:
        return RunStatus.CANCELLED
    if facts.error is not None:
        if result is not None and result.failures:
            return RunStatus.FAILED
        return RunStatus.REFUSED if facts.error.refused else RunStatus.ERROR
    if facts.command == "plan":
        return RunStatus.NO_CHANGES if facts.plan is None or facts.plan.empty else RunStatus.CHANGES
    if result is None:
        return RunStatus.NO_CHANGES
    if result.dry_run:
        return RunStatus.DRY_RUN
    if result.not_run:
        return RunStatus.INCOMPLETE
    return RunStatus.APPLIED


def _outcomes(facts: RunFacts, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Action id -> its outcome in this run (apply only); `ids` are the plan's action ids, in order."""
    out: dict[str, dict[str, Any]] = {}
    if facts.command != "apply" or facts.plan is None:
        return out
    # An action's id is a sha256: look the plan's own objects up by identity instead of hashing again.
    known = {id(action): aid for action, aid in zip(facts.plan.actions, ids, strict=True)}

    def put(action: Action, result: ActionResult, message: str = "", *, http_status: int | None = None,
            request_id: str | None = None, seconds: float | None = None) -> None:
        out[known.get(id(action)) or action.id] = {
            "result": str(result), "message": message, "http_status": http_status, "request_id": request_id,
            "seconds": None if seconds is None else round(seconds, 3)}

    if facts.pending is not None:  # known once the plan was checked against a fresh reading
        pending = set(facts.pending)
        for action, aid in zip(facts.plan.actions, ids, strict=True):
            if aid not in pending:
                put(action, ActionResult.DONE_EARLIER)
    result = facts.result
    if result is None:
        return out
    for action in result.confirmed:
        put(action, ActionResult.ALREADY, "confirmed by re-reading the target after an interrupted apply")
    for applied in result.outcomes:
        o = applied.outcome
        kind = ActionResult.WOULD if result.dry_run and o.result is not Result.SKIPPED else ActionResult(str(o.result))
        put(applied.action, kind, o.message, http_status=o.http_status, request_id=o.request_id,
            seconds=None if result.dry_run else applied.seconds)
    for action in result.not_run:
        put(action, ActionResult.NOT_RUN, result.why_not_run(action))
    return out


def _apply_section(facts: RunFacts, outcomes: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    if facts.command != "apply":
        return None
    counts = {str(r): 0 for r in ActionResult}
    for outcome in outcomes.values():
        counts[outcome["result"]] += 1
    result = facts.result
    residual: list[dict[str, Any]] | None = None
    converged: bool | None = None
    if result is not None and result.residual is not None and not result.dry_run:
        residual = [a.to_json() for a in result.drift]
        converged = not residual and not result.failures and not result.not_run
    failures = [] if result is None else [
        {"id": r.action.id, "action": r.action.describe(), "message": r.outcome.message,
         "http_status": r.outcome.http_status, "request_id": r.outcome.request_id}
        for r in result.failures
    ]
    return {
        "approval": facts.approval,
        "operator": facts.operator,
        "dry_run": bool(result and result.dry_run),
        "seconds": None if result is None else round(result.seconds, 3),
        "counts": counts,
        "failures": failures,
        "residual_drift": residual,
        "converged": converged,
        "undo_plan": None if result is None or result.undo is None or result.undo_path is None
        else {"path": result.undo_path, "digest": result.undo.digest},
    }


def _plan_section(plan: Plan, data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "digest": data["digest"],
        "desired_digest": plan.desired_digest,
        "actual_fingerprint": plan.actual_fingerprint,
        "created_at": plan.created_at,
        "format_version": plan.format_version,
    }


def _summary(plan: Plan | None) -> dict[str, Any] | None:
    if plan is None:
        return None
    warnings = {str(k): 0 for k in WarningKind}
    for w in plan.warnings:
        warnings[str(w.kind)] += 1
    return {"actions": plan.counts(), "total": len(plan.actions), "warnings": warnings,
            "seats_freed": plan.seats_freed, "seats": plan.seats.to_json() if plan.seats is not None else None}


def to_json(facts: RunFacts) -> dict[str, Any]:
    """The report as JSON-ready data; see `SCHEMA` and docs/run-reports.md for each field."""
    plan = facts.plan
    data = plan.to_json() if plan is not None else None  # actions, warnings and digest, built once
    actions: list[dict[str, Any]] = data["actions"] if data is not None else []
    outcomes = _outcomes(facts, [a["id"] for a in actions])
    if facts.command == "apply":
        for action in actions:
            action["outcome"] = outcomes.get(action["id"])
    if plan is not None:  # the per-user facts of policy actions (issue 14), beside the action they selected
        by_id = {f.action.id: fact_json(f) for f in policy_facts(plan)}
        for action in actions:
            if action["id"] in by_id:
                action["facts"] = by_id[action["id"]]
    return {
        "report_version": REPORT_VERSION,
        "tool_version": __version__,
        "command": facts.command,
        "status": str(status(facts)),
        "exit_code": facts.exit_code,
        "started_at": facts.started_at,
        "finished_at": facts.finished_at,
        "duration_seconds": round(facts.seconds, 3),
        "target": dict(plan.target if plan is not None else facts.target),
        "plan": _plan_section(plan, data) if plan is not None and data is not None else None,
        "summary": _summary(plan),
        "actions": actions,
        "warnings": data["warnings"] if data is not None else [],
        "apply": _apply_section(facts, outcomes),
        "error": None if facts.error is None else {
            "type": facts.error.type, "message": facts.error.message, "refused": facts.error.refused},
        "notifications": [{"channel": n.channel, "ok": n.ok, "detail": n.detail} for n in facts.notifications],
    }


INDENT_UP_TO = 2000  # actions; larger reports are written on one line (json's C encoder: ~10x faster)


def dumps(facts: RunFacts) -> str:
    data = to_json(facts)
    if len(data["actions"]) <= INDENT_UP_TO:
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"


# ---------------------------------------------------------------------------------------- schema


def _obj(properties: Mapping[str, Any], required: Sequence[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": dict(properties), "additionalProperties": False,
            "required": list(properties if required is None else required)}


def _nullable(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"anyOf": [{"type": "null"}, dict(schema)]}


_STR = {"type": "string"}
_INT = {"type": "integer", "minimum": 0}
_SECONDS = {"type": "number", "minimum": 0}
_HEX64 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_OUTCOME = _obj({
    "result": {"enum": [str(r) for r in ActionResult]},
    "message": _STR,
    "http_status": _nullable({"type": "integer"}),
    "request_id": _nullable(_STR),
    "seconds": _nullable(_SECONDS),
})
_ACTION = _obj(
    {
        "id": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
        "kind": {"enum": [str(k) for k in ActionKind]},
        "subject": _obj({"identity": _STR, "ref": _STR}),
        "group": _nullable(_STR),
        "reason": _STR,
        "precondition": {"type": "object"},
        "unsynced": {"const": True},
        "outcome": _nullable(_OUTCOME),
        "facts": _obj({"rule": {"enum": ["inactive", "never_active"]}, "last_active": _nullable(_STR),
                       "source": _STR, "cutoff": _STR, "exemption": _nullable(_STR)}),
    },
    required=["id", "kind", "subject", "group", "reason", "precondition"],
)

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:reconcile:report:1",
    "title": "reconcile run report (plan --report / apply --report)",
    **_obj({
        "report_version": {"const": REPORT_VERSION},
        "tool_version": _STR,
        "command": {"enum": ["plan", "apply"]},
        "status": {"enum": [str(s) for s in RunStatus]},
        "exit_code": {"enum": [0, 1, 2, 3, 4, 130]},
        "started_at": _STR,
        "finished_at": _STR,
        "duration_seconds": _SECONDS,
        "target": {"type": "object", "additionalProperties": _STR},
        "plan": _nullable(_obj({"digest": _HEX64, "desired_digest": _STR, "actual_fingerprint": _STR,
                                "created_at": _STR, "format_version": {"type": "integer"}})),
        "summary": _nullable(_obj({
            "actions": _obj({str(k): _INT for k in ActionKind}),
            "total": _INT,
            "warnings": _obj({str(k): _INT for k in WarningKind}),
            "seats_freed": _nullable(_INT),
            "seats": _nullable(_obj({"product": _STR, "used": _INT, "after": _INT, "max": _nullable(_INT),
                                     "headroom": _nullable({"type": "integer"}), "approximate": {"type": "boolean"},
                                     "source": _STR})),
        })),
        "actions": {"type": "array", "items": _ACTION},
        "warnings": {"type": "array", "items": _obj({"kind": {"enum": [str(k) for k in WarningKind]},
                                                     "subject": _STR, "message": _STR})},
        "apply": _nullable(_obj({
            "approval": _nullable({"enum": ["interactive", "digest", "auto"]}),
            "operator": _nullable(_STR),
            "dry_run": {"type": "boolean"},
            "seconds": _nullable(_SECONDS),
            "counts": _obj({str(r): _INT for r in ActionResult}),
            "failures": {"type": "array", "items": _obj({
                "id": _STR, "action": _STR, "message": _STR, "http_status": _nullable({"type": "integer"}),
                "request_id": _nullable(_STR)})},
            "residual_drift": _nullable({"type": "array", "items": _ACTION}),
            "converged": _nullable({"type": "boolean"}),
            "undo_plan": _nullable(_obj({"path": _STR, "digest": _STR})),
        })),
        "error": _nullable(_obj({"type": _STR, "message": _STR, "refused": {"type": "boolean"}})),
        "notifications": {"type": "array", "items": _obj({"channel": {"enum": ["email", "webhook"]},
                                                          "ok": {"type": "boolean"}, "detail": _STR})},
    }),
}
