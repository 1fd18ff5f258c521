"""What every scenario section reader shares: the problem callback, plain containers, unknown-key checks.

Scenario sections (`confluence_dc:`, `okta:`, `google_workspace:`, `entra_id:`) report problems through
an `At(node, key, message)` callback, which scenario.py turns into `file:line:col: message`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

At = Callable[[Any, Any, str], None]  # (node, key, message): the scenario's problem collector


def plain(node: Any) -> Any:
    """ruamel round-trip containers -> plain dicts/lists (for worlds and JSON)."""
    if isinstance(node, Mapping):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    return node


def unknown_keys(node: Any, allowed: set[str], what: str, at: At) -> None:
    """Report every key of a mapping that `allowed` does not name."""
    if not isinstance(node, Mapping):
        return
    for key in node:
        if key not in allowed:
            at(node, key, f"unknown key {key!r} in {what} (allowed: {', '.join(sorted(allowed))})")
