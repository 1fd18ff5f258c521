"""`--now` / RECONCILE_NOW: the one `now` of a run (reconcile.cli.clock), parsed strictly, given to load()."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import Result

from reconcile.cli.clock import evaluation_time, parse_now
from reconcile.errors import UsageError
from tests.support.cli import make_cli, reconcile

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [ROOT / "desired" / "examples" / name for name in ("reclaim-dc", "reclaim-cloud")]


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return reconcile(*args, env={"NO_COLOR": "1", "RECONCILE_NOW": None, **(env or {})})


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
    ("2026-03-01T00:00:00Z", datetime(2026, 3, 1, tzinfo=UTC)),
    ("2026-03-01T01:30:00+01:00", datetime(2026, 3, 1, 0, 30, tzinfo=UTC)),
    (" 2026-03-01T00:00:00.5z ", datetime(2026, 3, 1, 0, 0, 0, 500000, tzinfo=UTC)),
])
def test_now_parses_iso_8601_into_utc(text: str, expected: datetime) -> None:
    assert parse_now(text) == expected
    assert parse_now(text).tzinfo is UTC
    assert evaluation_time(text) == expected


@pytest.mark.parametrize(("text", "why"), [("yesterday", "is not an ISO 8601 time"),
                                           ("2026-02-30", "is not an ISO 8601 time"),
                                           ("2026-03-01T10:00", "has no time zone")])
def test_a_bad_now_is_a_usage_error(text: str, why: str) -> None:
    with pytest.raises(UsageError, match=why):
        parse_now(text)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_the_reclaim_examples_validate_as_of_a_given_day(example: Path) -> None:
    ok = run("--now", "2026-12-01", "validate", "--desired", str(example))
    assert ok.exit_code == 0, ok.output
    assert f"{example}: valid (2 file(s)" in ok.output
    # a year earlier their exemptions run too far ahead: the horizon follows --now (written after the
    # command, or as RECONCILE_NOW), not the wall clock
    for early in (run("validate", "--desired", str(example), "--now", "2025-12-01"),
                  run("validate", "--desired", str(example), env={"RECONCILE_NOW": "2025-12-01T00:00:00Z"})):
        assert early.exit_code == 1, early.output
        assert "exemptions[0].until:" in early.output and "ahead of 2025-12-01, more than the 365 allowed" \
            in early.output


def test_a_bad_now_stops_validate_and_plan_with_one_line(tmp_path: Path) -> None:
    result = run("validate", "--desired", str(EXAMPLES[0]), "--now", "soon")
    assert result.exit_code == 2
    assert result.output.splitlines()[0] == "Error: --now (RECONCILE_NOW): 'soon' is not an ISO 8601 time"
    cli = make_cli(tmp_path)
    planned = cli("plan", env={"RECONCILE_NOW": "2026-03-01T10:00"})
    assert planned.exit_code == 2, planned.output
    assert "Error: --now (RECONCILE_NOW): '2026-03-01T10:00' has no time zone" in planned.output
    assert cli("plan", "--now", "2026-03-01T00:00:00Z").exit_code == 0
