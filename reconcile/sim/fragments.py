"""Pre-encoded JSON of simulated objects (the IdP simulators' users, groups and members), reused across pages
and encoded again only when the object's fields change, so a 100,000-user page walk encodes each user once.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from reconcile.sim.jsonbody import Raw, dumps


class Fragments:
    """`get(key, version, render)`: the JSON of `render()` as a `Raw` fragment, cached under `key` while
    `version` (the frozen object itself, or a tuple of a mutable one's fields) is unchanged: a mutation
    re-renders, a page never serves a stale object."""

    def __init__(self) -> None:
        self._items: dict[Hashable, tuple[Hashable, Raw]] = {}

    def get(self, key: Hashable, version: Hashable, render: Callable[[], Any]) -> Raw:
        hit = self._items.get(key)
        if hit is not None and (hit[0] is version or hit[0] == version):
            return hit[1]
        raw = Raw(dumps(render()))
        self._items[key] = (version, raw)
        return raw

    def clear(self) -> None:
        self._items.clear()
