"""Typed (msgspec) decoding of Confluence DC pages decides exactly as the dict parsers (issue 15)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reconcile.errors import TargetError
from reconcile.targets.confluence_dc import read

USERS: list[Any] = [
    {"type": "known", "userKey": "k1", "username": "Alice", "displayName": "Alice A", "status": "Active"},
    {"type": "known", "userKey": "k2", "username": "bob", "status": "Deactivated"},
    {"type": "known", "userKey": "k3", "username": "carol", "status": "Unsynced"},
    {"type": "known", "userKey": "k4", "username": "dave"},
    {"type": "known", "userKey": "k6", "username": " Erin ", "status": "active"},  # not one of DC's own words
    {"type": "known", "userKey": "k7", "username": "fay", "status": " unsynced "},
    {"type": "known", "userKey": "k8", "username": "gus", "status": "disabled"},
    {"type": "anonymous", "userKey": "k5", "username": "anon"},
    {"type": "known", "userKey": "", "username": "nokey"},
]
ACTIVE: list[Any] = [
    {"userKey": "k1", "email": "a@example.com", "lastLogin": 1767225600000},
    {"userKey": "k2", "email": None, "lastLogin": None},
    {"userKey": "k3", "email": "", "lastLogin": "2026-01-01T10:00:00Z"},
    {"userKey": "k4"},
    {"email": "x@example.com"},
]
MEMBERS: list[Any] = [{"userKey": "k1", "type": "known"}, {"userKey": "k5", "type": "anonymous"}, {"type": "known"}]


def _typed(typed: read.Typed[Any], results: list[Any], **extra: Any) -> tuple[list[Any], Any]:
    page = typed.decoder.decode(json.dumps({"results": results, **extra}).encode())
    return typed.convert(page.results), page


@pytest.mark.parametrize(("typed", "parse", "items"), [
    (read.PERSONS, read.Person.parse, USERS),
    (read.ACTIVE, read.ActiveUser.parse, ACTIVE),
    (read.MEMBERS, read._member_key, MEMBERS),
])
def test_typed_pages_parse_as_the_dict_parsers(typed: read.Typed[Any], parse: Any, items: list[Any]) -> None:
    got, page = _typed(typed, items, size=len(items), _links={"next": "/more"})
    assert got == [x for x in map(parse, items) if x is not None]
    assert page.size == len(items) and page.links is not None and page.links.next == "/more"


def test_member_keys_are_the_users_own_strings() -> None:
    """400,000 memberships must not hold 400,000 more copies of 100,000 userKeys."""
    key = "".join(["0000", "abcd"])  # built at run time: not a constant the compiler shares
    people, _ = _typed(read.PERSONS, [{"type": "known", "userKey": key, "username": "u", "status": "Active"}])
    members, _ = _typed(read.MEMBERS, [{"type": "known", "userKey": key}])
    assert members[0] is people[0].user_key


@pytest.mark.parametrize("odd", [
    {"type": "known", "userKey": 7, "username": "num", "status": "Active"},  # a number for a key
    {"type": "known", "userKey": "k", "username": "m", "status": {"value": "active"}},  # status object
])
def test_a_page_of_another_shape_is_refused_by_the_typed_decoder(odd: dict[str, Any]) -> None:
    """`_page` then reads it the generic way, whose parser still accepts it."""
    import msgspec

    with pytest.raises(msgspec.ValidationError):
        _typed(read.PERSONS, [odd])
    assert read.Person.parse(odd) is not None


def test_an_unknown_status_fails_when_its_page_is_taken() -> None:
    with pytest.raises(TargetError, match="does not know"):
        _typed(read.PERSONS, [{"type": "known", "userKey": "k", "username": "x", "status": "Weird"}])
    page = read._parsed([{"type": "known", "userKey": "k", "username": "x", "status": "Weird"}],
                        read.Person.parse, 1, False)
    assert page.items == [] and isinstance(page.error, TargetError)  # raised in page order by collect
