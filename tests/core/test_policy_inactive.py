"""policy.inactive, exemptions and seats in the planner, table-driven over `now` (issue 14, items 1-4).

Pure: `diff` on built states. Every case names the clock, the facts and what the plan must say.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconcile.diff import diff
from reconcile.errors import LimitExceeded
from reconcile.model import Activity, ActualState, Licence, User
from reconcile.plan import ActionKind, Plan, WarningKind
from reconcile.policies import (
    AppliesTo,
    ExemptFrom,
    Exemption,
    InactiveAction,
    InactivePolicy,
    LicencePolicy,
    SeatThreshold,
    UnknownActivity,
)
from tests.support.builders import actual, dc_user, desired, policy, scope
from tests.support.examples import examples

DAY = datetime(2026, 3, 2, tzinfo=UTC)  # 00:00 UTC of the evaluation day
NOW = DAY + timedelta(hours=9, minutes=30)
CUTOFF = DAY - timedelta(days=90)  # 2025-12-02T00:00Z
NEVER_CUTOFF = DAY - timedelta(days=30)
SECOND = timedelta(seconds=1)
DC = {"type": "confluence-dc", "url": "https://c.example"}
CLOUD = {"type": "atlassian-cloud", "url": "https://api.example", "org": "o"}
LICENCES = LicencePolicy(groups=("confluence-users",))


def rule(**kw: object) -> InactivePolicy:
    base: dict[str, object] = {"action": InactiveAction.REMOVE_LICENCE, "after": timedelta(days=90)}
    return InactivePolicy(**{**base, **kw})  # type: ignore[arg-type]


def user(name: str, last: datetime | dict[str, datetime] | None = None, *, unknown: bool = False,
         added: datetime | None = None) -> User:
    if unknown:
        activity = None
    elif isinstance(last, dict):
        activity = Activity(last)
    else:
        activity = Activity({"confluence": last}) if last is not None else Activity()
    return dc_user(name, last_active=activity, added_to_org=added)


def plan(users: list[User], *, now: datetime = NOW, target: dict[str, str] = DC, want: Mapping[str, Any] | None = None,
         others: dict[str, list[str]] | None = None, licence: Licence | None = None, **kw: object) -> Plan:
    names = [u.username or "" for u in users]
    members = {"confluence-users": names, **(others or {})}
    state = actual(users, members)
    if licence is not None:
        state = replace(state, licence=licence)
    wanted = want if want is not None else {n: {"groups": ["confluence-users"]} for n in names}
    settings_ = {"inactive": rule(), "licences": LICENCES, **kw}
    return diff(desired(wanted), state, scope=scope(groups=["confluence-*", "team-*"]), policy=policy(**settings_),
                target=target, now=now)


def selected(p: Plan) -> list[str]:
    return [a.subject.identity for a in p.actions if a.kind in (ActionKind.REMOVE_LICENCE, ActionKind.DISABLE)]


def warned(p: Plan, kind: WarningKind) -> list[str]:
    return [f"{w.subject}: {w.message}" for w in p.warnings if w.kind is kind]


@pytest.mark.parametrize(("last", "now", "chosen"), [
    (CUTOFF - SECOND, NOW, True),  # one second older than the cutoff: inactive
    (CUTOFF, NOW, False),  # exactly at the cutoff: not strictly older
    (CUTOFF + SECOND, NOW, False),
    (CUTOFF, DAY + timedelta(days=1), True),  # the next day's cutoff has passed it
    (CUTOFF - SECOND, DAY, True),  # any time of the same day: the same cutoff
    (CUTOFF - SECOND, DAY + timedelta(hours=23, minutes=59, seconds=59), True),
    (CUTOFF + SECOND, DAY + timedelta(hours=23, minutes=59, seconds=59), False),
], ids=["-1s", "at", "+1s", "next-day", "00:00", "23:59:59", "23:59:59+1s"])
def test_the_cutoff_is_strict_and_a_whole_day(last: datetime, now: datetime, chosen: bool) -> None:
    p = plan([user("sybil", last)], now=now)
    assert selected(p) == (["sybil"] if chosen else [])
    if chosen:
        (action,) = p.actions
        assert action.group == "confluence-users" and action.precondition.inactive is not None
        assert action.precondition.inactive.cutoff == (now.replace(hour=0, minute=0, second=0) - timedelta(days=90))
        assert action.precondition.member is True


def test_plans_made_the_same_day_are_identical() -> None:
    users = [user("sybil", CUTOFF - SECOND), user("alice", DAY - timedelta(days=3))]
    assert plan(users, now=DAY).digest == plan(users, now=DAY + timedelta(hours=23, minutes=59)).digest
    assert plan(users, now=DAY).digest != plan(users, now=DAY + timedelta(days=1)).digest  # the cutoff moved
    record = plan(users).policy
    assert record is not None and [(c.rule, c.window, c.cutoff) for c in record.cutoffs] == [
        ("inactive", "90d", CUTOFF)]


@pytest.mark.parametrize(("until", "chosen", "warning"), [
    (date(2026, 3, 2), False, "expires on 2026-03-02"),  # the last day it holds: still exempt, and expiring
    (date(2026, 3, 1), True, "expired on 2026-03-01"),  # ended yesterday: the rule applies, the owner is named
    (date(2026, 3, 15), False, "expires on 2026-03-15"),  # 13 days left: within warn_within (14d)
    (date(2026, 3, 16), False, None),  # 14 days left: not yet listed
])
def test_exemption_until_is_inclusive_and_expiry_is_announced(until: date, chosen: bool, warning: str | None) -> None:
    exemption = Exemption("sybil", "parental leave", "heidi@example.com", until)
    p = plan([user("sybil", CUTOFF - SECOND)], exemptions=(exemption,))
    assert selected(p) == (["sybil"] if chosen else [])
    notes = warned(p, WarningKind.EXEMPTION)
    if warning is None:
        assert notes == []
    else:
        assert len(notes) == 1 and warning in notes[0]
        assert "owner heidi@example.com, reason: parental leave" in notes[0]


def test_an_exemption_from_licences_does_not_lift_a_disable_and_one_naming_nobody_warns() -> None:
    licences_only = Exemption("sybil", "r", "o", date(2026, 6, 1), frozenset({ExemptFrom.LICENCES}))
    ghost = Exemption("ghost", "left in 2025", "o", date(2026, 6, 1))
    p = plan([user("sybil", CUTOFF - SECOND)], inactive=rule(action=InactiveAction.DISABLE),
             exemptions=(licences_only, ghost))
    assert [(a.kind, a.subject.identity) for a in p.actions] == [(ActionKind.DISABLE, "sybil")]
    assert warned(p, WarningKind.EXEMPTION) == [
        "ghost: exemption names nobody in scope (owner o, reason: left in 2025): a typo, or the user has left? "
        "Remove it"]
    kept = plan([user("sybil", CUTOFF - SECOND)], exemptions=(licences_only,))
    assert selected(kept) == []  # remove_licence is what `from: [licences]` lifts


@pytest.mark.parametrize(("added", "chosen", "kind"), [
    (NEVER_CUTOFF - SECOND, True, None),
    (NEVER_CUTOFF, False, None),
    (None, False, "how long they have been in the organization is not known"),
])
def test_never_active_with_and_without_a_known_age(added: datetime | None, chosen: bool, kind: str | None) -> None:
    p = plan([user("erin", None, added=added)], target=CLOUD,
             inactive=rule(never_active_after=timedelta(days=30)))
    assert selected(p) == (["erin"] if chosen else [])
    if chosen:
        assert p.actions[0].precondition.inactive is not None
        assert p.actions[0].precondition.inactive.rule == "never_active"
        assert p.actions[0].reason.startswith("never active (productAccess[any]), in the organization since")
    notes = warned(p, WarningKind.UNKNOWN_ACTIVITY)
    assert (kind is None and notes == []) or (kind is not None and kind in notes[0])


def test_never_active_without_never_active_after_is_not_selected_and_said_once() -> None:
    p = plan([user("heidi"), user("ivan")])
    assert selected(p) == []
    assert warned(p, WarningKind.UNKNOWN_ACTIVITY) == [
        "policy.inactive: never active: 2 user(s) (heidi, ivan); not selected: only "
        "policy.inactive.never_active_after selects users who were never active"]


@pytest.mark.parametrize(("activity", "chosen"), [
    (frozenset({"confluence"}), True),  # Jira yesterday does not keep a Confluence licence
    (frozenset(), False),  # any product counts
    (frozenset({"jira"}), False),
])
def test_per_product_versus_any_product(activity: frozenset[str], chosen: bool) -> None:
    stamps = {"confluence": CUTOFF - SECOND, "jira": DAY - timedelta(days=1)}
    p = plan([user("alice", stamps)], target=CLOUD, inactive=rule(activity=activity))
    assert selected(p) == (["alice"] if chosen else [])


@pytest.mark.parametrize(("unknown", "warnings"), [(UnknownActivity.WARN, 1), (UnknownActivity.SKIP, 0)])
def test_unknown_activity_is_said_once_or_skipped(unknown: UnknownActivity, warnings: int) -> None:
    p = plan([user(n, unknown=True) for n in ("a", "b", "c")], inactive=rule(unknown=unknown))
    assert selected(p) == []
    notes = warned(p, WarningKind.UNKNOWN_ACTIVITY)
    assert len(notes) == warnings
    if warnings:
        assert "no activity data for 3 user(s) (a, b, c): the target reveals no activity at all (Confluence " \
               "Data Center before 9.3 has no last logins)" in notes[0]


def test_warn_before_lists_upcoming_users_without_an_action() -> None:
    p = plan([user("niaj", CUTOFF + timedelta(days=3)), user("alice", CUTOFF + timedelta(days=30))],
             inactive=rule(warn_before=timedelta(days=14)))
    assert selected(p) == []
    assert warned(p, WarningKind.UPCOMING) == [
        "niaj: last active 2025-12-05T00:00:00Z (lastLogin): selected from 2026-03-06 (policy.inactive.after: "
        "90d, warn_before: 14d); no action yet"]
    assert plan([user("niaj", CUTOFF + timedelta(days=3))], now=NOW + timedelta(days=4),
                inactive=rule(warn_before=timedelta(days=14))).actions  # and it is selected on that day


@pytest.mark.parametrize(("applies_to", "expected"), [
    (AppliesTo.ALL, ["absent", "present"]), (AppliesTo.ABSENT, ["absent"]), (AppliesTo.DESIRED, ["present"])])
def test_applies_to(applies_to: AppliesTo, expected: list[str]) -> None:
    users = [user("present", CUTOFF - SECOND), user("absent", CUTOFF - SECOND)]
    p = plan(users, want={"present": {"groups": ["confluence-users"]}}, absent="ignore",
             inactive=rule(applies_to=applies_to))
    assert sorted(selected(p)) == expected


def test_a_desired_member_selected_is_not_added_back_and_a_protected_one_is_never_touched() -> None:
    outside = user("oliver", CUTOFF - SECOND)
    state = actual([outside, user("admin", CUTOFF - SECOND)], {"confluence-users": ["admin"]})
    p = diff(desired({"oliver": {"groups": ["confluence-users"]}, "admin": {"groups": ["confluence-users"]}}),
             state, scope=scope(groups=["confluence-*"], protect=["admin"]),
             policy=policy(inactive=rule(), licences=LICENCES), target=DC, now=NOW)
    assert p.actions == ()  # no add for oliver (the policy keeps him out), nothing for the protected admin


def test_a_seat_is_freed_only_when_no_other_licence_group_remains() -> None:
    users = [user("sybil", CUTOFF - SECOND), user("oliver", CUTOFF - SECOND)]
    granting = {"confluence-users": frozenset({"key-sybil", "key-oliver"}),
                "confluence-administrators": frozenset({"key-oliver"})}
    p = plan(users, licence=Licence("confluence", used=27, maximum=30, granting=granting))
    reasons = {a.subject.identity: a.reason for a in p.actions}
    assert reasons["sybil"].endswith("; frees the seat")
    assert reasons["oliver"].endswith("; the seat stays: still in confluence-administrators")
    assert p.seats is not None and (p.seats.used, p.seats.after, p.seats.headroom) == (27, 26, 4)
    assert p.seats.line() == "seats (confluence): 27 → 26 (max 30, headroom 4)"
    assert p.summary()["seats"] == {"product": "confluence", "used": 27, "after": 26, "max": 30, "headroom": 4,
                                    "approximate": False, "source": ""}
    assert Plan.loads(p.dumps()).seats == p.seats and Plan.loads(p.dumps()).policy == p.policy


@pytest.mark.parametrize(("warn_at", "fail_at", "force", "warning", "refused"), [
    (SeatThreshold(percent=Fraction(90)), None, False,
     "26 seats in use after the plan reach policy.licences.warn_at 90% of 28", False),
    (SeatThreshold(seats=27), None, False, None, False),
    (None, SeatThreshold(seats=25), False, None, True),  # 26 > 25: refused
    (None, SeatThreshold(seats=25), True, None, False),  # --force passes
    (None, SeatThreshold(seats=26), False, None, False),  # reaching fail_at is allowed; exceeding is not
])
def test_seat_thresholds_apply_to_the_seats_after_the_plan(warn_at: SeatThreshold | None,
                                                           fail_at: SeatThreshold | None, force: bool,
                                                           warning: str | None, refused: bool) -> None:
    licences = LicencePolicy(groups=("confluence-users",), warn_at=warn_at, fail_at=fail_at)
    p = plan([user("sybil", CUTOFF - SECOND)], licences=licences,
             licence=Licence("confluence", used=27, maximum=28))
    assert warned(p, WarningKind.SEATS) == ([f"confluence: {warning}"] if warning else [])
    if refused:
        with pytest.raises(LimitExceeded, match=r"seats: 26 in use after the plan exceeds .*fail_at 25"):
            p.check_limits({}, licences=licences, force=force)
    else:
        p.check_limits({}, licences=licences, force=force)


def test_a_percentage_threshold_without_a_known_maximum_is_said_not_guessed() -> None:
    licences = LicencePolicy(groups=("confluence-users",), fail_at=SeatThreshold(percent=Fraction(100)))
    p = plan([user("sybil", CUTOFF - SECOND)], licences=licences, target=CLOUD,
             licence=Licence("confluence", used=3, approximate=True, source="users/count"))
    assert p.seats is not None and p.seats.line() == "seats (confluence): 3 → 2 (max unknown, approximate: users/count)"
    assert "is a share of the licence's maximum, which the target does not reveal" in warned(p, WarningKind.SEATS)[0]
    p.check_limits({}, licences=licences)  # not evaluated: never refused on a guess


FACTS = st.one_of(st.none(), st.integers(min_value=-400, max_value=10).map(lambda d: DAY + timedelta(days=d)))


@settings(max_examples=examples(80), deadline=None)
@given(lasts=st.lists(FACTS, min_size=1, max_size=6), ages=st.lists(FACTS, min_size=6, max_size=6),
       later=st.integers(min_value=0, max_value=400), hours=st.integers(min_value=0, max_value=23))
def test_a_later_clock_never_unselects_a_user_whose_facts_did_not_change(
        lasts: list[datetime | None], ages: list[datetime | None], later: int, hours: int) -> None:
    users = [user(f"u{i}", last, added=ages[i]) for i, last in enumerate(lasts)]
    inactive = rule(never_active_after=timedelta(days=30), warn_before=timedelta(days=14))
    early = set(selected(plan(users, now=NOW, target=CLOUD, inactive=inactive)))
    late = set(selected(plan(users, now=NOW + timedelta(days=later, hours=hours), target=CLOUD, inactive=inactive)))
    assert early <= late


def test_disable_carries_the_fact_and_the_status_as_preconditions() -> None:
    p = plan([user("sybil", CUTOFF - SECOND)], inactive=rule(action=InactiveAction.DISABLE))
    (action,) = p.actions
    assert action.kind is ActionKind.DISABLE
    assert action.precondition.to_json() == {
        "status": "active", "inactive": {"cutoff": "2025-12-02T00:00:00Z", "products": [],
                                         "last_active": "2025-12-01T23:59:59Z", "rule": "inactive",
                                         "source": "lastLogin"}}


def test_no_policy_no_record_no_seats() -> None:
    p = diff(desired({"a": {}}), ActualState.build([dc_user("a")]), scope=scope(), policy=policy(), target=DC,
             now=NOW)
    assert p.policy is None and p.seats is None and "seats" not in p.summary() and "policy" not in p.body()


def test_a_licence_group_the_tool_cannot_write_is_a_warning_with_the_reason_not_an_action() -> None:
    ann = user("ann", DAY - timedelta(days=200))
    state = actual([ann], {"ro-licence": ["ann"], "idp-licence": ["ann"]}, readonly=["ro-licence"],
                   idp_managed=["idp-licence"])
    p = diff(desired({"ann": {"groups": ["ro-licence", "idp-licence"]}}), state, scope=scope(groups=["*-licence"]),
             policy=policy(inactive=rule(), licences=LicencePolicy(groups=("ro-licence", "idp-licence"))),
             target=DC, now=NOW)
    why = ("inactive: last active 2025-08-14T00:00:00Z (lastLogin), before the cutoff 2025-12-02 "
           "(policy.inactive.after: 90d)")
    assert selected(p) == []
    assert warned(p, WarningKind.READONLY) == [
        f"ann: ro-licence belongs to a read-only directory: would remove the licence group ro-licence ({why}); "
        "change it in the directory"]
    assert warned(p, WarningKind.IDP_MANAGED) == [
        f"ann: idp-licence is synced from the identity provider: would remove the licence group idp-licence ({why}); "
        "change it in the IdP"]
