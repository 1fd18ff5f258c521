"""Okta's `filter` and `search` expressions (the subset the simulator understands).

`filter`: `eq` on a few attributes (`gt/ge/lt/le` on `lastUpdated`), joined by `and`/`or`, in
parentheses. `search`: also `sw`, `co`, `pr` and comparisons on any attribute. Anything else is a 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Predicate = Callable[[Mapping[str, Any]], bool]

USER_FILTER_ATTRS = frozenset({"status", "lastUpdated", "id", "profile.login", "profile.email", "profile.firstName",
                               "profile.lastName"})
GROUP_FILTER_ATTRS = frozenset({"id", "type", "lastUpdated", "lastMembershipUpdated"})
COMPARISONS = frozenset({"eq", "gt", "ge", "lt", "le"})
_TOKEN = re.compile(r'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|([A-Za-z_][\w.]*))')


class QueryError(ValueError):
    """The expression is not one Okta accepts (answered as 400 E0000031)."""


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise QueryError(f"cannot read the expression at {text[pos:pos + 20]!r}")
        pos = match.end()
        if match.group(1):
            out.append(("(", "("))
        elif match.group(2):
            out.append((")", ")"))
        elif match.group(3) is not None:
            out.append(("str", match.group(3).replace('\\"', '"')))
        else:
            out.append(("word", match.group(4)))
    return out


def _value(record: Mapping[str, Any], attr: str) -> Any:
    node: Any = record
    for part in attr.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _compare(op: str, have: Any, want: str) -> bool:
    if have is None:
        return False
    text = str(have).lower()
    want_l = want.lower()
    if op == "eq":
        return text == want_l
    if op == "sw":
        return text.startswith(want_l)
    if op == "co":
        return want_l in text
    ordering = {"gt": text > want_l, "ge": text >= want_l, "lt": text < want_l, "le": text <= want_l}
    return ordering[op]


def _either(a: Predicate, b: Predicate) -> Predicate:
    return lambda r: a(r) or b(r)


def _both(a: Predicate, b: Predicate) -> Predicate:
    return lambda r: a(r) and b(r)


def parse(text: str, *, search: bool, filter_attrs: frozenset[str]) -> Predicate:
    """A predicate over a resource's JSON (`status`, `profile.login`, …); raises QueryError."""
    tokens = _tokens(text)
    pos = 0

    def peek() -> tuple[str, str] | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal pos
        if pos >= len(tokens):
            raise QueryError("the expression ends too early")
        pos += 1
        return tokens[pos - 1]

    def expression() -> Predicate:
        left = term()
        while (tok := peek()) is not None and tok == ("word", "or"):
            take()
            right = term()
            left = _either(left, right)
        return left

    def term() -> Predicate:
        left = factor()
        while (tok := peek()) is not None and tok == ("word", "and"):
            take()
            right = factor()
            left = _both(left, right)
        return left

    def factor() -> Predicate:
        kind, value = take()
        if kind == "(":
            inner = expression()
            if take()[0] != ")":
                raise QueryError("a parenthesis is not closed")
            return inner
        if kind != "word":
            raise QueryError(f"expected an attribute, found {value!r}")
        attr = value
        op_kind, op = take()
        if op_kind != "word":
            raise QueryError(f"expected an operator after {attr}")
        if op == "pr" and search:
            return lambda r: _value(r, attr) not in (None, "")
        if not search:
            if attr not in filter_attrs:
                raise QueryError(f"filter does not support the attribute {attr!r}")
            if op != "eq" and not (op in COMPARISONS and attr in ("lastUpdated", "lastMembershipUpdated")):
                raise QueryError(f"filter does not support the operator {op!r} on {attr}")
        elif op not in COMPARISONS | {"sw", "co"}:
            raise QueryError(f"search does not support the operator {op!r}")
        lit_kind, literal = take()
        if lit_kind != "str" and not (lit_kind == "word" and literal in ("true", "false")):
            raise QueryError(f"expected a quoted value after {attr} {op}")
        return lambda r: _compare(op, _value(r, attr), literal)

    if not tokens:
        raise QueryError("the expression is empty")
    predicate = expression()
    if pos != len(tokens):
        raise QueryError(f"unexpected {tokens[pos][1]!r}")
    return predicate
