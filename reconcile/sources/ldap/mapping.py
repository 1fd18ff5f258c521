"""Directory group name -> Atlassian group name: an ordered list of (glob, pattern) pairs.

The first glob that matches wins; each `*` of the pattern is replaced by what the glob's `*` matched
(the n-th `*` by the n-th, or every one by the only one). Names are lower-cased. No match: ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reconcile.errors import SourceError
from reconcile.model import norm


def _glob_regex(glob: str) -> re.Pattern[str]:
    """`*` captures, `?` is one character, `[...]` a class; everything else is literal."""
    out: list[str] = []
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        if c == "*":
            out.append("(.*)")
        elif c == "?":
            out.append(".")
        elif c == "[" and (end := glob.find("]", i + 2 if glob[i + 1 : i + 2] in ("!", "]") else i + 1)) > 0:
            body = glob[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True, slots=True)
class _Rule:
    glob: str
    pattern: str
    regex: re.Pattern[str]

    def apply(self, name: str) -> str | None:
        match = self.regex.fullmatch(name)
        if match is None:
            return None
        captures = match.groups()
        pieces = self.pattern.split("*")
        out = [pieces[0]]
        for index, piece in enumerate(pieces[1:]):
            out.append(captures[0] if len(captures) == 1 else captures[index])
            out.append(piece)
        return norm("".join(out))


@dataclass(frozen=True, slots=True)
class GroupMap:
    """The `groups.map` of an LDAP source. An empty map keeps every group under its own name."""

    rules: tuple[_Rule, ...]

    @staticmethod
    def parse(pairs: tuple[tuple[str, str], ...], *, where: str) -> GroupMap:
        if not pairs:
            pairs = (("*", "*"),)
        rules = []
        for glob, pattern in pairs:
            regex = _glob_regex(glob)
            stars = pattern.count("*")
            if stars and regex.groups != 1 and stars > regex.groups:
                raise SourceError(
                    f"{where}: groups.map {glob!r} -> {pattern!r}: the pattern has {stars} '*' but the glob "
                    f"captures {regex.groups}",
                    hint="give the pattern at most as many '*' as the glob has (or a glob with exactly one '*')",
                )
            rules.append(_Rule(glob, pattern, regex))
        return GroupMap(tuple(rules))

    def target(self, directory_name: str) -> str | None:
        """The Atlassian group a directory group maps to, or None when no rule matches."""
        for rule in self.rules:
            mapped = rule.apply(directory_name)
            if mapped is not None:
                return mapped
        return None
