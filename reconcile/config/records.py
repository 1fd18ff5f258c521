"""Mapping nodes with a fixed set of keys: `Record` and the `type:`-tagged union `Tagged`.

Unknown keys (with a "did you mean" hint), missing keys, "exactly one of" key sets and
conditionally required keys are checked here, and expressed in the schema the same way.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconcile.config.nodes import (
    At,
    Context,
    Invalid,
    Item,
    Node,
    _entries,
    did_you_mean,
    kind_of,
    lc,
    position,
    unknown_value,
)
from reconcile.config.scalars import Choice

if TYPE_CHECKING:
    from reconcile.config.into import Into


@dataclass(frozen=True, slots=True)
class Condition:
    """`requires` must be present when `key` is `value` (e.g. `site` when `delete: remove-from-site`)."""

    key: str
    value: str
    requires: str


@dataclass(frozen=True, slots=True)
class Forbid:
    """None of `keys` may be present when `key` is `value` (e.g. credentials with `security: none`)."""

    key: str
    value: str
    keys: tuple[str, ...]
    message: str


@dataclass(frozen=True, slots=True)
class Insecure:
    """A risky setting must be acknowledged: when the string at `path` matches `pattern`, every key
    of `needs` is present and no key of `unless` is true, `flag` must be written `true`.

    e.g. a non-loopback http:// URL needs `insecure: true`; so does a bind over ldap:// without StartTLS.
    """

    path: tuple[str, ...]  # keys from this record down to the string (`("site", "url")`)
    pattern: str
    message: str
    flag: str = "insecure"
    needs: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()

    def applies(self, out: Mapping[str, Item], present: set[str]) -> Item | None:
        """The offending value's item, when the rule is broken."""
        item: Item | None = None
        fields: Any = out
        for key in self.path:
            item = fields.get(key) if isinstance(fields, Mapping) else None
            if item is None:
                return None
            fields = item.value
        if item is None or not isinstance(item.value, str) or not re.search(self.pattern, item.value):
            return None
        if not all(k in present for k in self.needs):
            return None
        if any(_true(out, k) for k in (*self.unless, self.flag)):
            return None
        return item

    def schema(self) -> dict[str, Any]:
        inner: dict[str, Any] = {"type": "string", "pattern": self.pattern}
        for key in reversed(self.path[1:]):
            inner = {"properties": {key: inner}, "required": [key]}
        when: dict[str, Any] = {
            "properties": {self.path[0]: inner, **{k: {"not": {"const": True}} for k in self.unless}},
            "required": [self.path[0], *self.needs],
        }
        return {"if": when, "then": {"properties": {self.flag: {"const": True}}, "required": [self.flag]}}


def _true(out: Mapping[str, Item], key: str) -> bool:
    item = out.get(key)
    return item is not None and item.value is True


