"""The Cloud user read decoded into typed items (items.py) and kept as one record per person: the typed and
the generic reading agree, odd items still read as before, users of two directories merge as `Account.merge`
says, and the fetch keeps no second copy of the users."""

from __future__ import annotations

import json
from functools import reduce
from typing import Any

import msgspec
import pytest

from reconcile.model import Globs, Scope, User
from reconcile.sim.atlassian_cloud.world import DEFAULT_DIRECTORY, CloudWorld
from reconcile.targets.atlassian_cloud.account import Account, user_of
from reconcile.targets.atlassian_cloud.items import USER_PAGE, UserItem, item_of
from reconcile.targets.atlassian_cloud.read import USER_EXPAND
from tests.support.cloud import ORG, ORG_KEY, rig

pytestmark = pytest.mark.anyio
ALL = Scope(users=Globs(("*",)), groups=Globs(("*",)))
OTHER = "0b7e0000-0000-4000-8000-0000000000d2"


async def test_the_reader_yields_typed_items_equal_to_the_generic_reading_of_the_same_pages() -> None:
    r = rig()
    typed = [item async for page in r.target.reader.users("-", {"expand": USER_EXPAND}) for item in page]
    generic = [item async for page in r.target.reader.pages("users", "-", {"expand": USER_EXPAND})
               for item in page]
    await r.target.aclose()
    assert typed and all(isinstance(item, UserItem) for item in typed)
    assert typed == [item_of(item) for item in generic]
    assert [user_of(item, {}) for item in typed] == [Account.from_json(d, "-").to_user() for d in generic]


def test_an_item_the_typed_decoder_refuses_keeps_the_readers_historical_coercions() -> None:
    odd = {"accountId": 7, "email": "  Mixed@Example.TEST ", "name": "", "status": None,
           "platformRoles": ["atlassian/site-admin", 3],
           "productAccess": ["junk", {"key": "jira", "id": "ari:j", "lastActiveTimestamp": True},
                             {"id": "ari:c", "lastActiveTimestamp": "2025-01-02T03:04:05+02:00"}],
           "groups": [{"id": "ari:cloud:identity::group/g1"}, "junk"], "addedToOrg": 1735689600000}
    raw = json.dumps({"data": [odd]}).encode()
    with pytest.raises(msgspec.ValidationError):
        USER_PAGE.decode(raw)
    acct = Account.from_json(json.loads(raw)["data"][0], "d")
    assert (acct.account_id, acct.email, acct.name, acct.status, acct.account_status) == (
        "7", "mixed@example.test", None, "", "active")
    assert acct.admin and acct.licensed and acct.groups == frozenset({"g1"})
    assert [(k, s.isoformat()) for k, s in acct.last_active.items()] == [("ari:c", "2025-01-02T01:04:05+00:00")]
    assert acct.added_to_org is not None and acct.added_to_org.isoformat() == "2025-01-01T00:00:00+00:00"


def two_directory_world() -> CloudWorld:
    people: list[dict[str, Any]] = [{"name": f"A{i}", "email": f"a{i}@example.com"} for i in range(140)]
    people += [{"name": f"B{i}", "email": f"b{i}@example.com", "directory": OTHER,
                "status": "suspended" if i % 3 == 0 else "active"} for i in range(30)]
    world = CloudWorld.from_scenario({
        "org_id": ORG, "api_keys": [ORG_KEY], "users": people,
        "directories": [{"id": DEFAULT_DIRECTORY, "name": "Atlassian"}, {"id": OTHER, "name": "Contractors"}],
        "groups": [{"name": "team-a", "members": [p["email"] for p in people[:150]]},
                   {"name": "team-b", "directory": OTHER, "members": [p["email"] for p in people[100:]]}]})
    for i, user in enumerate(u for u in world.users.values() if u.name.startswith("A")):
        if i % 4 == 0:  # in both directories; suspended in the second one for some
            user.membership[OTHER] = "suspended" if i % 8 == 0 else "active"
        if i % 10 == 0:
            user.membership[DEFAULT_DIRECTORY] = "suspended"
    return world


async def test_users_of_two_directories_merge_as_account_merge_says() -> None:
    r = rig(two_directory_world(), directory="-")
    state = await r.target.fetch(ALL)
    expected: dict[str, Account] = {}
    for ref in state.users:
        seen = [a for d in (DEFAULT_DIRECTORY, OTHER) if (a := await r.target.reader.account(ref, d))]
        expected[ref] = reduce(Account.merge, seen)
    await r.target.aclose()
    assert sum(len(u.membership) == 2 for u in r.world.users.values()) == 35
    assert state.users == {ref: acct.to_user() for ref, acct in expected.items()}
    assert {u.status.value for u in state.users.values()} == {"active", "disabled"}
    for name in ("team-a", "team-b"):
        group = state.groups[name].ref
        assert state.members[name] == frozenset(ref for ref, a in expected.items() if group in a.groups)
        assert state.members[name]


async def test_the_fetch_keeps_one_record_per_user_and_the_writer_shares_it() -> None:
    r = rig(two_directory_world(), directory="-")
    state = await r.target.fetch(ALL)
    await r.target.aclose()
    writer = r.target.writer
    assert writer.users is state.users  # not a copy, not a second record per person
    assert all(type(u) is User for u in state.users.values())
    facts = {id(f) for f in writer.facts.values()}
    assert len(state.users) == 170 and len(facts) <= 6  # a few shared values, not one per user
