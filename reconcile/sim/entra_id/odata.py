"""Graph's OData query options as the directory serves them: `$filter` (a subset), `$select`, `$top`, the
`$skiptoken` of `@odata.nextLink`, and Graph's error body."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_TOP = 999
DEFAULT_TOP = 100

Item = Mapping[str, Any]
Predicate = Callable[[Item], bool]


@dataclass(frozen=True, slots=True)
class GraphError(Exception):
    """An answer in Graph's error format: `{"error": {"code", "message", "innerError"}}`."""

    status: int
    code: str
    message: str


def unsupported(prop: str, resource: str) -> GraphError:
    return GraphError(400, "Request_UnsupportedQuery",
                      f"Unsupported or invalid query filter clause specified for property '{prop}' of resource "
                      f"'{resource}'.")


_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<open>\()|(?P<close>\))|(?P<comma>,)"
                    r"|(?P<word>[A-Za-z_][A-Za-z0-9_./]*)|(?P<num>-?\d+))")
_COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le", "in", "has"}


class _Parser:
    """`$filter` := or-expression of and-expressions of `prop op literal`, `startswith(prop,'x')`,
    `endswith(...)`, `not ...`, `( ... )`. `ne`, `not` and `endswith` need the advanced query headers."""

    def __init__(self, text: str, fields: Mapping[str, str], resource: str, advanced: bool) -> None:
        self.text, self.fields, self.resource, self.advanced = text, fields, resource, advanced
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if match is None or match.end() == pos:
                if text[pos:].strip() == "":
                    break
                raise self.syntax(pos)
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind), match.start(kind)))
            pos = match.end()
        self.i = 0

    def syntax(self, pos: int) -> GraphError:
        return GraphError(400, "BadRequest", f"Invalid filter clause: Syntax error at position {pos} in "
                                             f"'{self.text}'.")

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("end", "", len(self.text))

    def take(self, kind: str, value: str | None = None) -> str:
        token = self.peek()
        if token[0] != kind or (value is not None and token[1].lower() != value):
            raise self.syntax(token[2])
        self.i += 1
        return token[1]

    def parse(self) -> Predicate:
        predicate = self.disjunction()
        if self.peek()[0] != "end":
            raise self.syntax(self.peek()[2])
        return predicate

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.peek()[0] == "word" and self.peek()[1].lower() == "or":
            self.i += 1
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda item: any(p(item) for p in parts))

    def conjunction(self) -> Predicate:
        parts = [self.factor()]
        while self.peek()[0] == "word" and self.peek()[1].lower() == "and":
            self.i += 1
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else (lambda item: all(p(item) for p in parts))

    def field(self) -> str:
        name = self.take("word")
        if name not in self.fields:
            raise GraphError(400, "BadRequest", f"Invalid filter clause: Could not find a property named '{name}' "
                                                f"on type 'microsoft.graph.{self.resource.lower()}'.")
        return name

    def factor(self) -> Predicate:
        kind, value, _ = self.peek()
        if kind == "open":
            self.i += 1
            inner = self.disjunction()
            self.take("close")
            return inner
        if kind == "word" and value.lower() == "not":
            self.i += 1
            inner = self.factor()
            if not self.advanced:
                raise GraphError(400, "Request_UnsupportedQuery", "Unsupported query: 'not' needs the advanced "
                                                                  "query parameters.")
            return lambda item: not inner(item)
        if kind == "word" and value.lower() in ("startswith", "endswith") and self.tokens[self.i + 1:self.i + 2] \
                and self.tokens[self.i + 1][0] == "open":
            self.i += 2
            name = self.field()
            self.take("comma")
            literal = self.literal(name)
            self.take("close")
            if self.fields[name] != "Edm.String" or not isinstance(literal, str):
                raise unsupported(name, self.resource)
            if value.lower() == "endswith" and not self.advanced:
                raise unsupported(name, self.resource)
            prefix = literal.lower()
            if value.lower() == "startswith":
                return lambda item: str(item.get(name) or "").lower().startswith(prefix)
            return lambda item: str(item.get(name) or "").lower().endswith(prefix)
        name = self.field()
        op_token = self.peek()
        op = self.take("word").lower()
        if op not in _COMPARISONS:
            raise self.syntax(op_token[2])
        literal = self.literal(name)
        if op not in ("eq", "ne") or (op == "ne" and not self.advanced):
            raise unsupported(name, self.resource)
        folded = literal.lower() if isinstance(literal, str) else literal

        def equal(item: Item) -> bool:
            actual = item.get(name)
            return (actual.lower() if isinstance(actual, str) else actual) == folded

        return equal if op == "eq" else (lambda item: not equal(item))

    def literal(self, name: str) -> str | bool | None:
        kind, value, pos = self.peek()
        self.i += 1
        edm = self.fields[name]
        if kind == "str":
            if edm != "Edm.String":
                raise _incompatible(edm, "Edm.String")
            return value[1:-1].replace("''", "'")
        if kind == "word" and value in ("true", "false"):
            if edm != "Edm.Boolean":
                raise _incompatible(edm, "Edm.Boolean")
            return value == "true"
        if kind == "word" and value == "null":
            return None
        raise self.syntax(pos)