class Record(Node):
    """A mapping with known keys; every other key is a problem."""

    def __init__(
        self,
        fields: Mapping[str, Node],
        *,
        required: Sequence[str] = (),
        choices: Sequence[Sequence[str]] = (),
        choices_message: str = "",
        conditions: Sequence[Condition] = (),
        dependent: Mapping[str, Sequence[str]] | None = None,
        forbids: Sequence[Forbid] = (),
        insecure: Sequence[Insecure] = (),
        hints: Mapping[str, str] | None = None,
        doc: str = "",
        into: Into | None = None,
    ) -> None:
        super().__init__(doc)
        self.fields = dict(fields)
        self.required = tuple(required)
        self.choices = tuple(frozenset(c) for c in choices)
        self.choices_message = choices_message
        self.conditions = tuple(conditions)
        self.dependent = {k: tuple(v) for k, v in (dependent or {}).items()}
        self.forbids = tuple(forbids)
        self.insecure = tuple(insecure)
        self.hints = dict(hints or {})  # required key -> what to write, added to "missing required key"
        self.into = into  # the settings dataclass this record builds (reconcile.config.into)

    def tagged(self, tag: str) -> Record:
        """This record as the `type: <tag>` variant of a Tagged union: `type` is its first key."""
        clone = copy.copy(self)
        clone.fields = {"type": Choice([tag]), **self.fields}
        clone.required = ("type", *self.required)
        return clone

    def check(self, value: Any, at: At, ctx: Context) -> Any:
        entries = _entries(value, at, ctx)
        if isinstance(entries, Invalid):
            return entries
        where = at.path or "the top level"
        inside = f"in {at.path}" if at.path else "at the top level"
        out: dict[str, Item] = {}
        key_locs = {}
        for key, element, loc, key_loc in entries:
            key_locs[key] = key_loc
            node = self.fields.get(key)
            if node is None:
                ctx.problem(key_loc, f"unknown key '{key}' {inside}; {did_you_mean(key, list(self.fields))}")
                continue
            checked = node.check(element, at.child(key, loc, key_loc), ctx)
            if not isinstance(checked, Invalid):
                out[key] = Item(checked, loc, key_loc)
        present = set(key_locs)
        for key in self.required:
            if key not in present:
                hint = f"; {self.hints[key]}" if key in self.hints else ""
                ctx.problem(at.key_loc, f"{where}: missing required key '{key}'{hint}")
        if self.choices:
            given = present & frozenset().union(*self.choices)
            if given not in self.choices:
                ctx.problem(at.key_loc, f"{where}: {self.choices_message}")
        for cond in self.conditions:
            if value.get(cond.key) == cond.value and cond.requires not in present:
                ctx.problem(key_locs[cond.key], f"{where}: {cond.key}: {cond.value} needs '{cond.requires}'")
        for key, needs in self.dependent.items():
            for need in needs:
                if key in present and need not in present:
                    ctx.problem(key_locs[key], f"'{key}' needs '{need}' in the same file")
        for rule in self.forbids:
            if value.get(rule.key) == rule.value:
                for key in rule.keys:
                    if key in present:
                        ctx.problem(key_locs[key], f"{at.child(key, at.loc, at.key_loc).path}: {rule.message}")
        for risk in self.insecure:
            item = risk.applies(out, present)
            if item is not None:
                path = ".".join((at.path, *risk.path) if at.path else risk.path)
                ctx.problem(item.loc, f"{path}: {risk.message}")
        return out

    def own_schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "object",
            "properties": {k: n.schema() for k, n in self.fields.items()},
            "additionalProperties": False,
        }
        if self.required:
            out["required"] = list(self.required)
        if self.choices:
            every = frozenset().union(*self.choices)
            out["oneOf"] = [
                {"required": sorted(c), "properties": dict.fromkeys(sorted(every - c), False)}
                for c in self.choices
            ]
        rules = [
            {
                "if": {"properties": {c.key: {"const": c.value}}, "required": [c.key]},
                "then": {"required": [c.requires]},
            }
            for c in self.conditions
        ] + [
            {
                "if": {"properties": {f.key: {"const": f.value}}, "required": [f.key]},
                "then": {"not": {"anyOf": [{"required": [k]} for k in f.keys]}},
            }
            for f in self.forbids
        ] + [r.schema() for r in self.insecure]
        if rules:
            out["allOf"] = rules
        if self.dependent:
            out["dependentRequired"] = {k: list(v) for k, v in self.dependent.items()}
        return out


class Tagged(Node):
    """A mapping whose `type:` selects which Record it is (targets, sources)."""

    def __init__(self, variants: Callable[[], Mapping[str, Record]], doc: str = "") -> None:
        super().__init__(doc)
        self._variants = variants  # a registry's, read when used: types registered later count too

    @property
    def variants(self) -> dict[str, Record]:
        return dict(self._variants())

    def check(self, value: Any, at: At, ctx: Context) -> Any:
        if not isinstance(value, Mapping):
            return ctx.problem(at.loc, f"{at.path}: expected a mapping, got {kind_of(value)}")
        names = ", ".join(self.variants)
        if "type" not in value:
            return ctx.problem(at.key_loc, f"{at.path}: missing required key 'type' (one of: {names})")
        tag = value["type"]
        if not isinstance(tag, str) or tag not in self.variants:
            line, col = lc(value).value("type")
            return ctx.problem(position(ctx, line, col), f"{at.path}.type: {unknown_value(tag, list(self.variants))}")
        return self.variants[tag].check(value, at, ctx)

    def own_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"enum": list(self.variants)}},
            "allOf": [
                {
                    "if": {"properties": {"type": {"const": tag}}, "required": ["type"]},
                    "then": record.schema(),
                }
                for tag, record in self.variants.items()
            ],
        }
