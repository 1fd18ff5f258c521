"""The plan's two input digests: the desired state (with the whole scope and policy) and the actual state.

Scope and policy are encoded generically from their frozen dataclasses, so a field added to either can
never change without the plan becoming stale. Pure; `sha256_json` gives the same digest for equal inputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from enum import Enum
from fractions import Fraction
from typing import Any

from reconcile.model import ActualState, DesiredState, Globs, Policy, Scope, iso_instant, norm
from reconcile.plan import canonical_json, sha256_json


def canonical(value: object) -> Any:
    """`value` as JSON-ready data that is equal exactly when the values mean the same.

    Dataclasses become objects of all their fields, enums their value, sets and mappings are sorted,
    globs are lower-cased and sorted (they match case-insensitively, in any order). Any other type
    is a TypeError: a new kind of field must be given a meaning here, never silently left out.
    """
    match value:
        case Enum():
            return canonical(value.value)
        case None | bool() | int() | float() | str():
            return value
        case Globs():
            return sorted(norm(p) for p in value.patterns)
        case Fraction():
            return str(value)
        case datetime():
            if value.tzinfo is None:
                raise TypeError(f"a naive datetime has no canonical form: {value!r}")
            return iso_instant(value)
        case date():
            return value.isoformat()
        case timedelta():
            return {"seconds": value.total_seconds()}
        case Mapping():
            return {str(canonical(k)): canonical(v) for k, v in value.items()}
        case frozenset() | set():
            return sorted((canonical(v) for v in value), key=canonical_json)
        case tuple() | list():
            return [canonical(v) for v in value]
        case _ if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    raise TypeError(f"no canonical form for {type(value).__name__}: {value!r}")


def desired_digest(desired: DesiredState, scope: Scope, policy: Policy) -> str:
    """sha256 of the normalised merged desired state (with scope and policy), not of the raw files."""
    users = [
        [key, u.status.value, sorted(u.groups), [[kind, norm(v)] for kind, v in u.identity.items()]]
        for key, u in sorted(desired.users.items())
    ]
    return sha256_json(
        {
            "users": users,
            "groups": sorted(desired.groups),
            "scope": canonical(scope),
            "policy": canonical(policy),
        }
    )


def fingerprint(actual: ActualState, scope: Scope) -> str:
    """sha256 of the normalised in-scope actual state: users, statuses, managed memberships."""
    users = []
    in_scope: set[str] = set()
    for ref in sorted(actual.users):
        user = actual.users[ref]
        keys = user.keys()
        if scope.users.matches(*keys):
            in_scope.add(ref)
            users.append([ref, *keys, user.status.value, user.unsynced, user.admin, user.idp_managed])
    groups = []
    for name in sorted(g for g in actual.groups if scope.owns_group(g)):
        group = actual.groups[name]
        members = sorted(actual.members.get(name, frozenset()) & in_scope)
        groups.append([name, group.readonly, group.idp_managed, members])
    return sha256_json({"users": users, "groups": groups})
