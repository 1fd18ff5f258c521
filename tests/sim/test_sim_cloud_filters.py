"""The simulated Organizations users/search filters the split Cloud read relies on: `sortBy` (nick_name,
asc/desc), `claimStatus` x `accountStatus` counts that add up, an account without `claimStatus`.
Every answer is checked against the Organizations document."""

from __future__ import annotations

from tests.sim.test_sim_fidelity import DIR, exchange
from tests.targets.test_cloud_split import mixed_world

COUNT = f"{DIR}/users/count"
SEARCH = f"{DIR}/users/search"


def order(direction: str) -> dict[str, object]:
    return {"sortBy": [{"field": "nick_name", "direction": direction}], "limit": 100}


def test_sort_by_nick_name_orders_both_ways_and_desc_is_the_exact_reverse() -> None:
    world = mixed_world()
    up = {**order("asc"), "claimStatus": "unmanaged", "accountStatus": ["active"]}
    down = {**order("desc"), "claimStatus": "unmanaged", "accountStatus": ["active"]}
    answers, transport = exchange(world, [("POST", SEARCH, up), ("POST", SEARCH, down), ("POST", SEARCH, {})])
    assert [a.status_code for a in answers] == [200, 200, 200]
    asc = [u["accountId"] for u in answers[0].json()["data"]]
    desc = [u["accountId"] for u in answers[1].json()["data"]]
    assert len(asc) == len(desc) == 100 and asc[30:] == desc[::-1][:70]  # 130 users: 70 in both, reversed
    nicks = [u["nickname"].casefold() for u in answers[0].json()["data"]]
    assert nicks == sorted(nicks)
    assert transport.violations == []


def test_a_malformed_sort_by_is_a_documented_400() -> None:
    bad = [{"sortBy": [{"field": "email", "direction": "asc"}]},
           {"sortBy": [{"field": "nick_name", "direction": "up"}]},
           {"sortBy": {"field": "nick_name", "direction": "asc"}}]
    answers, transport = exchange(mixed_world(), [("POST", SEARCH, b) for b in bad])
    assert [a.status_code for a in answers] == [400, 400, 400]
    assert all("sortBy" in a.json()["errors"][0]["detail"] for a in answers)
    assert len(transport.violations) == 3  # the requests break the document; the 400s answering them do not
    assert all(": request: request body $.sortBy" in v for v in transport.violations)


def test_partition_counts_add_up_to_the_total_unless_a_claim_status_is_absent() -> None:
    parts = [f"?claimStatus={c}&accountStatus={a}" for c in ("managed", "unmanaged")
             for a in ("active", "inactive", "closed")]
    for absent, short in ((False, 0), (True, 1)):
        answers, transport = exchange(mixed_world(absent_claim=absent),
                                      [("GET", COUNT, None), *(("GET", COUNT + q, None) for q in parts),
                                       ("POST", SEARCH, {"searchTerm": "nobody"})])
        total, *counts = [a.json()["count"] for a in answers[:-1]]
        assert all(counts) and total - sum(counts) == short
        found = answers[-1].json()["data"]
        assert [("claimStatus" in u) for u in found] == ([False] if absent else [])  # absent, not null
        assert transport.violations == []
