"""The planner's fast paths (issue 15) decide exactly as the general ones, and leave no trace behind.

- the cycle collector is paused during `diff` only, and left as the caller had it, even on refusal;
- a key two accounts share is a conflict whether the desired user names it alone or with typed keys;
- an account filed twice under one key (a username equal to its account id) is one account;
- memberships already as desired plan nothing, whatever unmanaged groups the desired user names.
"""

from __future__ import annotations

import gc

import pytest

from reconcile.diff import diff
from reconcile.errors import EmptySource, IdentityConflict
from reconcile.identity import match_users
from reconcile.model import ActualState, DesiredState, DesiredUser, Globs, Group, Identity, Policy, Scope, User
from reconcile.plan import ActionKind, Plan
from tests.support.builders import NOW, TARGET

SCOPE = Scope(users=Globs(("*",)), groups=Globs(("team-*",)))
ALICE = User(ref="a1", username="alice", email="alice@example.com")


def plan(desired: DesiredState, actual: ActualState, policy: Policy | None = None) -> Plan:
    return diff(desired, actual, scope=SCOPE, policy=policy or Policy(), target=TARGET, now=NOW)


@pytest.mark.parametrize("enabled", [True, False])
def test_diff_leaves_the_cycle_collector_as_it_found_it(enabled: bool) -> None:
    actual = ActualState.build([ALICE])
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        plan(DesiredState.build([DesiredUser("alice@example.com")]), actual)
        assert gc.isenabled() is enabled
        with pytest.raises(EmptySource):
            plan(DesiredState.build([]), actual)  # refused: restored all the same
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()


def test_a_username_two_accounts_share_is_a_conflict_for_a_bare_key_and_for_typed_keys() -> None:
    actual = ActualState.build([User(ref="k1", username="sam"), User(ref="k2", username=" SAM "),
                                User(ref="k3", username="sam")])
    with pytest.raises(IdentityConflict, match=r"sam: its keys name 3 accounts: sam \(k1\), +SAM +\(k2\), sam \(k3\)"):
        match_users(DesiredState.build([DesiredUser("sam")]), actual)
    typed = DesiredUser("sam@example.com", identity=Identity(username="sam", email="sam@example.com"))
    with pytest.raises(IdentityConflict, match=r"sam@example.com: its keys name 3 accounts"):
        match_users(DesiredState.build([typed]), actual)


def test_an_email_two_accounts_share_is_a_conflict() -> None:
    actual = ActualState.build([User(ref="k1", username="a", email="x@example.com"),
                                User(ref="k2", username="b", email="X@example.com")])
    with pytest.raises(IdentityConflict, match=r"x@example.com: the email matches 2 accounts: a \(k1\), b \(k2\)"):
        match_users(DesiredState.build([DesiredUser("x@example.com")]), actual)
    # a shared email names nobody by a non-email key: the key is missing, not a conflict
    matches, missing = match_users(DesiredState.build([DesiredUser("x")]), actual)
    assert (matches, missing) == ([], ["x"])


def test_an_account_id_equal_to_another_accounts_username_is_a_conflict() -> None:
    actual = ActualState.build([User(ref="k1", username="zed"), User(ref="k2", account_id="ZED")])
    with pytest.raises(IdentityConflict, match=r"zed: its keys name 2 accounts: zed \(k1\), ZED \(k2\)"):
        match_users(DesiredState.build([DesiredUser("zed")]), actual)


def test_an_account_filed_twice_under_one_key_is_one_account() -> None:
    same = User(ref="acc-1", username="acc-1", account_id="ACC-1")
    matches, missing = match_users(DesiredState.build([DesiredUser("acc-1")]), ActualState.build([same]))
    assert [m.user for m in matches] == [same] and missing == []
    # the same ref listed twice (two records of one account) still names one account, not a conflict
    twice = ActualState(users={"acc-1": same, "again": User(ref="acc-1", username="ACC-1")}, groups={}, members={})
    matches, missing = match_users(DesiredState.build([DesiredUser("acc-1")]), twice)
    assert [m.user for m in matches] == [same] and missing == []


