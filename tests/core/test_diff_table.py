"""Table-driven tests of the planner: one row per rule of SPEC §4 and §5."""

from __future__ import annotations

import pytest

from reconcile.diff import diff
from reconcile.errors import EmptySource, IdentityConflict, LimitExceeded
from reconcile.model import AbsentPolicy, Limit, UnsyncedPolicy, User
from reconcile.plan import ActionKind, Plan, WarningKind
from tests.support.builders import NOW, TARGET, actual, dc_user, desired, lines, policy, scope

ALICE = dc_user("alice", email="alice@example.com")
BOB = dc_user("bob", email="bob@example.com")
CAROL = dc_user("carol", status="disabled")
ADMIN = dc_user("admin", admin=True)


def plan_of(desired_users, users, members=None, *, sc=None, po=None, **kw) -> Plan:
    return diff(
        desired(desired_users),
        actual(users, members, **kw),
        scope=sc or scope(),
        policy=po or policy(),
        target=TARGET,
     now=NOW)


CASES = [
    # (id, desired users, actual users, actual members, expected action lines)
    ("no drift", {"alice": {"groups": ["team-a"]}}, [ALICE], {"team-a": ["alice"]}, []),
    ("add member", {"alice": {"groups": ["team-a"]}}, [ALICE], {"team-a": []}, ["add_member alice team-a"]),
    ("remove member", {"alice": {}}, [ALICE], {"team-a": ["alice"]}, ["remove_member alice team-a"]),
    ("exact membership swaps", {"alice": {"groups": ["team-b"]}}, [ALICE], {"team-a": ["alice"], "team-b": []},
     ["add_member alice team-b", "remove_member alice team-a"]),
    ("unmanaged group untouched", {"alice": {}}, [ALICE], {"other": ["alice"], "team-a": []}, []),
    ("enable", {"carol": {}}, [CAROL], {}, ["enable carol"]),
    ("disable", {"alice": {"status": "disabled"}}, [ALICE], {}, ["disable alice"]),
    ("absent disabled by default, no membership actions", {"alice": {}}, [ALICE, BOB], {"team-a": ["bob"]},
     ["disable bob"]),
    ("absent already disabled", {"alice": {}}, [ALICE, CAROL], {}, []),
    ("email key matches case-insensitively", {"Alice@Example.com": {"groups": ["team-a"]}}, [ALICE],
     {"team-a": []}, ["add_member Alice@Example.com team-a"]),
    ("group names compare case-insensitively", {"alice": {"groups": ["TEAM-A"]}}, [ALICE], {"team-a": ["alice"]},
     []),
]


