"""Declarative node types of the desired-file format: the base, and the containers (lists, maps).

Each node checks one YAML value (recording every problem with its position) and describes itself
as JSON Schema, so the loader and the published schema are one declaration and cannot drift apart.
"""

from __future__ import annotations

import difflib
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconcile.model import Location

ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_ENV_REF = re.compile(r"\$\{(" + ENV_NAME + r")\}")
_BAD_REF = re.compile(r"\$\{(?!" + ENV_NAME + r"\})")  # a `${` that does not start a reference


class Invalid:
    """The result of a check that recorded a problem."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID = Invalid()


@dataclass(frozen=True, slots=True)
class Item:
    """A checked value with where it was written (`key_loc`: its key; `loc`: the value)."""

    value: Any
    loc: Location
    key_loc: Location


Fields = dict[str, Item]


@dataclass(slots=True)
class Context:
    """What checking one file needs: its name, the environment, the directory, the problem list.

    `require_env=False` (plain `validate`, a pre-commit hook without tokens): a `${VAR}` that is not
    set is not a problem; its value is not checked, and its name is collected in `unset`.
    """

    file: str
    env: Mapping[str, str]
    directory: Path
    problems: list[tuple[Location, str]] = field(default_factory=list)
    require_env: bool = True
    unset: dict[str, None] = field(default_factory=dict)  # names, in order of appearance

    def problem(self, loc: Location, message: str) -> Invalid:
        self.problems.append((loc, message))
        return INVALID


@dataclass(frozen=True, slots=True)
class At:
    """Where a value is: its dotted path for messages, its own and its key's position."""

    path: str
    loc: Location
    key_loc: Location

    def child(self, name: str, loc: Location, key_loc: Location) -> At:
        return At(f"{self.path}.{name}" if self.path else name, loc, key_loc)


def lc(node: Any) -> Any:
    """ruamel's line/column record of a round-trip mapping or sequence (0-based)."""
    return node.lc


def position(ctx: Context, line: int, col: int) -> Location:
    return Location(ctx.file, line + 1, col + 1)


def kind_of(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, Sequence):
        return "a list"
    return type(value).__name__


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.7)
    if close:
        return f"did you mean '{close[0]}'?"
    return "allowed: " + ", ".join(choices)


def unknown_value(value: Any, choices: Sequence[str]) -> str:
    """`unknown value 'x'; did you mean 'y'? (allowed: ...)` for an enum-like value."""
    allowed = "allowed: " + ", ".join(choices)
    if not isinstance(value, str):
        return f"unknown value {kind_of(value)}; {allowed}"
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.7)
    if close:
        return f"unknown value '{value}'; did you mean '{close[0]}'? ({allowed})"
    return f"unknown value '{value}'; {allowed}"


def reference_syntax(text: str, at: At, ctx: Context) -> Invalid | None:
    """A problem for a `${` that is not a well-formed `${NAME}` reference, else None."""
    if _BAD_REF.search(text):
        return ctx.problem(at.loc, f"{at.path}: malformed reference: write ${{NAME}} (letters, digits and _, "
                           "not starting with a digit)")
    return None


def deferred(text: str, ctx: Context) -> bool:
    """Whether `text` names a variable that is not set and need not be (its value goes unchecked)."""
    if ctx.require_env:
        return False
    missing = [m.group(1) for m in _ENV_REF.finditer(text) if m.group(1) not in ctx.env]
    ctx.unset.update(dict.fromkeys(missing))
    return bool(missing)


def expand(text: str, at: At, ctx: Context) -> str | Invalid:
    """Replace every `${VAR}` with its value; a variable that is not set is a problem."""
    missing = [m.group(1) for m in _ENV_REF.finditer(text) if m.group(1) not in ctx.env]
    if missing:
        for name in dict.fromkeys(missing):
            ctx.problem(at.loc, f"{at.path}: environment variable {name} is not set; export it, "
                        "or change the reference")
        return INVALID
    return _ENV_REF.sub(lambda m: ctx.env[m.group(1)], text)


