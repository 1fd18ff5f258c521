"""Parse one YAML document into dicts, lists and scalars that remember where each key, value and item
was written (`.lc`, as ruamel's round-trip types do), following the YAML 1.2 core schema.

Events come from ruamel.yaml's C parser (libyaml, `ruamel.yaml.clib`) when it is installed, else from
its pure-Python parser: the round-trip loader took 100 s for 100,000 users, this takes a few.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, StreamMark
from ruamel.yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

try:
    from ruamel.yaml.cyaml import CParser  # type: ignore[attr-defined, unused-ignore]

    FAST = True
except ImportError:  # pragma: no cover - depends on the installation
    FAST = False

Position = tuple[int, int]  # 0-based line, column


class Positions:
    """Where the keys, values and items of one mapping or sequence are (ruamel's `lc` interface)."""

    __slots__ = ("_keys", "_values", "col", "line")

    def __init__(self, mark: StreamMark) -> None:
        self.line, self.col = mark.line, mark.column
        self._keys: dict[Any, Position] = {}
        self._values: dict[Any, Position] = {}

    def key(self, key: Any) -> Position:
        return self._keys[key]

    def value(self, key: Any) -> Position:
        return self._values[key]

    def item(self, index: int) -> Position:
        return self._values[index]


class YamlMap(dict[Any, Any]):
    lc: Positions


class YamlList(list[Any]):
    lc: Positions


class YamlProblem(MarkedYAMLError):
    """A problem found while composing (duplicate key, second document, unsupported tag)."""


_TAG = "tag:yaml.org,2002:"
# Every plain scalar that is not a string under the YAML 1.2 core schema, one group per kind.
_SPECIAL = re.compile(
    r"^(?:(~|null|Null|NULL)|(true|True|TRUE)|(false|False|FALSE)|([-+]?[0-9]+)|0o([0-7]+)|0x([0-9a-fA-F]+)"
    r"|([-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?)|([-+]?\.(?:inf|Inf|INF))|(\.(?:nan|NaN|NAN)))$"
)
_MAYBE_NOT_STR = frozenset("~nNtTfF0123456789+-.")


def plain(text: str) -> Any:
    """The value of a plain (unquoted, untagged) scalar under the YAML 1.2 core schema."""
    if not text:
        return None
    if text[0] not in _MAYBE_NOT_STR:  # most scalars: names, emails, globs
        return text
    m = _SPECIAL.match(text)
    if m is None:
        return text
    kind = m.lastindex or 0
    token = m.group(kind)
    if kind <= 3:
        return (None, True, False)[kind - 1]
    if kind <= 6:
        return int(token, (10, 8, 16)[kind - 4])
    if kind == 7:
        return float(token)
    if kind == 8:
        return -math.inf if token.startswith("-") else math.inf
    return math.nan


def load(text: str, duplicates: list[YamlProblem] | None = None) -> Any:
    """The one document in `text` (None when empty); raises MarkedYAMLError with positions.

    A duplicate key is raised too, unless `duplicates` is given: then it is appended there, the
    first value is kept, and the rest of the file is still read (so its other problems show).

    libyaml is a YAML 1.1 parser, stricter in places (`{url: https://x}` is an error there): when it
    refuses a file, ruamel's YAML 1.2 parser decides, and its message is the one reported.
    """
    if FAST:
        try:
            return _Composer(_libyaml_events(text), duplicates).document()
        except YamlProblem:
            raise
        except MarkedYAMLError:
            pass
    if duplicates:
        duplicates.clear()  # the libyaml attempt failed: the second composition finds them again
    return _Composer(iter(YAML(typ="safe", pure=True).parse(text)), duplicates).document()


def _libyaml_events(text: str) -> Iterator[Event]:
    parser = CParser(text)
    try:
        while True:
            event = parser.get_event()
            yield event
            if isinstance(event, StreamEndEvent):
                return
    finally:
        parser.dispose()


class _Composer:
    def __init__(self, events: Iterator[Event], duplicates: list[YamlProblem] | None = None) -> None:
        self.events = events
        self.duplicates = duplicates
        self.anchors: dict[str, Any] = {}

    def document(self) -> Any:
        value = None
        seen = False
        for event in self.events:
            if isinstance(event, DocumentStartEvent):
                if seen:
                    raise YamlProblem("expected a single document in the file", None,
                                      "but found another document (---); write one document per file",
                                      event.start_mark)
                seen = True
                value = self.node(next(self.events))
        return value

    def node(self, event: Event) -> Any:
        if isinstance(event, AliasEvent):
            if event.anchor not in self.anchors:
                raise YamlProblem(None, None, f"found undefined alias '*{event.anchor}'", event.start_mark)
            return self.anchors[event.anchor]
        if isinstance(event, ScalarEvent):
            value = self.scalar(event)
        elif isinstance(event, SequenceStartEvent):
            value = self.sequence(event)
        elif isinstance(event, MappingStartEvent):
            value = self.mapping(event)
        else:  # pragma: no cover - the parser only emits nodes here
            raise YamlProblem(None, None, f"unexpected {type(event).__name__}", event.start_mark)
        if getattr(event, "anchor", None):
            self.anchors[event.anchor] = value
        return value

    def scalar(self, event: ScalarEvent) -> Any:
        tag = event.tag
        if tag in (None, "!"):
            return plain(event.value) if event.implicit[0] and not event.style else event.value
        if tag == _TAG + "str":
            return event.value
        if tag in (_TAG + "int", _TAG + "float", _TAG + "bool", _TAG + "null"):
            return plain(event.value)
        raise YamlProblem(None, None, f"unsupported tag {tag}; remove it", event.start_mark)

    def sequence(self, start: SequenceStartEvent) -> YamlList:
        out = YamlList()
        out.lc = Positions(start.start_mark)
        for event in self.events:
            if isinstance(event, SequenceEndEvent):
                break
            out.lc._values[len(out)] = (event.start_mark.line, event.start_mark.column)
            out.append(self.node(event))
        return out

    def mapping(self, start: MappingStartEvent) -> YamlMap:
        out = YamlMap()
        out.lc = Positions(start.start_mark)
        merges: list[Any] = []
        for event in self.events:
            if isinstance(event, MappingEndEvent):
                break
            key = self.node(event)
            value_event = next(self.events)
            value = self.node(value_event)
            if key == "<<" and isinstance(event, ScalarEvent) and not event.style:
                merges.append(value)
                continue
            if isinstance(key, YamlMap | YamlList):
                raise YamlProblem(None, None, "a mapping or list cannot be a key", event.start_mark)
            if key in out:
                line, col = out.lc._keys[key]
                problem = YamlProblem(None, None, f"duplicate key '{key}' in this mapping (first at line "
                                      f"{line + 1}, column {col + 1}); write each key once", event.start_mark)
                if self.duplicates is None:
                    raise problem
                self.duplicates.append(problem)
                continue
            out[key] = value
            out.lc._keys[key] = (event.start_mark.line, event.start_mark.column)
            out.lc._values[key] = (value_event.start_mark.line, value_event.start_mark.column)
        for merge in merges:  # `<<: *defaults`: keys written here win over merged ones
            for source in merge if isinstance(merge, list) else [merge]:
                if not isinstance(source, YamlMap):
                    raise YamlProblem(None, None, "'<<' merges only mappings", start.start_mark)
                for key, value in source.items():
                    if key not in out:
                        out[key] = value
                        out.lc._keys[key] = source.lc._keys[key]
                        out.lc._values[key] = source.lc._values[key]
        return out
