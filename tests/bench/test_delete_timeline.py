"""bench/delete_timeline.py: the split of each deletion's time, on a made-up timeline and on a real run."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.delete_timeline import breakdown, measure


def test_the_time_between_tasks_is_split_at_the_poll_that_sees_the_finish() -> None:
    rows = [
        {"method": "DELETE", "path": "/rest/api/admin/user/a", "arrived": 0.975, "handled": 1.0, "status": 202},
        {"method": "GET", "path": "/rest/api/longtask/1", "arrived": 1.224, "handled": 1.249, "finished": False},
        {"method": "GET", "path": "/rest/api/longtask/1", "arrived": 1.227, "handled": 1.252, "finished": True},
        {"method": "GET", "path": "/rest/api/longtask/1", "arrived": 1.229, "handled": 1.254, "finished": True},
        {"method": "DELETE", "path": "/rest/api/admin/user/b", "arrived": 1.255, "handled": 1.281, "status": 202},
    ]
    out = breakdown(rows, 0.25)
    assert out["deletions"] == 2 and out["polls"] == 3 and out["polls_before_finish_per_deletion"] == 1
    assert out["poll_late_ms"]["mean"] == pytest.approx(2.0)
    assert out["turnaround_ms"]["mean"] == pytest.approx(3.0)
    assert out["latency_ms"]["mean"] == pytest.approx(26.0)
    assert out["between_ms"]["mean"] == pytest.approx(31.0)  # the three parts add up


def test_a_small_run_is_serialized_and_every_deletion_is_seen_finished_before_the_next(tmp_path: Path) -> None:
    out = measure(3, 0.05, 2.0, tmp_path)
    assert out["violations"] == 0 and out["deletions"] == 3
    assert out["poll_late_ms"]["median"] >= 0 and out["turnaround_ms"]["median"] >= 0
