"""The run report without the CLI: its schema is a valid, closed JSON Schema documented field by field,
and each status and action outcome comes from the facts it should come from.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from reconcile.apply import ActionOutcome, ApplyResult
from reconcile.plan import Plan
from reconcile.report import SCHEMA, ActionResult, ErrorFacts, RunFacts, RunStatus, status, to_json
from reconcile.targets.base import Outcome, Result
from tests.support.render import realistic_plan

DOC = Path(__file__).resolve().parents[2] / "docs" / "run-reports.md"
PLAN = realistic_plan()


def facts(**changes: Any) -> RunFacts:
    base: dict[str, Any] = {"command": "apply", "started_at": "2026-01-01T00:00:00.000Z",
                            "finished_at": "2026-01-01T00:00:01.000Z", "seconds": 1.0, "exit_code": 0, "plan": PLAN}
    return RunFacts(**{**base, **changes})


def valid(data: dict[str, Any]) -> dict[str, Any]:
    jsonschema.Draft202012Validator(SCHEMA).validate(data)
    return data


def mixed_result(plan: Plan) -> ApplyResult:
    """Against the 10-action realistic plan: 1 done earlier (not pending), 1 confirmed, 2 done,
    1 already, 1 failed, 4 not run."""
    a = plan.actions
    outcomes = (
        ActionOutcome(a[2], Outcome(Result.DONE, http_status=204, request_id="r-2"), 0.25),
        ActionOutcome(a[3], Outcome(Result.DONE, http_status=204), 0.5),
        ActionOutcome(a[4], Outcome(Result.ALREADY, "already a member", http_status=409), 0.1),
        ActionOutcome(a[5], Outcome(Result.FAILED, "PUT … -> 403: read-only directory", http_status=403), 0.2),
    )
    residual = Plan(target=plan.target, desired_digest=plan.desired_digest, actual_fingerprint="x",
                    actions=(a[5], *a[6:]))
    return ApplyResult(digest=plan.digest, outcomes=outcomes, not_run=a[6:], confirmed=(a[1],), residual=residual,
                       seconds=1.05)


def test_the_schema_is_valid_and_closed() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["additionalProperties"] is False
    assert set(SCHEMA["required"]) == set(SCHEMA["properties"])


def test_every_field_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z_]+)`", text, flags=re.MULTILINE))
    documented |= {n for row in re.findall(r"^\| `([a-z_]+)`, `([a-z_]+)`", text, flags=re.MULTILINE) for n in row}
    apply_fields = SCHEMA["properties"]["apply"]["anyOf"][1]["properties"]
    assert set(SCHEMA["properties"]) <= documented
    assert set(apply_fields) <= documented
    assert {str(s) for s in RunStatus} <= documented
    assert {str(r) for r in ActionResult} <= documented


def test_apply_outcomes_from_every_source() -> None:
    result = mixed_result(PLAN)
    pending = tuple(a.id for a in PLAN.actions[1:])  # the first was done by an earlier apply
    error = ErrorFacts("ActionsFailed", "Apply of plan …: 1 failed")
    data = valid(to_json(facts(result=result, pending=pending, error=error, exit_code=1, approval="digest")))
    assert data["status"] == "failed"
    assert [a["outcome"]["result"] for a in data["actions"]] == [
        "done_earlier", "already", "done", "done", "already", "failed", "not_run", "not_run", "not_run", "not_run"]
    assert data["actions"][2]["outcome"] == {"result": "done", "message": "", "http_status": 204,
                                             "request_id": "r-2", "seconds": 0.25}
    assert data["apply"]["counts"] == {"done": 2, "already": 2, "failed": 1, "not_run": 4, "done_earlier": 1,
                                       "would": 0, "skipped": 0}
    assert data["apply"]["residual_drift"] == [] and data["apply"]["converged"] is False
    [failure] = data["apply"]["failures"]
    assert failure["http_status"] == 403 and "read-only" in failure["message"]
    assert data["summary"]["seats_freed"] == PLAN.seats_freed
    assert [x.get("unsynced", False) for x in data["actions"][-3:]] == [True, True, False]  # as in the plan file


def test_residual_drift_names_what_should_have_been_done() -> None:
    a = PLAN.actions
    result = ApplyResult(digest=PLAN.digest, outcomes=tuple(ActionOutcome(x, Outcome(Result.DONE), 0.0) for x in a),
                         not_run=(), residual=Plan(target=PLAN.target, desired_digest="d", actual_fingerprint="f",
                                                   actions=(a[0],)))
    data = valid(to_json(facts(result=result, pending=tuple(x.id for x in a))))
    assert data["status"] == "applied"
    assert [x["id"] for x in data["apply"]["residual_drift"]] == [a[0].id]
    assert data["apply"]["converged"] is False


@pytest.mark.parametrize(("given", "expected"), [
    ({"command": "plan"}, RunStatus.CHANGES),
    ({"command": "plan", "exit_code": 3}, RunStatus.CHANGES),
    ({"command": "plan", "plan": None, "error": ErrorFacts("ConfigError", "x"), "exit_code": 1}, RunStatus.ERROR),
    ({"command": "plan", "error": ErrorFacts("LimitExceeded", "x", refused=True), "exit_code": 4},
     RunStatus.REFUSED),
    ({"pending": ()}, RunStatus.NO_CHANGES),
    ({"cancelled": True, "exit_code": 1}, RunStatus.CANCELLED),
    ({"error": ErrorFacts("StalePlan", "x", refused=True), "exit_code": 4}, RunStatus.REFUSED),
    ({"error": ErrorFacts("KeyboardInterrupt", "interrupted"), "exit_code": 130}, RunStatus.ERROR),
])
def test_status(given: dict[str, Any], expected: RunStatus) -> None:
    f = facts(**given)
    assert status(f) is expected
    valid(to_json(f))


def test_dry_run_and_limit() -> None:
    a = PLAN.actions
    dry = ApplyResult(digest=PLAN.digest, outcomes=tuple(ActionOutcome(x, Outcome(Result.DONE), 0.0) for x in a[:3]),
                      not_run=a[3:], dry_run=True)
    data = valid(to_json(facts(result=dry, pending=tuple(x.id for x in a))))
    assert data["status"] == "dry_run"
    assert [x["outcome"]["result"] for x in data["actions"]][:4] == ["would", "would", "would", "not_run"]
    limited = ApplyResult(digest=PLAN.digest, outcomes=(ActionOutcome(a[0], Outcome(Result.DONE), 0.0),),
                          not_run=a[1:])
    assert status(facts(result=limited, pending=tuple(x.id for x in a))) is RunStatus.INCOMPLETE


def test_a_plan_report_has_no_outcomes_and_no_apply_section() -> None:
    data = valid(to_json(facts(command="plan", exit_code=3)))
    assert data["apply"] is None and all("outcome" not in a for a in data["actions"])
    assert data["summary"]["total"] == len(PLAN.actions) == sum(data["summary"]["actions"].values())
    assert sum(data["summary"]["warnings"].values()) == len(PLAN.warnings)