def _incompatible(left: str, right: str) -> GraphError:
    return GraphError(400, "BadRequest", "Invalid filter clause: A binary operator with incompatible types was "
                                         f"detected. Found operand types '{left}' and '{right}' for operator kind "
                                         "'Equal'.")


def parse_filter(text: str, fields: Mapping[str, str], resource: str, *, advanced: bool) -> Predicate:
    """A predicate over rendered objects (camelCase keys); raises GraphError as Graph would answer."""
    return _Parser(text, fields, resource, advanced).parse()


def parse_select(text: str | None, known: Sequence[str], type_name: str) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in known:
            raise GraphError(400, "BadRequest", "Parsing OData Select and Expand failed: Could not find a property "
                                                f"named '{name}' on type 'microsoft.graph.{type_name}'.")
    return names


def parse_top(text: str | None) -> int:
    if text is None:
        return DEFAULT_TOP
    try:
        top = int(text)
    except ValueError:
        raise GraphError(400, "BadRequest", f"Invalid value '{text}' for $top query option found.") from None
    if not 1 <= top <= MAX_TOP:
        raise GraphError(400, "Request_BadRequest",
                         f"Invalid page size specified: '{top}'. Must be between 1 and {MAX_TOP} inclusive.")
    return top


def _fingerprint(query: Mapping[str, str]) -> str:
    kept = "&".join(f"{k}={v}" for k, v in sorted(query.items()) if k != "$skiptoken")
    return hashlib.sha256(kept.encode()).hexdigest()[:12]


def skiptoken(offset: int, query: Mapping[str, str]) -> str:
    """Opaque to clients: the next offset, bound to the query it continues."""
    return base64.urlsafe_b64encode(f"sim1:{offset}:{_fingerprint(query)}".encode()).decode().rstrip("=")


def offset_of(token: str | None, query: Mapping[str, str]) -> int:
    if token is None:
        return 0
    expired = GraphError(400, "Directory_ExpiredPageToken", "The specified page token value has expired and can "
                                                            "no longer be included in your request.")
    try:
        tag, offset, fingerprint = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().split(":")
    except (ValueError, UnicodeDecodeError):
        raise expired from None
    if tag != "sim1" or fingerprint != _fingerprint(query) or not offset.isdigit():
        raise expired
    return int(offset)


def project(item: Mapping[str, Any], select: list[str] | None, default: Sequence[str]) -> dict[str, Any]:
    """The properties Graph returns: `$select`ed ones, else the type's default set (annotations kept)."""
    names = select if select is not None else default
    out: dict[str, Any] = {}
    for key, value in item.items():  # the annotations lead (`render` puts them first): stop at the first property
        if not key.startswith("@odata."):
            break
        out[key] = value
    out.update({name: item[name] for name in names if name in item})
    return out
