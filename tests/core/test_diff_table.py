"""Table-driven tests of the planner: one row per rule of SPEC §4 and §5."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from reconcile.diff import diff
from reconcile.errors import ConfigError, EmptySource, IdentityConflict, LimitExceeded, ReconcileError
from reconcile.model import AbsentPolicy, Limit, SourceNote, UnsyncedPolicy, User
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
    want: dict[str, Any] = {"alice": {}}
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
        idp_managed=["team-idp"],
    )
    assert lines(plan) == []
    assert sorted(w.kind for w in plan.warnings) == [WarningKind.READONLY, WarningKind.IDP_MANAGED]


def test_synced_users_are_never_written():
    idp_managed = User(ref="acc-1", account_id="acc-1", email="sam@example.com", idp_managed=True)
    plan = plan_of({"alice": {}}, [ALICE, idp_managed], {})
    assert lines(plan) == []
    assert [(w.kind, w.subject) for w in plan.warnings] == [(WarningKind.IDP_MANAGED, "sam@example.com")]


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
    want: dict[str, Any] = {"dave": {}}
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
    want: dict[str | None, Any] = {u.username: {} for u in users[disabled:]}
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


# Review findings in the planner and the plan (SPEC §4, §5, §7): each test failed before its fix.
#
# Pure tests over the tiny builders: identity matching of email-shaped usernames, the empty-source
# guard for sources whose users are all outside scope, exact percentage limits, plan-file errors.
EXAMPLE = scope(users=["*@example.com"])

def test_email_shaped_username_matches_by_username_first_on_dc_before_9_3() -> None:
    # Confluence DC before 9.3 reveals no email; many sites use the email as the username.
    # SPEC §4: matching is exact on username first. Before the fix the desired user was "missing"
    # and its own account was planned for `disable` as absent from the desired state.
    bob = User(ref="key-bob", username="bob@example.com")
    eve = User(ref="key-eve", username="eve@example.com")
    plan = diff(desired({"Bob@Example.com": {"groups": ["team-a"]}, "eve@example.com": {}}),
                actual([bob, eve], {"team-a": []}), scope=EXAMPLE, policy=policy(), target=TARGET, now=NOW)
    assert lines(plan) == ["add_member Bob@Example.com team-a"]
    assert plan.warnings == ()


def test_username_match_still_wins_over_another_accounts_email() -> None:
    by_name = User(ref="key-1", username="bob@example.com")
    by_mail = User(ref="key-2", username="robert", email="bob@example.com")
    plan = diff(desired({"bob@example.com": {"status": "disabled"}, "robert": {}}),
                actual([by_name, by_mail]), scope=scope(), policy=policy(), target=TARGET, now=NOW)
    assert [(a.kind, a.subject.ref) for a in plan.actions] == [("disable", "key-1")]


def test_desired_users_all_outside_scope_are_refused_like_an_empty_source() -> None:
    # A CSV export of the wrong organization, or an LDAP filter on the wrong base: the source
    # returns users, none of them in scope, so every in-scope account is "absent". --force lifts
    # only limits (check_limits), so the guard must be in diff itself.
    users = [dc_user(f"u{i}", email=f"u{i}@example.com") for i in range(3)]
    wrong = desired({"alice@other.org": {}, "bob@other.org": {}})
    with pytest.raises(EmptySource) as caught:
        diff(wrong, actual(users), scope=EXAMPLE, policy=policy(), target=TARGET, now=NOW)
    assert caught.value.exit_code == 4
    text = str(caught.value)
    assert "none of the 2 desired users is in scope" in text and "scope.users" in text
    assert "allow_empty" in text and "--force does not lift" in text
    # the guard is lifted where the SPEC lifts it, and is moot when absent users are left alone
    allowed = diff(wrong, actual(users), scope=EXAMPLE, policy=policy(allow_empty=True), target=TARGET, now=NOW)
    assert lines(allowed) == ["disable u0", "disable u1", "disable u2"]
    ignored = diff(wrong, actual(users), scope=EXAMPLE, policy=policy(absent=AbsentPolicy.IGNORE),
                   target=TARGET, now=NOW)
    assert lines(ignored) == []


def test_a_desired_user_in_scope_through_its_account_or_as_a_missing_user_passes_the_guard() -> None:
    carol = dc_user("carol", email="carol@example.com")
    # keyed by username; in scope through the account's email (DC 9.3+)
    plan = diff(desired({"carol": {}}), actual([carol, dc_user("dan", email="dan@example.com")]),
                scope=EXAMPLE, policy=policy(), target=TARGET, now=NOW)
    assert lines(plan) == ["disable dan"]
    # not yet on the target, but in scope: a real (if early) desired state, not a wrong source
    plan = diff(desired({"new@example.com": {}}), actual([carol]), scope=EXAMPLE, policy=policy(),
                target=TARGET, now=NOW)
    assert lines(plan) == ["disable carol"]


def test_one_configured_source_entirely_outside_scope_is_refused_by_name() -> None:
    # The inline users are fine; the `hr` source returns only out-of-scope users: without the
    # guard, everyone `hr` should list would be disabled while the plan looks plausible.
    users = [dc_user("alice", email="alice@example.com"), dc_user("bob", email="bob@example.com")]
    merged = desired({"alice@example.com": {}, "x@other.org": {}, "y@other.org": {}})
    guarded = replace(merged, guarded={"hr": frozenset({"x@other.org", "y@other.org"})})
    with pytest.raises(EmptySource, match=r"source 'hr' returned 2 users, none of them in scope"):
        diff(guarded, actual(users), scope=EXAMPLE, policy=policy(), target=TARGET, now=NOW)
    # a source with one in-scope user passes
    fine = replace(merged, guarded={"hr": frozenset({"x@other.org", "alice@example.com"})})
    assert lines(diff(fine, actual(users), scope=EXAMPLE, policy=policy(), target=TARGET, now=NOW)) == ["disable bob"]


@pytest.mark.parametrize(("limit", "base", "count"), [("18.4%", 375, 69), ("32.8%", 375, 123), ("0.1%", 1000, 1)])
def test_a_percentage_limit_is_exceeded_only_when_strictly_greater_exactly(limit: str, base: int,
                                                                           count: int) -> None:
    # 18.4% of 375 is exactly 69: allowed. Float arithmetic used to say 69 > 68.99999…
    assert Limit.parse(limit).allows(count, base)
    assert not Limit.parse(limit).allows(count + 1, base)


@pytest.mark.parametrize(
    ("text", "expected"),
    [('{"broken', "not a reconcile plan file"), ("[1, 2]", "not a reconcile plan file"),
     ("null", "not a reconcile plan file")],
)
def test_a_corrupt_plan_file_is_not_called_a_desired_state_problem(text: str, expected: str) -> None:
    from reconcile.plan import Plan

    with pytest.raises(ReconcileError) as caught:
        Plan.loads(text, source="plan.json")
    assert not isinstance(caught.value, ConfigError)
    message = str(caught.value)
    assert message.startswith("plan.json: ") and expected in message
    assert "desired state" not in message
    assert caught.value.exit_code == 1


def test_an_edited_plan_file_names_the_file_and_the_way_out() -> None:
    from reconcile.plan import Plan

    plan = diff(desired({"alice": {}}), actual([dc_user("alice"), dc_user("bob")]), scope=scope(),
                policy=policy(), target=TARGET, now=NOW)
    edited = plan.dumps().replace('"identity": "bob"', '"identity": "admin"')
    with pytest.raises(ReconcileError) as caught:
        Plan.loads(edited, source="plan.json")
    message = str(caught.value)
    assert "plan.json" in message and "edited" in message and "desired state" not in message
    assert "reconcile plan" in message


def test_an_account_whose_email_is_hidden_is_not_taken_for_absent_while_a_desired_email_is_unfound() -> None:
    # Confluence DC 9.3+ reveals emails only for licensed active users (the active-users list), and
    # DC before 9.3 for nobody. zoe is disabled, so her email is hidden: the desired user
    # `zoe@example.com` is not found, and zoe's account looked absent. Under `absent: delete` the
    # plan deleted the very account the desired state wants active: a guess, and irreversible.
    zoe = dc_user("zoe", status="disabled")  # no email known
    alice = dc_user("alice", email="alice@example.com")
    gone = dc_user("gone", email="gone@example.com")  # email known and not desired: really absent
    want = desired({"zoe@example.com": {}, "alice@example.com": {}})
    plan = diff(want, actual([zoe, alice, gone]), scope=scope(), policy=policy(absent=AbsentPolicy.DELETE),
                target=TARGET, now=NOW)
    assert lines(plan) == ["delete gone"]
    kinds = {(w.kind, w.subject): w.message for w in plan.warnings}
    assert ("missing_user", "zoe@example.com") in kinds
    message = kinds[(WarningKind.AMBIGUOUS, "zoe")]
    assert "zoe@example.com" in message and "by username" in message and "delete" in message


def test_hidden_emails_do_not_hold_back_absent_users_when_every_desired_user_was_found() -> None:
    zoe = dc_user("zoe", status="disabled")
    bob = dc_user("bob")
    plan = diff(desired({"zoe": {}, "bob@example.com": {"username": "bob"}}),
                actual([zoe, bob, dc_user("gone")]), scope=scope(), policy=policy(absent=AbsentPolicy.DELETE),
                target=TARGET, now=NOW)
    assert lines(plan) == ["enable zoe", "delete gone"]
    assert plan.warnings == ()


def test_an_account_whose_email_is_hidden_is_protected_when_scope_protect_names_emails() -> None:
    # `protect: [ceo@example.com]` on a Confluence DC that hides the ceo's email (disabled or
    # unlicensed on 9.3+, everyone before 9.3): the glob cannot match, and the protected account
    # was disabled as absent. Fail closed: it may be protected, so it is never touched.
    ceo = dc_user("ceo")  # no email known
    known = dc_user("bob", email="bob@example.com")
    old = User(ref="key-old", username="old", unsynced=True)  # unsynced entries are not accounts
    from reconcile.model import UnsyncedPolicy

    plan = diff(desired({"alice": {}}), actual([dc_user("alice"), ceo, known, old]),
                scope=scope(protect=["ceo@example.com"]),
                policy=policy(unsynced=UnsyncedPolicy.DELETE), target=TARGET, now=NOW)
    assert lines(plan) == ["disable bob", "delete old"]
    warning = next(w for w in plan.warnings if w.subject == "ceo")
    assert warning.kind == "protected" and "scope.protect" in warning.message and "email" in warning.message
    plan = diff(desired({"alice": {}}), actual([dc_user("alice"), ceo]), scope=scope(protect=["svc-*"]),
                policy=policy(), target=TARGET, now=NOW)
    assert lines(plan) == ["disable ceo"]


def test_a_desired_user_whose_keys_name_two_accounts_is_an_error_not_a_pick() -> None:
    # The key is one account's (email-shaped) username, the source-supplied username another's.
    from reconcile.errors import IdentityConflict

    one = User(ref="key-1", username="bob@example.com")
    two = User(ref="key-2", username="robert")
    with pytest.raises(IdentityConflict, match=r"bob@example.com: its keys name 2 accounts: bob@example.com \(key-1\)"):
        diff(desired({"bob@example.com": {"username": "robert"}}), actual([one, two]), scope=scope(),
             policy=policy(), target=TARGET, now=NOW)


def test_what_a_source_reports_about_its_read_is_a_warning_named_with_that_source():
    notes = (SourceNote("entra", "2 group members skipped, not users: 2 devices"),
             SourceNote("google", "a CUSTOMER member (everyone in the account) is not expanded", subject="all@ex.com"))
    p = diff(replace(desired({"alice": {}}), notes=notes), actual([ALICE]), scope=scope(), policy=policy(),
             target=TARGET, now=NOW)
    assert [(w.subject, w.message) for w in p.warnings if w.kind is WarningKind.SOURCE] == [  # by subject
        ("all@ex.com", "source 'google': a CUSTOMER member (everyone in the account) is not expanded"),
        ("source entra", "2 group members skipped, not users: 2 devices"),
    ]
