"""The SCIM source's per-user and per-group records: what a 100,000-user read builds and what it leaves out."""

from __future__ import annotations

import asyncio
import gc

from reconcile.config.idp_scim import ScimGroupsSettings, ScimSourceSettings
from reconcile.model import Globs
from reconcile.settings import Secret
from reconcile.sources.scim import ScimSource
from reconcile.sources.scim.members import Filer, closure
from reconcile.sources.scim.shapes import ScimEmail, ScimGroupResource, ScimMember, ScimUserResource


def _source() -> ScimSource:
    return ScimSource(ScimSourceSettings(name="idp", url="http://idp.invalid/scim/v2", token=Secret("t", "${T}"),
                                        groups=ScimGroupsSettings(map=(("team-*", "t-*"),))))


def _user(uid: str, name: str, active: object) -> ScimUserResource:
    return ScimUserResource(id=uid, userName=name, active=active, emails=[ScimEmail(value=f"{name}@x.org")])


def test_a_user_made_ready_is_not_tracked_by_the_collector_and_its_error_holds_no_frames() -> None:
    source = _source()
    source._ready([_user("u1", "ann", "maybe"), _user("u2", "bob", True)])
    ready, failed = source._prepared["u2"], source._prepared["u1"]
    assert (ready.key, ready.who, ready.fact) == ("bob@x.org", "bob", "scim active=true")
    assert not gc.is_tracked(ready)  # 100,000 of them a read: the collector never walks them
    assert failed.error is not None and "user 'ann' has active='maybe', not a boolean" in str(failed.error)
    assert failed.error.__traceback__ is None  # its frames would hold the ready users in a cycle nothing collects


def test_typed_members_filed_on_arrival_become_group_users_only_when_asked() -> None:
    filer = Filer(Globs(("team-*",)), lambda name: name.replace("team-", "t-"))
    members = [ScimMember("u1", "User"), ScimMember("g2", "Group"), ScimMember(7, "User"), ScimMember("x", None)]
    filer.page([ScimGroupResource("g1", "team-a", members),
                ScimGroupResource("g2", "team-b", [ScimMember("u3", "User")])])
    assert filer.groups_of == {"u1": {"t-a"}, "7": {"t-a"}, "u3": {"t-b"}}
    g1 = filer.listed["g1"]
    assert g1.users == set() and g1.late == [ScimMember("x", None)]  # no set of ids that nothing reads
    g1.users.add("u9")  # a member without a type, judged a user after the read
    assert g1.member_users() == {"u1", "7", "u9"} == g1.users
    assert closure("g1", filer.listed) == {"u1", "7", "u9", "u3"}


def test_members_are_released_once_the_memberships_are_final_and_the_memberships_stay() -> None:
    filer = Filer(Globs(("team-*",)), lambda name: name.replace("team-", "t-"))
    groups = [ScimGroupResource(f"g{i}", f"team-{i}", [ScimMember(f"u{i}", "User"), ScimMember("u0", "User")])
              for i in range(5)]
    filer.page(groups)
    asyncio.run(filer.release(groups, slice_size=2))
    assert all(g.members is None for g in groups) and all(g.members is None for g in filer.listed.values())
    assert filer.groups_of == {"u0": {f"t-{i}" for i in range(5)}, **{f"u{i}": {f"t-{i}"} for i in range(1, 5)}}
