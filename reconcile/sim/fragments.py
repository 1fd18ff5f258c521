"""Pre-encoded JSON of simulated objects (the IdP simulators' users, groups and members), reused across pages
and encoded again only when the object's fields change, so a 100,000-user page walk encodes each user once.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from itertools import compress, repeat
from operator import is_, is_not, itemgetter, ne
from typing import Any, TypeVar

from reconcile.sim.jsonbody import Raw, dumps

K = TypeVar("K", bound=Hashable)
_VERSION, _RAW = itemgetter(0), itemgetter(1)  # of a cached (version, fragment)
_ABSENT = object()  # the version of a row not cached: equal to no version
_MISSING: tuple[Any, Raw] = (_ABSENT, Raw(b"null"))


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

    def many(self, scope: Hashable, items: Sequence[K], version: Callable[[K], Hashable] | None,
             render: Callable[[K], Any], key: Callable[[K], Hashable] | None = None) -> list[Raw]:
        """`get` of each item of a page at once, in a table of its own per `scope` (a base URL, a `$select`),
        keyed by the item itself or by `key(item)`: no key tuple, bound method or closure per object, and
        `render(item)` called only for a missing or stale one. `version` None: what `render` shows depends on
        the key alone (a row of ids), so a cached row is never stale and no version is computed per item.
        A C callable (`attrgetter`, a dict's `__getitem__`) as `key` or `version` keeps a page's walk in C."""
        keys = items if key is None else list(map(key, items))
        return self.rows(scope, items, keys, None if version is None else list(map(version, items)), render)

    def rows(self, scope: Hashable, items: Sequence[K], keys: Sequence[Hashable], versions: list[Any] | None,
             render: Callable[[K], Any]) -> list[Raw]:
        """`many` with each item's key and version given (lists made by the caller in C, `versions[i]` of
        `items[i]`): which rows are missing or stale is told with a few passes in C (the same version object
        first, then equality), and only those take a Python step, not every row of a page."""
        table: dict[Hashable, tuple[Any, Raw]] | None = self._scopes.get(scope)
        if table is None:
            table = self._scopes[scope] = {}
        hits: list[tuple[Any, Raw]] = list(map(table.get, keys, repeat(_MISSING)))
        cached = list(map(_VERSION, hits))
        if versions is None:  # rows of ids: a row is stale only when missing
            stale: Iterable[int] = compress(range(len(hits)), map(is_, cached, repeat(_ABSENT)))
        else:  # the same version object, else an equal one (a tuple of fields), told in C row by row
            maybe = list(compress(range(len(hits)), map(is_not, cached, versions)))
            stale = compress(maybe, map(ne, map(cached.__getitem__, maybe), map(versions.__getitem__, maybe)))
        for i in stale:  # the missing and changed rows alone take a Python step
            now = None if versions is None else versions[i]
            hit = table.get(keys[i], _MISSING)  # an earlier row of this page may have rendered it just now
            if hit[0] is _ABSENT or (versions is not None and hit[0] is not now and hit[0] != now):
                hit = table[keys[i]] = (now, Raw(dumps(render(items[i]))))
            hits[i] = hit
        return list(map(_RAW, hits))

    def clear(self) -> None:
        self._items.clear()
        self._scopes.clear()
