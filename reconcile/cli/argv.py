"""Global options written after the command (`reconcile plan --no-color -v`, as kubectl and terraform
users write them) are moved in front of it before parsing, so that no command redeclares them.
"""

from __future__ import annotations

import re
from collections.abc import Collection

# Valued ones take their value along; `--desired` is left where it is (commands have their own).
GLOBAL_FLAGS = frozenset({"-q", "--quiet", "-v", "--verbose", "--no-color"})
GLOBAL_VALUED = frozenset({"--state-dir", "--log-format", "--now"})
_SHORT_GLOBALS = re.compile(r"-[qv]{2,}")


def hoist_globals(args: list[str], commands: Collection[str]) -> list[str]:
    """`args` with the global options written after the command name moved before it."""
    at = 0
    while at < len(args) and args[at] not in commands:
        if args[at] == "--":
            return args
        at += 2 if args[at] in GLOBAL_VALUED or args[at] == "--desired" else 1
    if at >= len(args):
        return args
    moved: list[str] = []
    kept: list[str] = []
    tail = args[at + 1:]
    i = 0
    while i < len(tail):
        arg = tail[i]
        if arg == "--":
            kept += tail[i:]
            break
        if arg in GLOBAL_FLAGS or _SHORT_GLOBALS.fullmatch(arg) or arg.partition("=")[0] in GLOBAL_VALUED:
            moved.append(arg)
            if arg in GLOBAL_VALUED and i + 1 < len(tail):
                moved.append(tail[i + 1])
                i += 1
        else:
            kept.append(arg)
        i += 1
    return [*args[:at], *moved, args[at], *kept]
