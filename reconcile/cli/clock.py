"""The wall clock, read in this one place: the core plans as of the `now` it is given."""

from __future__ import annotations

from datetime import UTC, datetime


def wall_clock() -> datetime:
    """The time a plan is evaluated at (issue 14's `--now` will be read here instead)."""
    return datetime.now(UTC)
