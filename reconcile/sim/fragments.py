"""Pre-encoded JSON of simulated objects (the IdP simulators' users, groups and members), reused across pages
and encoded again only when the object's fields change, so a 100,000-user page walk encodes each user once.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

from reconcile.sim.jsonbody import Raw, dumps

K = TypeVar("K", bound=Hashable)


class Fragments:
    """`get(key, version, render)`: the JSON of `render()` as a `Raw` fragment, cached under `key` while
    `version` (the frozen object itself, or a tuple of a mutable one's fields) is unchanged: a mutation
    re-renders, a page never serves a stale object."""

    def __init__(self) -> None:
        self._items: dict[Hashable, tuple[Hashable, Raw]] = {}
        self._scopes: dict[Hashable, dict[Hashable, tuple[Hashable, Raw]]] = {}

    def get(self, key: Hashable, version: Hashable, render: Callable[[], Any]) -> Raw:
        hit = self._items.get(key)
        if hit is not None and (hit[0] is version or hit[0] == version):
            return hit[1]
        raw = Raw(dumps(render()))
        self._items[key] = (version, raw)
        return raw

    def many(self, scope: Hashable, items: Iterable[K], version: Callable[[K], Hashable] | None,
             render: Callable[[K], Any], key: Callable[[K], Hashable] | None = None) -> list[Raw]:
        """`get` of each item of a page at once, in a table of its own per `scope` (a base URL, a `$select`),
        keyed by the item itself or by `key(item)`: no key tuple, bound method or closure per object, and
        `render(item)` called only for a missing or stale one. `version` None: what `render` shows depends on
        the key alone (a row of ids), so a cached row is never stale and no version is computed per item."""
        table = self._scopes.get(scope)
        if table is None:
            table = self._scopes[scope] = {}
        hit_of = table.get
        out: list[Raw] = []
        append = out.append
        if version is None:
            for item in items:
                name = item if key is None else key(item)
                hit = hit_of(name)
                if hit is None:
                    hit = table[name] = (None, Raw(dumps(render(item))))
                append(hit[1])
            return out
        for item in items:
            name = item if key is None else key(item)
            now = version(item)
            hit = hit_of(name)
            if hit is not None and (hit[0] is now or hit[0] == now):
                append(hit[1])
            else:
                raw = Raw(dumps(render(item)))
                table[name] = (now, raw)
                append(raw)
        return out

    def clear(self) -> None:
        self._items.clear()
        self._scopes.clear()