class Node(ABC):
    """One kind of value in the format."""

    def __init__(self, doc: str = "", default: Any = None) -> None:
        self.doc = doc
        self.default = default

    @abstractmethod
    def check(self, value: Any, at: At, ctx: Context) -> Any:
        """The checked value, or INVALID after recording a problem."""

    @abstractmethod
    def own_schema(self) -> dict[str, Any]: ...

    def schema(self) -> dict[str, Any]:
        out = self.own_schema()
        if self.doc:
            out["description"] = self.doc
        if self.default is not None:
            out["default"] = self.default
        return out


class Nullable(Node):
    """`key:` with nothing after it is allowed and means "empty"."""

    def __init__(self, inner: Node) -> None:
        super().__init__(inner.doc)
        self.inner = inner

    def check(self, value: Any, at: At, ctx: Context) -> Any:
        return None if value is None else self.inner.check(value, at, ctx)

    def own_schema(self) -> dict[str, Any]:
        inner = self.inner.schema()
        inner.pop("description", None)
        return {"anyOf": [{"type": "null"}, inner]}


class ListOf(Node):
    def __init__(self, item: Node, doc: str = "", default: Any = None, *, min_items: int = 0) -> None:
        super().__init__(doc, default)
        self.item = item
        self.min_items = min_items

    def check(self, value: Any, at: At, ctx: Context) -> Any:
        if not isinstance(value, list):
            return ctx.problem(at.loc, f"{at.path}: expected a list, got {kind_of(value)}")
        if len(value) < self.min_items:
            return ctx.problem(at.loc, f"{at.path}: give at least {self.min_items} item"
                               f"{'s' if self.min_items != 1 else ''}")
        out: list[Item] = []
        for i, element in enumerate(value):
            line, col = lc(value).item(i)
            loc = position(ctx, line, col)
            checked = self.item.check(element, At(f"{at.path}[{i}]", loc, loc), ctx)
            if not isinstance(checked, Invalid):
                out.append(Item(checked, loc, loc))
        return out

    def own_schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "array", "items": self.item.schema()}
        if self.min_items:
            out["minItems"] = self.min_items
        return out


def _entries(value: Any, at: At, ctx: Context) -> list[tuple[str, Any, Location, Location]] | Invalid:
    """(key, value, value position, key position) of a YAML mapping; non-string keys are problems."""
    if not isinstance(value, Mapping):
        return ctx.problem(at.loc, f"{at.path or 'the file'}: expected a mapping, got {kind_of(value)}")
    out = []
    for key, element in value.items():
        kline, kcol = lc(value).key(key)
        key_loc = position(ctx, kline, kcol)
        if element is None:
            loc = key_loc  # ruamel points a null value at the next line
        else:
            vline, vcol = lc(value).value(key)
            loc = position(ctx, vline, vcol)
        if not isinstance(key, str):
            ctx.problem(key_loc, f"{at.path or 'the file'}: key {key!r} is {kind_of(key)}; quote it")
            continue
        out.append((str(key), element, loc, key_loc))
    return out


class MapOf(Node):
    """A mapping whose keys the user chooses (user keys, group names, source names)."""

    def __init__(self, key: Node, value: Node, doc: str = "") -> None:
        super().__init__(doc)
        self.key = key
        self.value = value

    def check(self, value: Any, at: At, ctx: Context) -> Any:
        entries = _entries(value, at, ctx)
        if isinstance(entries, Invalid):
            return entries
        out: dict[str, Item] = {}
        for key, element, loc, key_loc in entries:
            name = self.key.check(key, At(at.path, key_loc, key_loc), ctx)
            checked = self.value.check(element, at.child(key, loc, key_loc), ctx)
            if not isinstance(name, Invalid) and not isinstance(checked, Invalid):
                out[key] = Item(checked, loc, key_loc)
        return out

    def own_schema(self) -> dict[str, Any]:
        key = self.key.schema()
        key.pop("type", None)
        key.pop("description", None)
        return {"type": "object", "propertyNames": key, "additionalProperties": self.value.schema()}
