"""The wall clock, read in this one place: the core plans as of the `now` it is given.

`--now` / RECONCILE_NOW (ISO 8601) replaces the wall clock, so plans and validation are replayable.
"""

from __future__ import annotations

from datetime import UTC, datetime

from reconcile.errors import UsageError

NOW_HINT = "write an ISO 8601 time with its zone, e.g. --now 2026-03-01T00:00:00Z, or a date (00:00 UTC)"


def wall_clock() -> datetime:
    """The time a plan is evaluated at when no `--now` is given."""
    return datetime.now(UTC)


def parse_now(text: str) -> datetime:
    """`--now`'s value as an aware UTC datetime; a date alone is its 00:00 UTC. UsageError (exit 2) else."""
    value = text.strip()
    try:
        stamp = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1:] in ("z", "Z") else value)
    except ValueError:
        raise UsageError(f"--now (RECONCILE_NOW): '{text}' is not an ISO 8601 time", hint=NOW_HINT) from None
    if stamp.tzinfo is None:
        if len(value) > 10:  # a time without a zone: which day it is depends on where you are
            raise UsageError(f"--now (RECONCILE_NOW): '{text}' has no time zone", hint=NOW_HINT)
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.astimezone(UTC)


def evaluation_time(given: str | None) -> datetime:
    """The `now` of this run: `--now` (or RECONCILE_NOW) when given, else the wall clock."""
    return wall_clock() if given is None or not given.strip() else parse_now(given)
