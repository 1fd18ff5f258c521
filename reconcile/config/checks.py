"""Problems that span several keys of one source type, beyond what its record checks."""

from __future__ import annotations

from reconcile.config.nodes import Fields
from reconcile.model import Location

Problems = list[tuple[Location, str]]


def _filter_problems(fields: Fields | None, problems: Problems, path: str) -> None:
    for key in ("filter", "disabled"):
        item = (fields or {}).get(key)
        if item is None:
            continue
        depth = 0
        for ch in item.value:
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if depth < 0:
                break
        if depth != 0:
            problems.append((item.loc, f"{path}.{key}: unbalanced parentheses in LDAP filter '{item.value}'"))


def ldap_problems(name: str, fields: Fields, problems: Problems) -> None:
    """`start_tls` with an ldaps:// URL; unbalanced parentheses in the users/groups filters."""
    url = fields["url"].value if "url" in fields else ""
    start_tls = fields.get("start_tls")
    if start_tls is not None and start_tls.value is True and str(url).lower().startswith("ldaps://"):
        problems.append((start_tls.loc, f"sources.{name}.start_tls: an ldaps:// URL is already TLS; "
                         "use ldap:// with start_tls: true, or drop start_tls"))
    for section in ("users", "groups"):
        item = fields.get(section)
        _filter_problems(item.value if item is not None else None, problems, f"sources.{name}.{section}")
