"""From a checked record to its settings dataclass: one generic builder instead of one per section.

A `Record` names its dataclass (`Into`); `check_into` proves, at import, that every key lands in a field
and every field has a key, so a misspelt key in the format or in the dataclass fails at once.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, TypeVar

from reconcile.config.nodes import Item, ListOf, MapOf, Node, Nullable
from reconcile.model import Globs

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class Into:
    """Where a record's keys go: `cls`'s fields, by the same name unless `keys` says otherwise.

    `keys`: field -> record keys tried in order, `a.b` for a key of a nested record (the first given
    wins: `token` <- `auth.token`, `auth.token_file`). `convert`: field -> a function of the built value.
    `given`: fields the caller supplies (a source's name); `fixed`: fields no key sets.
    `defaults`: field -> the value an absent key means, instead of the dataclass default (a
    Confluence DC site's `http.concurrency`).
    """

    cls: type[Any]
    keys: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    convert: Mapping[str, Callable[[Any], Any]] = dataclasses.field(default_factory=dict)
    given: tuple[str, ...] = ()
    fixed: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def paths(self, name: str) -> tuple[str, ...]:
        return self.keys.get(name, (name,))


class IntoError(TypeError):
    """A record and its dataclass disagree: a programming error, raised at import."""


def _record_of(node: Node) -> Any:
    """The Record inside `node` (through Nullable), or None."""
    from reconcile.config.records import Record

    inner = node.inner if isinstance(node, Nullable) else node
    return inner if isinstance(inner, Record) else None


def check_into(record: Any) -> None:
    """Raise IntoError unless every key of `record` (and of its nested records) lands in a field of its
    dataclass and every field but the given and fixed ones has a key."""
    into: Into | None = record.into
    if into is None:
        raise IntoError(f"record {record.doc or record.fields.keys()!r} names no dataclass")
    names = {f.name for f in dataclasses.fields(into.cls)}
    for bad in set(into.keys) | set(into.convert) | set(into.given) | set(into.fixed) | set(into.defaults):
        if bad not in names:
            raise IntoError(f"{into.cls.__name__} has no field '{bad}'")
    used: dict[str, set[str]] = {}  # record key -> the keys of its nested record that are used
    for name in sorted(names - set(into.given) - set(into.fixed)):
        for path in into.paths(name):
            head, _, rest = path.partition(".")
            if head not in record.fields:
                raise IntoError(f"{into.cls.__name__}.{name}: the record has no key '{head}'")
            inner = _record_of(record.fields[head])
            if rest:
                if inner is None or rest not in inner.fields:
                    raise IntoError(f"{into.cls.__name__}.{name}: no key '{path}' in the record")
                used.setdefault(head, set()).add(rest)
            else:
                used.setdefault(head, set())
                if inner is not None and inner.into is not None:
                    check_into(inner)
                    used[head] = set(inner.fields)
    for key, node in record.fields.items():
        if key not in used:
            raise IntoError(f"key '{key}' lands in no field of {into.cls.__name__}")
        inner = _record_of(node)
        if inner is not None and used[key] and set(inner.fields) - used[key]:
            missing = sorted(set(inner.fields) - used[key])
            raise IntoError(f"keys {missing} of '{key}' land in no field of {into.cls.__name__}")


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _unoptional(hint: Any) -> Any:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _value(hint: Any, value: Any, node: Node) -> Any:
    """The checked `value` as the field's type says (`hint`)."""
    hint = _unoptional(hint)
    origin = typing.get_origin(hint)
    record = _record_of(node)
    if record is not None and record.into is not None:
        return build(record, record.into.cls, value)
    if hint is Globs:
        return Globs(tuple(i.value for i in value))
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    if hint is float:
        return float(value)
    if origin in (tuple, frozenset):
        (element, *_) = typing.get_args(hint)
        if isinstance(node, MapOf):
            return tuple((k, i.value) for k, i in value.items())
        assert isinstance(node, ListOf)
        make = element if isinstance(element, type) and issubclass(element, Enum) else (lambda v: v)
        return origin(make(i.value) for i in value)
    if origin is not None and issubclass(origin, Mapping):
        return {k: i.value for k, i in value.items()}
    return value


def _blank(hint: Any) -> Any:
    """A stand-in for a required field whose key was invalid: the Config is refused anyway."""
    return "" if _unoptional(hint) is str else None


def _lookup(record: Any, fields: Mapping[str, Item], path: str) -> tuple[Item, Node] | None:
    head, _, rest = path.partition(".")
    item = fields.get(head)
    if item is None or item.value is None:
        return None
    if not rest:
        return item, record.fields[head]
    inner = _record_of(record.fields[head])
    sub = item.value.get(rest)
    return None if sub is None or sub.value is None else (sub, inner.fields[rest])


def build(record: Any, cls: type[T], fields: Mapping[str, Item] | None, **given: Any) -> T:
    """The `cls` value of a checked record: each field from its key, else the dataclass default."""
    into: Into = record.into
    if into is None or into.cls is not cls:
        raise IntoError(f"the record does not build {cls.__name__}")
    hints = _hints(cls)
    kwargs: dict[str, Any] = dict(given)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in into.given or f.name in into.fixed:
            continue
        found = next((hit for p in into.paths(f.name) if (hit := _lookup(record, fields or {}, p))), None)
        if found is not None:
            value = _value(hints[f.name], found[0].value, found[1])
        elif f.name in into.defaults:
            value = into.defaults[f.name]
        elif f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
            continue
        else:
            nested = _record_of(record.fields[into.paths(f.name)[0].partition(".")[0]])
            value = build(nested, nested.into.cls, {}) if nested is not None and nested.into else _blank(
                hints[f.name])
        convert = into.convert.get(f.name)
        kwargs[f.name] = convert(value) if convert is not None and value is not None else value
    return cls(**kwargs)
