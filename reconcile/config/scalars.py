"""Scalar node types of the desired-file format: strings (with patterns and `${VAR}`), numbers,
booleans, fixed words and safety limits.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from reconcile.config.nodes import (
    INVALID,
    At,
    Context,
    Invalid,
    Node,
    deferred,
    expand,
    kind_of,
    reference_syntax,
    unknown_value,
)
from reconcile.model import Limit


class Text(Node):
    """A string, optionally matching `pattern` (searched, as JSON Schema does) and `${VAR}`-expanded.

    `message` may use `{value}`; leave it out where the value could hold a credential.
    """

    def __init__(self, pattern: str | None = None, message: str = "", *, expand: bool = False,
                 doc: str = "", default: Any = None) -> None:
        super().__init__(doc, default)
        self.pattern = pattern
        self.regex = re.compile(pattern) if pattern else None
        self.message = message or "'{value}' is not valid here"
        self.expand = expand

    def check(self, value: Any, at: At, ctx: Context) -> Any:
        if not isinstance(value, str):
            return ctx.problem(at.loc, f"{at.path}: expected a string, got {kind_of(value)}")
        text = str(value)
        if not text.strip():
            return ctx.problem(at.loc, f"{at.path}: must not be empty")
        if self.expand and "${" in text:
            if isinstance(reference_syntax(text, at, ctx), Invalid):
                return INVALID
            if deferred(text, ctx):
                return text  # its value is judged where the variable is set (plan, validate --require-env)
            expanded = expand(text, at, ctx)
            if isinstance(expanded, Invalid):
                return INVALID
            text = expanded
        if self.regex and not self.regex.search(text):
            return ctx.problem(at.loc, f"{at.path}: " + self.mismatch(text))
        return text

    def mismatch(self, text: str) -> str:
        """What is wrong with a value that does not match the pattern."""
        return self.message.format(value=text)

    def own_schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "string", "minLength": 1}
        if self.pattern:
            out["pattern"] = f"{self.pattern}|\\$\\{{" if self.expand else self.pattern
        return out


class Url(Text):
    """An http(s) URL. A wrong one is described by its scheme, never echoed: it may hold credentials."""

    def mismatch(self, text: str) -> str:
        scheme, sep, rest = text.strip().partition("://")
        if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,19}", scheme) and scheme.lower() not in ("http", "https"):
            return (f"the URL scheme is '{scheme}', expected http or https (such as "
                    "https://confluence.example.com)")
        if sep and "@" in rest.split("/", 1)[0]:
            return "credentials in the URL (not shown here): give them under auth:, and the URL without them"
        return self.message.format(value="")


class Integer(Node):
    def __init__(self, minimum: int = 0, doc: str = "", default: Any = None, *, maximum: int | None = None) -> None:
        super().__init__(doc, default)
        self.minimum = minimum
        self.maximum = maximum

    def check(self, value: Any, at: At, ctx: Context) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            return ctx.problem(at.loc, f"{at.path}: expected a whole number, got {kind_of(value)}")
        if value < self.minimum:
            return ctx.problem(at.loc, f"{at.path}: must be at least {self.minimum}, got {value}")
        if self.maximum is not None and value > self.maximum:
            return ctx.problem(at.loc, f"{at.path}: must be at most {self.maximum}, got {value}")
        return int(value)

    def own_schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "integer", "minimum": self.minimum}
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out


class Number(Node):
    """A number greater than `above` (or at least `minimum`)."""

    def __init__(self, *, above: float | None = None, minimum: float | None = None, doc: str = "",
                 default: Any = None) -> None:
        super().__init__(doc, default)
        self.above = above
        self.minimum = minimum

    def check(self, value: Any, at: At, ctx: Context) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return ctx.problem(at.loc, f"{at.path}: expected a number, got {kind_of(value)}")
        if self.above is not None and not value > self.above:
            return ctx.problem(at.loc, f"{at.path}: must be greater than {self.above:g}, got {value}")
        if self.minimum is not None and value < self.minimum:
            return ctx.problem(at.loc, f"{at.path}: must be at least {self.minimum:g}, got {value}")
        return float(value)

    def own_schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "number"}
        if self.above is not None:
            out["exclusiveMinimum"] = self.above
        if self.minimum is not None:
            out["minimum"] = self.minimum
        return out


class Boolean(Node):
    def check(self, value: Any, at: At, ctx: Context) -> Any:
        if not isinstance(value, bool):
            return ctx.problem(at.loc, f"{at.path}: expected true or false, got {kind_of(value)}")
        return value

    def own_schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


class Choice(Node):
    """One of a fixed list of words."""

    def __init__(self, values: Sequence[str], doc: str = "", default: Any = None) -> None:
        super().__init__(doc, default)
        self.values = tuple(values)

    def check(self, value: Any, at: At, ctx: Context) -> Any:
        if isinstance(value, str) and value in self.values:
            return str(value)
        return ctx.problem(at.loc, f"{at.path}: {unknown_value(value, self.values)}")

    def own_schema(self) -> dict[str, Any]:
        return {"enum": list(self.values)}


class Const(Node):
    def __init__(self, value: int, message: str, doc: str = "") -> None:
        super().__init__(doc)
        self.value = value
        self.message = message

    def check(self, value: Any, at: At, ctx: Context) -> Any:
        if isinstance(value, bool) or value != self.value:
            return ctx.problem(at.loc, f"{at.path}: {self.message}")
        return value

    def own_schema(self) -> dict[str, Any]:
        return {"const": self.value}


class LimitValue(Node):
    """A safety limit: a count (`25`) or a percentage (`"10%"`)."""

    PATTERN = r"^(?:[0-9]+|0*(?:100(?:\.0+)?|[0-9]{1,2}(?:\.[0-9]+)?)%)$"
    _REGEX = re.compile(PATTERN)

    def check(self, value: Any, at: At, ctx: Context) -> Any:
        ok = (isinstance(value, int) and not isinstance(value, bool) and value >= 0) or (
            isinstance(value, str) and self._REGEX.search(value)
        )
        if not ok:
            shown = f"'{value}'" if isinstance(value, str | int | float) else kind_of(value)
            return ctx.problem(at.loc, f"{at.path}: {shown} is neither a count (25) nor a percentage "
                               "up to 100% (\"10%\")")
        return Limit.parse(value)

    def own_schema(self) -> dict[str, Any]:
        return {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": self.PATTERN}]}
