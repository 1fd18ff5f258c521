"""A registry of `type:` words (source types, target types): each declares, in one place, its schema
node, its settings dataclass and the factory that builds it. An unknown type is an error, never a default.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from reconcile.config.into import build, check_into
from reconcile.config.nodes import Fields, Item
from reconcile.config.records import Record
from reconcile.errors import ConfigError
from reconcile.model import Location

Problems = list[tuple[Location, str]]
S = TypeVar("S")  # the settings dataclass
P = TypeVar("P")  # what the factory builds (a Source, a Target)


@dataclass(frozen=True, slots=True)
class Kind(Generic[S, P]):
    """One `type:`: its record (without `type`, which the registry adds), settings class and factory.

    `check` adds problems that span keys (e.g. LDAP's `start_tls` with an ldaps:// URL).
    """

    name: str
    schema: Record
    settings: type[S]
    factory: Callable[..., P]
    check: Callable[[str, Fields, Problems], None] | None = None

    def build(self, fields: Fields, **given: Any) -> S:
        return build(self.schema, self.settings, fields, **given)

    def open(self, config: object, *args: Any, **kwargs: Any) -> P:
        """The factory's product for `config`, which must be this kind's settings."""
        if not isinstance(config, self.settings):
            raise TypeError(f"{self.name}: expected {self.settings.__name__}, got {type(config).__name__}")
        return self.factory(config, *args, **kwargs)


class Registry(Generic[P]):
    """The kinds of one family (`source`, `target`), in registration order (the schema's `type` enum)."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._kinds: dict[str, Kind[Any, P]] = {}

    def register(self, kind: Kind[Any, P]) -> Kind[Any, P]:
        """Add `kind`; its record gets `type: <name>` as first key and is checked against its dataclass."""
        if kind.name in self._kinds:
            raise ValueError(f"{self.family} type '{kind.name}' is already registered")
        tagged = Kind(kind.name, kind.schema.tagged(kind.name), kind.settings, kind.factory, kind.check)
        if tagged.schema.into is None or tagged.schema.into.cls is not kind.settings:
            raise TypeError(f"{self.family} type '{kind.name}': its record does not build {kind.settings.__name__}")
        check_into(tagged.schema)
        self._kinds[kind.name] = tagged
        return tagged

    @contextmanager
    def registered(self, kind: Kind[Any, P]) -> Iterator[Kind[Any, P]]:
        """`kind` registered for the duration of a `with` block (tests, plug-ins)."""
        tagged = self.register(kind)
        try:
            yield tagged
        finally:
            del self._kinds[kind.name]

    def names(self) -> tuple[str, ...]:
        return tuple(self._kinds)

    def schemas(self) -> Mapping[str, Record]:
        return {name: kind.schema for name, kind in self._kinds.items()}

    def get(self, name: object) -> Kind[Any, P]:
        """The kind named `name`; ConfigError naming the known ones otherwise."""
        kind = self._kinds.get(name) if isinstance(name, str) else None
        if kind is None:
            raise ConfigError([f"unknown {self.family} type {name!r}; known: {', '.join(self._kinds)}"])
        return kind

    def kind_of(self, fields: Fields) -> Kind[Any, P] | None:
        """The kind a checked record's `type:` names (None when the loader already refused it)."""
        item: Item | None = fields.get("type")
        return None if item is None else self._kinds.get(item.value)
