"""bench/idp_timeline.py's summary: both processes' rows matched by path, per kind of request."""

from __future__ import annotations

from bench.idp_timeline import _kind, summary


def test_rows_of_both_processes_are_matched_and_summed_per_kind() -> None:
    reader = {"start": 0.0, "end": 0.100, "rows": [
        {"path": "/entra/v1.0/users?$top=999", "lane": 0.010, "wrote": 0.011, "headers": 0.040, "ret": 0.041},
        {"path": "/entra/v1.0/groups/g1/transitiveMembers?$select=id", "lane": 0.012, "wrote": 0.014,
         "headers": 0.043, "ret": 0.044},
    ]}
    sim = [
        {"path": "/entra/v1.0/users?$top=999", "arrive": 0.0115, "app": 0.0370, "start": 0.0390, "sent": 0.0395},
        {"path": "/entra/v1.0/groups/g1/transitiveMembers?$select=id", "arrive": 0.0145, "app": 0.0400,
         "start": 0.0410, "sent": 0.0412},
    ]
    lines = summary(reader, sim, lanes=8, latency_ms=25.0)
    assert lines[0].startswith("users    n=    1  write   1.0  sim late   0.5  render   2.0")
    assert lines[1].startswith("members  n=    1  write   2.0  sim late   0.5  render   1.0")
    assert lines[1].endswith("lane held  32.0")
    assert lines[2] == "lanes in use 1.85 of 8; 0 of 1 requests reached the simulator within 1 ms of the one before"
    assert lines[3] == "before the first request 10 ms; after the last answer 56 ms; wall 100 ms, 2 requests"


def test_kinds_of_requests_by_path() -> None:
    assert _kind("/okta/api/v1/groups/00g1/users?limit=1000") == "members"
    assert _kind("/okta/api/v1/users?limit=200") == "users"
    assert _kind("/entra/v1.0/groups?$top=999") == "groups"
    assert _kind("/entra/v1.0/groups/g/transitiveMembers") == "members"
    assert _kind("/entra/t/oauth2/v2.0/token") == "token"
