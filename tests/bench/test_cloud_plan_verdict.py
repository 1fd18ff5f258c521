"""The Cloud plan's concurrency row: judged by >= 3x concurrency 1, and by issue 15's fallback (the wall
within 1.2x one unsplit chain's floor) only when the split's longest chain makes 3x unreachable."""

from __future__ import annotations

from typing import Any

import pytest

from bench.report import lines
from bench.runner import floor_row


def run(wall: float, chain: int, requests: int = 1032) -> dict[str, Any]:
    return {"concurrency": 8, "cursor_chain": chain,
            **floor_row(wall=wall, client_cpu=7.0, sim_cpu=2.0, peak_rss_mb=380, requests=requests,
                        floor_s=chain * 0.025, floor_how="chain x latency")}


def verdict(fast_wall: float, slow_wall: float, chain: int, *, same: bool = True) -> tuple[str, str]:
    row = {"name": "plan atlassian-cloud", "target": "atlassian-cloud", "fast": run(fast_wall, chain),
           "concurrency_1": run(slow_wall, chain), "speedup": round(slow_wall / fast_wall, 2),
           "same_plan": same, "single_chain": 1000, "single_chain_floor_s": 25.0}
    line = next(x for x in lines({"plan": [row]}) if "vs concurrency 1" in x.what)
    return line.target, line.verdict


@pytest.mark.parametrize(("case", "rule", "expected"), [
    ((11.0, 34.0, 200, True), ">= 3x", "PASS"),  # 3x met: judged by 3x, whatever the chains
    ((22.5, 34.3, 200, True), ">= 3x", "MISS"),  # a split that could reach 3x (200 <= 1000 / 3) must
    ((22.5, 34.3, 491, True), "1.2x one chain's floor (25.0 s)", "PASS"),  # 491 > 333: 22.5 s <= 30 s
    ((31.0, 34.3, 491, True), "1.2x one chain's floor (25.0 s)", "MISS"),  # slower than 1.2x the chain itself
    ((22.5, 34.3, 491, False), "1.2x one chain's floor", "MISS"),  # never with a different plan
])
def test_the_fallback_applies_only_where_no_split_reaches_3x(
        case: tuple[float, float, int, bool], rule: str, expected: str) -> None:
    fast, slow, chain, same = case
    target, result = verdict(fast, slow, chain, same=same)
    assert rule in target and result == expected
    assert ("unreachable" in target) == (chain * 3 > 1000 and slow / fast < 3)
