"""The plan's two input digests: the desired state (with the whole scope and policy) and the actual state.

Scope and policy are encoded generically from their frozen dataclasses, so a field added to either can
never change without the plan becoming stale. Pure; `sha256_json` gives the same digest for equal inputs.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Iterator, KeysView, Mapping
from datetime import date, datetime, timedelta
from enum import Enum
from fractions import Fraction
from itertools import islice
from typing import Any

import msgspec

from reconcile.model import ActualState, DesiredState, Globs, Policy, Scope, iso_instant, norm
from reconcile.plan import canonical_json, raw


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


_SORTED = msgspec.json.Encoder(order="sorted")  # as `sha256_canonical` encodes
ROWS = 2048  # users' rows encoded at once: few encoder calls, and no list of every user held at once


def sha256_streamed(fields: Mapping[str, Any], lists: Mapping[str, tuple[Iterable[Any], int]]) -> str:
    """`sha256_canonical` of `fields` and `lists` as one object, the same digest, with each list (items, how
    many to encode at once) consumed and encoded a chunk at a time: the state digests of 100,000 users would
    otherwise build every user's row, and the whole encoded document, at the plan's peak (issue 15)."""
    digest = hashlib.sha256(b"{")
    for n, name in enumerate(sorted({*fields, *lists})):  # the keys in the order `order="sorted"` writes them
        digest.update(b"," if n else b"")
        digest.update(_SORTED.encode(name) + b":")
        if name in fields:
            digest.update(_SORTED.encode(fields[name]))
            continue
        items, size = lists[name]
        rows = iter(items)
        digest.update(b"[")
        first = True
        while chunk := list(islice(rows, size)):
            digest.update(b"" if first else b",")
            digest.update(memoryview(_SORTED.encode(chunk))[1:-1])  # the items without the list's brackets
            first = False
        digest.update(b"]")
    digest.update(b"}")
    return digest.hexdigest()


def desired_digest(desired: DesiredState, scope: Scope, policy: Policy) -> str:
    """sha256 of the normalised merged desired state (with scope and policy), not of the raw files."""
    return sha256_streamed(
        {
            "groups": sorted(desired.groups),
            "scope": raw(canonical(scope)),  # may hold floats: encoded as canonical_json does
            "policy": raw(canonical(policy)),
        },
        {"users": (_desired_rows(desired), ROWS)},
    )


def _desired_rows(desired: DesiredState) -> Iterator[list[Any]]:
    by_key = desired.users
    for key in sorted(by_key):
        u = by_key[key]
        i = u.identity
        keys: list[list[str]] = []  # empty, the usual case of a source giving the key alone
        # `[[kind, norm(value)] for kind, value in i.items()]`, unrolled: 100,000 users
        if (v := i.username):
            keys.append(["username", v if (n := v.strip().lower()) == v else n])
        if (v := i.email):
            keys.append(["email", v if (n := v.strip().lower()) == v else n])
        if (v := i.account_id):
            keys.append(["account id", v if (n := v.strip().lower()) == v else n])
        if (v := i.external_id):
            keys.append(["external id", v if (n := v.strip().lower()) == v else n])
        yield [key, u.status, sorted(u.groups), keys]  # a StrEnum encodes as its value


def scoped_users(actual: ActualState, scope: Scope) -> dict[str, tuple[str, ...]]:
    """ref -> normalised keys (`User.keys()`) of the users `scope.users` owns, in ref order."""
    users = actual.users
    if "*" in scope.users.patterns:  # everyone with a key, without a glob call per user
        return {ref: keys for ref in sorted(users) if any(keys := users[ref].keys())}
    owns = scope.users.matches
    return {ref: keys for ref in sorted(users) if owns(*(keys := users[ref].keys()))}


def fingerprint(actual: ActualState, scope: Scope, scoped: Mapping[str, tuple[str, ...]] | None = None) -> str:
    """sha256 of the normalised in-scope actual state: users, statuses, managed memberships.

    `scoped` is `scoped_users(actual, scope)` when the caller has it already.
    """
    if scoped is None:
        scoped = scoped_users(actual, scope)
    by_ref = actual.users
    users = ([ref, *keys, (u := by_ref[ref]).status, u.unsynced, u.admin, u.idp_managed]
             for ref, keys in scoped.items())
    groups = _group_rows(actual, scope, scoped.keys())
    return sha256_streamed({}, {"users": (users, ROWS), "groups": (groups, 1)})  # a group's row: up to every user


def _group_rows(actual: ActualState, scope: Scope, in_scope: KeysView[str]) -> Iterator[list[Any]]:
    for name in sorted(g for g in actual.groups if scope.owns_group(g)):
        group = actual.groups[name]
        members = actual.members.get(name, frozenset())
        # a view, not a set of every scoped ref: the intersection walks the members, looking each up
        yield [name, group.readonly, group.idp_managed, sorted(in_scope & members)]
