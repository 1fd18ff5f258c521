"""Random draws the generated worlds share: memberships spread uniformly over users and groups."""

from __future__ import annotations

import random


def memberships(rng: random.Random, users: int, groups: int, count: int) -> list[list[int]]:
    """`count` distinct (group, user) pairs (at most users x groups), drawn group then user: each group's user
    numbers in the order drawn. Every IdP world draws the same way, so one seed gives the same teams."""
    drawn: list[list[int]] = [[] for _ in range(groups)]
    seen: list[set[int]] = [set() for _ in range(groups)]
    left = min(count, users * groups)
    while left > 0:
        g = int(rng.random() * groups)
        n = int(rng.random() * users)
        if n not in seen[g]:
            seen[g].add(n)
            drawn[g].append(n)
            left -= 1
    return drawn