@pytest.mark.parametrize(("desired_users", "users", "members", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_rules(desired_users, users, members, expected):
    assert lines(plan_of(desired_users, users, members)) == expected


def test_execution_order_is_kind_then_subject_then_group():
    users = [dc_user("zed", status="disabled"), ALICE, BOB, dc_user("yan")]
    plan = plan_of(
        {"zed": {"groups": ["team-b", "team-a"]}, "bob": {"groups": ["team-a"]}, "alice": {}},
        users,
        {"team-a": ["alice"], "team-b": []},
    )
    assert lines(plan) == [
        "enable zed",
        "add_member bob team-a",
        "add_member zed team-a",
        "add_member zed team-b",
        "remove_member alice team-a",
        "disable yan",
    ]


def test_absent_policies():
    users = [ALICE, BOB, CAROL]
    want = {"alice": {}}
    assert lines(plan_of(want, users, po=policy(absent=AbsentPolicy.IGNORE))) == []
    assert lines(plan_of(want, users, po=policy(absent=AbsentPolicy.DELETE))) == ["delete bob", "delete carol"]


def test_out_of_scope_users_are_invisible():
    outsider = dc_user("ext", email="ext@partner.com")
    plan = plan_of(
        {"alice@example.com": {"groups": ["team-a"]}},
        [ALICE, outsider],
        {"team-a": ["ext"]},
        sc=scope(users=["*@example.com"]),
    )
    assert lines(plan) == ["add_member alice@example.com team-a"]
    assert "ext" not in plan.dumps()


def test_protected_principals_get_warnings_not_actions():
    svc = dc_user("svc-backup")
    me = dc_user("robot")
    plan = plan_of(
        {"alice": {}},
        [ALICE, ADMIN, svc, me],
        {"team-a": ["admin"]},
        sc=scope(protect=["svc-*"]),
        me=me.ref,
    )
    assert lines(plan) == []
    assert {(w.kind, w.subject) for w in plan.warnings} == {
        (WarningKind.PROTECTED, "admin"),
        (WarningKind.PROTECTED, "svc-backup"),
        (WarningKind.PROTECTED, "robot"),
    }


def test_readonly_and_synced_groups_warn():
    plan = plan_of(
        {"alice": {"groups": ["team-ldap", "team-idp"]}},
        [ALICE],
        {"team-ldap": [], "team-idp": []},
        readonly=["team-ldap"],
        synced=["team-idp"],
    )
    assert lines(plan) == []
    assert sorted(w.kind for w in plan.warnings) == [WarningKind.READONLY, WarningKind.SYNCED]


def test_synced_users_are_never_written():
    synced = User(ref="acc-1", account_id="acc-1", email="sam@example.com", synced=True)
    plan = plan_of({"alice": {}}, [ALICE, synced], {})
    assert lines(plan) == []
    assert [(w.kind, w.subject) for w in plan.warnings] == [(WarningKind.SYNCED, "sam@example.com")]


def test_missing_users_and_groups_warn():
    plan = plan_of({"alice": {"groups": ["team-new"]}, "ghost@example.com": {}}, [ALICE], {})
    assert lines(plan) == []
    assert sorted((w.kind, w.subject) for w in plan.warnings) == [
        (WarningKind.MISSING_GROUP, "team-new"),
        (WarningKind.MISSING_USER, "ghost@example.com"),
    ]


def test_unsynced_entries_are_deleted_by_userkey_never_matched_to_desired_users():
    # two unsynced entries share the username "dave"; a live user has it too
    live = dc_user("dave")
    u1 = User(ref="key-dave-old-1", username="dave", unsynced=True)
    u2 = User(ref="key-dave-old-2", username="dave", unsynced=True)
    want = {"dave": {}}
    assert lines(plan_of(want, [live, u1, u2])) == []  # policy.unsynced defaults to ignore
    plan = plan_of(want, [live, u1, u2], po=policy(unsynced=UnsyncedPolicy.DELETE))
    assert [(a.kind, a.subject.ref, a.unsynced) for a in plan.actions] == [
        (ActionKind.DELETE, "key-dave-old-1", True),
        (ActionKind.DELETE, "key-dave-old-2", True),
    ]


def test_username_match_wins_over_email_and_ambiguous_emails_are_errors():
    a = dc_user("alice", email="shared@example.com")
    b = dc_user("bob", email="shared@example.com")
    plan = plan_of({"alice": {"status": "disabled"}}, [a, b], {}, po=policy(absent=AbsentPolicy.IGNORE))
    assert lines(plan) == ["disable alice"]
    expected = r"shared@example.com: the email matches 2 accounts: alice \(key-alice\)"
    with pytest.raises(IdentityConflict, match=expected):
        plan_of({"shared@example.com": {}}, [a, b], {})


def test_two_desired_users_naming_one_account_is_an_error():
    with pytest.raises(IdentityConflict, match="both name the account alice"):
        plan_of({"alice": {}, "alice@example.com": {}}, [ALICE], {})


def test_source_supplied_keys_match_pre_93_users_without_email():
    no_email = dc_user("erin")  # DC < 9.3 reveals no email
    plan = plan_of({"erin@example.com": {"username": "erin", "groups": ["team-a"]}}, [no_email], {"team-a": []})
    assert lines(plan) == ["add_member erin@example.com team-a"]
    plan = plan_of({"erin@example.com": {"groups": ["team-a"]}}, [no_email], {"team-a": []},
                   po=policy(absent=AbsentPolicy.IGNORE))
    assert lines(plan) == []
    assert [w.kind for w in plan.warnings] == [WarningKind.MISSING_USER]


def test_empty_desired_state_is_refused_unless_allowed():
    with pytest.raises(EmptySource) as err:
        plan_of({}, [ALICE], {})
    assert err.value.exit_code == 4
    assert "allow_empty" in str(err.value)
    assert lines(plan_of({}, [ALICE], {}, po=policy(allow_empty=True))) == ["disable alice"]


def many(n: int) -> list[User]:
    return [dc_user(f"user{i:03}") for i in range(n)]


@pytest.mark.parametrize(
    ("limit", "disabled", "refused"),
    [
        (None, 2, False),  # 2 of 20 = 10%: not strictly greater than the 10% default
        (None, 3, True),  # 3 of 20 = 15% > 10%
        ("3", 3, False),
        ("2", 3, True),
        ("15%", 3, False),
        ("14.9%", 3, True),
    ],
)
def test_safety_limits(limit, disabled, refused):
    users = many(20)
    want = {u.username: {} for u in users[disabled:]}
    limits = {"disable": Limit.parse(limit)} if limit else {}
    plan = plan_of(want, users, {}, po=policy(limits=limits))
    assert plan.counts()["disable"] == disabled
    if refused:
        with pytest.raises(LimitExceeded, match=r"disable: 3 .*exceeds the limit") as err:
            plan.check_limits(limits)
        assert err.value.exit_code == 4
        assert "--force" in str(err.value)
        plan.check_limits(limits, force=True)  # --force lifts it
    else:
        plan.check_limits(limits)


def test_default_limits_need_twenty_users_in_scope():
    users = many(19)
    plan = plan_of({users[0].username: {}}, users, {})
    assert plan.counts()["disable"] == 18
    plan.check_limits({})  # 19 users in scope: defaults not applied


def test_deterministic_digest_and_json_round_trip():
    users = [ALICE, BOB, CAROL]
    a = plan_of({"alice": {"groups": ["team-a"]}}, users, {"team-a": ["bob"]})
    b = plan_of({"alice": {"groups": ["team-a"]}}, list(reversed(users)), {"team-a": ["bob"]})
    assert a.digest == b.digest
    assert len(a.digest) == 64 and a.digest == a.digest.lower()
    again = Plan.loads(a.dumps())
    assert again.digest == a.digest and again.actions == a.actions


def test_created_at_is_not_covered_by_the_digest():
    from dataclasses import replace

    a = plan_of({"alice": {}}, [ALICE, BOB], {})
    assert replace(a, created_at="2026-01-01T00:00:00Z").digest == a.digest


def test_seats_freed_counts_active_users_disabled_or_deleted():
    plan = plan_of({"alice": {}}, [ALICE, BOB, CAROL], {}, po=policy(absent=AbsentPolicy.DELETE))
    assert plan.seats_freed == 1  # bob; carol was already disabled


def test_unread_unsynced_entries_are_a_warning_only_when_they_would_be_deleted():
    from dataclasses import replace

    state = replace(actual([ALICE]), unsynced_unread="websudo needs a password")
    want = desired({"alice": {}})
    quiet = diff(want, state, scope=scope(), policy=policy(), target=TARGET, now=NOW)
    assert quiet.warnings == ()
    loud = diff(want, state, scope=scope(), policy=policy(unsynced=UnsyncedPolicy.DELETE), target=TARGET, now=NOW)
    assert [(w.kind, w.subject) for w in loud.warnings] == [(WarningKind.INCOMPLETE, "unsynced entries")]
    assert "websudo needs a password" in loud.warnings[0].message