def test_an_empty_key_names_no_account_even_a_blank_username() -> None:
    blank = User(ref="k1", username=" ", email="blank@example.com")
    desired = DesiredState(users={"": DesiredUser("")})  # built directly: DesiredState.build keys by norm()
    assert match_users(desired, ActualState.build([blank])) == ([], [""])


def test_unchanged_memberships_plan_nothing_whatever_unmanaged_groups_are_desired() -> None:
    actual = ActualState.build([ALICE], [Group("team-a"), Group("team-b"), Group("other")],
                               {"team-a": {"a1"}, "other": {"a1"}})
    same = DesiredUser("alice@example.com", groups=frozenset({"team-a", "unmanaged"}))
    assert plan(DesiredState.build([same]), actual).actions == ()
    more = DesiredUser("alice@example.com", groups=frozenset({"team-a", "team-b"}))
    fewer = DesiredUser("alice@example.com", groups=frozenset({"unmanaged"}))
    assert [(a.kind, a.group) for a in plan(DesiredState.build([more]), actual).actions] == [
        (ActionKind.ADD_MEMBER, "team-b")]
    assert [(a.kind, a.group) for a in plan(DesiredState.build([fewer]), actual).actions] == [
        (ActionKind.REMOVE_MEMBER, "team-a")]


def test_as_many_groups_as_held_is_not_the_same_groups() -> None:
    # the quick check counts first: equal counts with an unmanaged or an unheld group still plan the change
    actual = ActualState.build([ALICE], [Group("team-a"), Group("team-b")], {"team-a": {"a1"}, "team-b": {"a1"}})
    unmanaged = DesiredUser("alice@example.com", groups=frozenset({"team-a", "unmanaged"}))
    assert [(a.kind, a.group) for a in plan(DesiredState.build([unmanaged]), actual).actions] == [
        (ActionKind.REMOVE_MEMBER, "team-b")]
    alone = ActualState.build([ALICE], [Group("team-a"), Group("team-b")], {"team-a": {"a1"}})
    other = DesiredUser("alice@example.com", groups=frozenset({"team-b"}))
    assert [(a.kind, a.group) for a in plan(DesiredState.build([other]), alone).actions] == [
        (ActionKind.ADD_MEMBER, "team-b"), (ActionKind.REMOVE_MEMBER, "team-a")]


def test_an_export_row_whose_account_id_is_its_key_matches_as_the_general_path_does() -> None:
    """Issue 15: a desired user whose only name is its key (a CSV export's `User id`) is looked up once; it
    matches, conflicts on a shared name, and falls back to its email exactly as when every key is tried."""
    sam = DesiredUser("sam", identity=Identity(account_id="SAM", email="sam@example.com"))
    one = ActualState.build([User(ref="k1", username="sam", email="other@example.com")])
    matches, missing = match_users(DesiredState.build([sam]), one)
    assert [m.user.ref for m in matches] == ["k1"] and missing == []
    shared = ActualState.build([User(ref="k1", username="sam"), User(ref="k2", account_id="sam")])
    with pytest.raises(IdentityConflict, match=r"sam: its keys name 2 accounts: sam \(k1\), sam \(k2\)"):
        match_users(DesiredState.build([sam]), shared)
    by_email = ActualState.build([User(ref="k3", username="samuel", email="sam@example.com")])
    matches, missing = match_users(DesiredState.build([sam]), by_email)
    assert [m.user.ref for m in matches] == ["k3"] and missing == []
    # a name other than the key: every key is tried, the key's own account and the name's are two
    named = DesiredUser("sam", identity=Identity(username="samuel", account_id="sam"))
    with pytest.raises(IdentityConflict, match=r"sam: its keys name 2 accounts"):
        match_users(DesiredState.build([named]), ActualState.build([User(ref="k1", username="sam"),
                                                                    User(ref="k3", username="samuel")]))
