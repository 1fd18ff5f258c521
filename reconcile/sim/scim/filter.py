"""SCIM filters (RFC 7644 §3.4.2.2) as predicates over a resource's JSON: `attrPath op value`, `pr`, `and`/`or`/
`not (...)`, parentheses and value paths (`emails[type eq "work"]`); strings compare case-insensitively.

`parse(text, known)` raises FilterError (the server's 400 `invalidFilter`) on bad syntax or an unknown attribute.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]
OPERATORS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<punct>[()\[\]])|(?P<word>[^\s()\[\]"]+))')
_ABSENT = object()


class FilterError(ValueError):
    """A filter the server rejects: the `detail` of its 400 `invalidFilter` answer."""


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            if text[pos:].strip():
                raise FilterError(f"cannot read the filter at character {pos + 1}: {text[pos:pos + 20]!r}")
            break
        out.append(match.group(match.lastgroup or "word"))
        pos = match.end()
    return out


def _values(node: Any, parts: Sequence[str]) -> list[Any]:
    """Every value at `parts` below `node` (attribute names case-insensitive; multi-valued attributes flattened)."""
    if not parts:
        return [v for item in node for v in ([item] if item is not None else [])] if isinstance(node, list) \
            else ([] if node is None else [node])
    items = node if isinstance(node, list) else [node]
    out: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            key = next((k for k in item if k.lower() == parts[0]), None)
            if key is not None:
                out += _values(item[key], parts[1:])
    return out


def _compare(op: str, actual: Any, wanted: Any) -> bool:
    if isinstance(actual, str) and isinstance(wanted, str):
        actual, wanted = actual.lower(), wanted.lower()
    elif isinstance(actual, bool) != isinstance(wanted, bool):
        return op == "ne"
    if op == "eq":
        return bool(actual == wanted)
    if op == "ne":
        return bool(actual != wanted)
    if op in ("co", "sw", "ew"):
        if not (isinstance(actual, str) and isinstance(wanted, str)):
            return False
        return wanted in actual if op == "co" else actual.startswith(wanted) if op == "sw" else actual.endswith(wanted)
    try:
        return bool({"gt": actual > wanted, "ge": actual >= wanted, "lt": actual < wanted, "le": actual <= wanted}[op])
    except TypeError:
        return False


class _Parser:
    def __init__(self, tokens: list[str], known: frozenset[str]) -> None:
        self.tokens, self.pos, self.known = tokens, 0, known
        self.scope: tuple[str, ...] = ()  # inside a value path: the attribute its filter is about

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise FilterError("the filter ends too early")
        self.pos += 1
        return token

    def expect(self, token: str) -> None:
        got = self.take()
        if got != token:
            raise FilterError(f"expected {token!r}, found {got!r}")

    def filter(self) -> Predicate:
        parts = [self.conjunction()]
        while (self.peek() or "").lower() == "or":
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else lambda r: any(p(r) for p in parts)

    def conjunction(self) -> Predicate:
        parts = [self.factor()]
        while (self.peek() or "").lower() == "and":
            self.take()
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else lambda r: all(p(r) for p in parts)

    def factor(self) -> Predicate:
        token = self.take()
        if token == "(":
            inner = self.filter()
            self.expect(")")
            return inner
        if token.lower() == "not":
            self.expect("(")
            inner = self.filter()
            self.expect(")")
            return lambda r: not inner(r)
        path = tuple(token.lower().split("."))
        if self.peek() == "[":  # a value path: a filter over the items of a multi-valued attribute
            self.take()
            self._check(path, sub=True)
            outer, self.scope = self.scope, path
            inner = self.filter()
            self.scope = outer
            self.expect("]")
            return lambda r: any(inner(item) for item in _values(r, path) if isinstance(item, dict))
        self._check(path)
        op = self.take().lower()
        if op == "pr":
            return lambda r: any(v not in ("", [], {}) for v in _values(r, path))
        if op not in OPERATORS:
            raise FilterError(f"{op!r} is not a SCIM comparison operator")
        wanted = self._value(self.take())
        return lambda r: any(_compare(op, v, wanted) for v in _values(r, path))

    def _check(self, path: tuple[str, ...], sub: bool = False) -> None:
        name = ".".join((*self.scope, *path))
        if self.known and name not in self.known and not (sub and any(k.startswith(name + ".") for k in self.known)):
            raise FilterError(f"unknown attribute: {name}")

    @staticmethod
    def _value(token: str) -> Any:
        if token.startswith('"'):
            return re.sub(r"\\(.)", r"\1", token[1:-1])
        lowered = token.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if lowered == "null":
            return None
        try:
            return float(token) if "." in token else int(token)
        except ValueError:
            raise FilterError(f"{token!r} is not a SCIM value (quote strings)") from None


def parse(text: str, known: frozenset[str] = frozenset()) -> Predicate:
    """The predicate of filter `text`; `known`: the lower-case attribute paths it may name (empty: any)."""
    parser = _Parser(_tokens(text), known)
    if not parser.tokens:
        raise FilterError("the filter is empty")
    predicate = parser.filter()
    if parser.peek() is not None:
        raise FilterError(f"unexpected {parser.peek()!r} in the filter")
    return predicate
