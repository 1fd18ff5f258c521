"""`policy.inactive`, `policy.licences`, `policy.delete_guard`, `policy.exemptions` and `exemptions:` (issue 14):
every valid form loads into the exact dataclass; every bad one is one `file:line:col` line, and the JSON
Schema agrees wherever a single file can tell.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest

from reconcile.model import Policy
from reconcile.policies import (
    AppliesTo,
    DeleteGuard,
    ExemptFrom,
    Exemption,
    ExemptionRules,
    GuardCondition,
    GuardUnknown,
    InactiveAction,
    InactivePolicy,
    LicencePolicy,
    SeatThreshold,
    UnknownActivity,
)
from tests.config.test_config_schema import schema_errors
from tests.support.config import HEAD, NOW, load, problems, write

# HEAD with the licence groups managed: lines 1-9, the cases start at line 10.
DC = HEAD.replace('["team-*"]', '["team-*", confluence-users, jira-users]')
CLOUD = """\
version: 1
target:
  type: atlassian-cloud
  org_id: org-1
  auth: {api_key: "${TOKEN}"}
scope:
  users: ["*@example.com"]
  groups: [confluence-users, jira-users]
policy:
"""  # lines 1-9; the policy's keys start at line 10
DAYS = timedelta(days=1)
ALICE = Exemption(user="alice@example.com", reason="parental leave", owner="bob@example.com",
                  until=date(2027, 3, 1), covers=frozenset({ExemptFrom.INACTIVE}))
EXEMPT_ALICE = """\
exemptions:
  - user: alice@example.com
    reason: parental leave
    owner: bob@example.com
    until: 2027-03-01
    from: [inactive]
"""


@dataclass(frozen=True)
class Good:
    id: str
    files: dict[str, str]
    policy: Policy


GOOD = [
    Good("no new section: every rule is off", {"main.yaml": DC}, Policy()),
    Good("inactive, the least to write", {"main.yaml": DC + "policy:\n  inactive: {after: 90d, action: disable}\n"},
         Policy(inactive=InactivePolicy(action=InactiveAction.DISABLE, after=90 * DAYS))),
    Good("inactive, every key, on Cloud", {"main.yaml": CLOUD + """\
  inactive:
    after: 12w
    never_active_after: 30d
    activity: [confluence, jira-software]
    action: remove_licence
    applies_to: desired
    warn_before: 2w
    unknown: skip
  licences:
    groups: [Confluence-Users, jira-users, confluence-users]
    warn_at: 45
    fail_at: 50
"""}, Policy(
        inactive=InactivePolicy(action=InactiveAction.REMOVE_LICENCE, after=84 * DAYS,
                                never_active_after=30 * DAYS, activity=frozenset({"confluence", "jira-software"}),
                                applies_to=AppliesTo.DESIRED, warn_before=14 * DAYS, unknown=UnknownActivity.SKIP),
        licences=LicencePolicy(groups=("confluence-users", "jira-users"), warn_at=SeatThreshold(seats=45),
                               fail_at=SeatThreshold(seats=50)))),
    Good("never active only; activity any on DC", {"main.yaml": DC + """\
policy:
  inactive: {never_active_after: 60d, activity: any, action: disable, applies_to: absent}
"""}, Policy(inactive=InactivePolicy(action=InactiveAction.DISABLE, never_active_after=60 * DAYS,
                                     applies_to=AppliesTo.ABSENT))),
    Good("seat thresholds as exact percentages", {"main.yaml": DC + """\
policy:
  licences: {warn_at: "92.5%", fail_at: "100%"}
"""}, Policy(licences=LicencePolicy(warn_at=SeatThreshold(percent=Fraction(185, 2)),
                                    fail_at=SeatThreshold(percent=Fraction(100))))),
    Good("delete guard with its defaults", {"main.yaml": DC + "policy:\n  delete_guard: {}\n"},
         Policy(delete_guard=DeleteGuard(when=frozenset(GuardCondition), content_over=0,
                                         unknown=GuardUnknown.BLOCK))),
    Good("delete guard narrowed", {"main.yaml": DC + """\
policy:
  absent: delete
  delete_guard: {when: [sole_space_admin, content_created], content_over: 10, unknown: allow}
"""}, Policy(absent=Policy().absent.DELETE, delete_guard=DeleteGuard(
        when=frozenset({GuardCondition.SOLE_SPACE_ADMIN, GuardCondition.CONTENT_CREATED}), content_over=10,
        unknown=GuardUnknown.ALLOW))),
    Good("exemptions across files, in file order, from both rules by default", {
        "main.yaml": DC + EXEMPT_ALICE,
        "team.yaml": "exemptions:\n  - {user: svc-backup, reason: API tokens only, owner: platform, until: "
                     "2027-12-01}\n"},
         Policy(exemptions=(ALICE, Exemption(user="svc-backup", reason="API tokens only", owner="platform",
                                             until=date(2027, 12, 1), covers=frozenset(ExemptFrom))))),
    Good("an expired exemption loads (the plan warns about it)", {"main.yaml": DC + EXEMPT_ALICE.replace(
        "2027-03-01", "2026-01-31")}, Policy(exemptions=(replace(ALICE, until=date(2026, 1, 31)),))),
    Good("a longer horizon, to its last day", {"main.yaml": DC + """\
policy:
  exemptions: {max_ahead: 104w, warn_within: 30d}
exemptions:
  - {user: "712020:0c0a", reason: contractor, owner: olga@example.com, until: 2028-11-28, from: [licences]}
"""}, Policy(exemption_rules=ExemptionRules(max_ahead=728 * DAYS, warn_within=30 * DAYS),
             exemptions=(Exemption(user="712020:0c0a", reason="contractor", owner="olga@example.com",
                                   until=date(2028, 11, 28), covers=frozenset({ExemptFrom.LICENCES})),))),
]


@pytest.mark.parametrize("case", GOOD, ids=[c.id for c in GOOD])
def test_valid_forms_load_into_the_exact_dataclasses(case: Good, tmp_path: Path) -> None:
    directory = write(tmp_path / "desired", case.files)
    assert load(directory).policy == case.policy
    assert schema_errors(directory) == []


@dataclass(frozen=True)
class Bad:
    id: str
    files: dict[str, str]
    expected: list[str]
    schema: bool  # whether the JSON Schema (one file at a time, no clock) rejects it too


def inactive(body: str, head: str = DC) -> dict[str, str]:
    """`policy.inactive` (lines 11-) with `body`'s keys indented under it."""
    return {"main.yaml": head + "policy:\n  inactive:\n" + "".join(f"    {line}\n" for line in body.splitlines())}


def exemption(body: str, extra: str = "") -> dict[str, str]:
    """One exemption (its first key on line 11) in a file with the DC head."""
    lines = body.splitlines()
    text = DC + "exemptions:\n  - " + lines[0] + "\n" + "".join(f"    {line}\n" for line in lines[1:])
    return {"main.yaml": text + extra}


FULL = "user: alice@example.com\nreason: parental leave\nowner: bob@example.com\nuntil: 2027-03-01"
M = "desired/main.yaml"

BAD = [
    Bad("after without a unit", inactive("after: 90\naction: disable"),
        [f"{M}:12:12: policy.inactive.after: 90 has no unit; add a unit, e.g. 90d"], True),
    Bad("after in words", inactive("after: 90 days\naction: disable"),
        [f"{M}:12:12: policy.inactive.after: '90 days' is not a duration; write whole days or weeks, e.g. 90d "
         "or 12w"], True),
    Bad("after in hours", inactive("after: 36h\naction: disable"),
        [f"{M}:12:12: policy.inactive.after: '36h' is not a duration; write whole days or weeks, e.g. 90d or "
         "12w"], True),
    Bad("after of zero days", inactive("after: 0d\naction: disable"),
        [f"{M}:12:12: policy.inactive.after: must be at least 1d, got '0d'"], True),
    Bad("action delete", inactive("after: 90d\naction: delete"),
        [f"{M}:13:13: policy.inactive.action: never delete for inactivity; use remove_licence (frees the seat, "
         "keeps the account) or disable (policy.absent and policy.delete_guard decide deletes)"], True),
    Bad("no action", inactive("after: 90d"),
        [f"{M}:11:3: policy.inactive: missing required key 'action'; say what happens to inactive users: "
         "action: remove_licence (frees the seat) or action: disable"], True),
    Bad("no threshold", inactive("action: disable\nunknown: skip"),
        [f"{M}:11:3: policy.inactive: give after (e.g. 90d), never_active_after, or both"], True),
    Bad("remove_licence without licences.groups", inactive("after: 90d\naction: remove_licence"),
        [f"{M}:13:13: policy.inactive.action: remove_licence needs policy.licences.groups: name the "
         "licence-granting groups it may remove, e.g. groups: [confluence-users]"], False),
    Bad("a licence group outside scope.groups",
        {"main.yaml": DC + "policy:\n  inactive: {after: 90d, action: remove_licence}\n"
         "  licences: {groups: [confluence-users, bitbucket-users]}\n"},
        [f"{M}:12:41: policy.licences.groups: group 'bitbucket-users' is outside scope.groups; the policy "
         "removes managed groups only: add it (or a glob matching it) to scope.groups, or remove it here"], False),
    Bad("fail_at below warn_at", {"main.yaml": DC + 'policy:\n  licences: {warn_at: "95%", fail_at: "90%"}\n'},
        [f"{M}:11:39: policy.licences.fail_at: 90% is below warn_at 95%; fail_at must be at least warn_at"],
        False),
    Bad("a percentage over 100", {"main.yaml": DC + 'policy:\n  licences: {fail_at: "110%"}\n'},
        [f"{M}:11:23: policy.licences.fail_at: '110%' is neither a count (25) nor a percentage up to 100% "
         "(\"10%\")"], True),
    Bad("warn_before not shorter than after", inactive("after: 30d\nwarn_before: 5w\naction: disable"),
        [f"{M}:13:18: policy.inactive.warn_before: 35d is not shorter than after (30d); the warning window must "
         "end before the cutoff"], False),
    Bad("products on Data Center", inactive("after: 90d\nactivity: [confluence]\naction: disable"),
        [f"{M}:13:15: policy.inactive.activity: Confluence Data Center reports only the last login; leave "
         "activity out (or write `any`): the last login counts"], False),
    Bad("a misspelt product", inactive("after: 90d\nactivity: [confluance]\naction: disable",
                                       CLOUD.removesuffix("policy:\n")),
        [f"{M}:12:16: policy.inactive.activity[0]: unknown value 'confluance'; did you mean 'confluence'? "
         "(allowed: confluence, jira, jira-software, jira-service-desk, jira-core, jira-ops, bitbucket, trello, "
         "opsgenie, statuspage, stride, hipchat)"], True),
    Bad("activity as a single word", inactive("after: 90d\nactivity: confluence\naction: disable"),
        [f"{M}:13:15: policy.inactive.activity: write `any` or a list of product keys, e.g. [confluence]"],
        True),
    Bad("exemption without owner", exemption("user: alice@example.com\nreason: leave\nuntil: 2027-03-01"),
        [f"{M}:11:5: exemptions[0]: missing required key 'owner'; name who answers for it, e.g. owner: "
         "bob@example.com"], True),
    Bad("exemption without until", exemption("user: alice@example.com\nreason: leave\nowner: bob"),
        [f"{M}:11:5: exemptions[0]: missing required key 'until'; every exemption ends: until: YYYY-MM-DD (at "
         "most 365 days ahead by default)"], True),
    Bad("an empty reason", exemption(FULL.replace("parental leave", '""')),
        [f"{M}:12:13: exemptions[0].reason: must not be empty"], True),
    Bad("until not a date", exemption(FULL.replace("2027-03-01", "2027-02-30")),
        [f"{M}:14:12: exemptions[0].until: '2027-02-30' is not a date; write YYYY-MM-DD, e.g. 2027-03-01"],
        False),  # the schema's `format: date` is an annotation only
    Bad("until in words", exemption(FULL.replace("2027-03-01", "next spring")),
        [f"{M}:14:12: exemptions[0].until: 'next spring' is not a date; write YYYY-MM-DD, e.g. 2027-03-01"],
        True),
    Bad("until a day too far ahead", exemption(FULL.replace("2027-03-01", "2027-12-02")),
        [f"{M}:14:12: exemptions[0].until: 2027-12-02 is 366 days ahead of 2026-12-01, more than the 365 "
         "allowed; choose an earlier date (or raise policy.exemptions.max_ahead)"], False),
    Bad("from absent", exemption(FULL + "\nfrom: [inactive, absent]"),
        [f"{M}:15:22: exemptions[0].from[1]: an exemption never covers absent: leaving the source still "
         "offboards; remove the user from the desired state's sources only when they should go"], True),
    Bad("from protect", exemption(FULL + "\nfrom: [protect]"),
        [f"{M}:15:12: exemptions[0].from[0]: protect is not a rule to be exempted from: protected principals "
         "are never touched (scope.protect)"], True),
    Bad("two exemptions for one user and rule",
        exemption(FULL + "\nfrom: [licences]", "  - {user: Alice@example.com, reason: again, owner: carol, until: "
                  "2027-01-01}\n"),
        [f"{M}:16:5: exemptions: user 'Alice@example.com' is already exempt from licences at {M}:11:5; write "
         "one exemption per user and rule"], False),
]


@pytest.mark.parametrize("case", BAD, ids=[c.id for c in BAD])
def test_bad_input_is_one_line_where_it_was_written(case: Bad, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "desired", case.files)
    assert problems("desired") == case.expected


@pytest.mark.parametrize("case", BAD, ids=[c.id for c in BAD])
def test_the_schema_rejects_exactly_the_single_file_cases(case: Bad, tmp_path: Path) -> None:
    errors = schema_errors(write(tmp_path / "desired", case.files))
    assert bool(errors) is case.schema, errors


@pytest.mark.parametrize(("until", "ok"), [("2027-12-01", True), ("2027-12-02", False), ("2020-01-01", True)])
def test_the_horizon_is_measured_from_the_given_now(until: str, ok: bool, tmp_path: Path) -> None:
    """365 days after NOW's date is allowed, a day more is not; a later `now` moves the horizon with it."""
    directory = write(tmp_path / "desired", exemption(FULL.replace("2027-03-01", until)))
    assert (problems(directory) == []) is ok
    assert problems(directory, now=NOW + timedelta(days=1)) == []


def test_load_refuses_a_naive_now(tmp_path: Path) -> None:
    directory = write(tmp_path / "desired", {"main.yaml": DC})
    with pytest.raises(ValueError, match="timezone-aware"):
        load(directory, now=datetime(2026, 12, 1))  # naive: the point of the test
    assert load(directory, now=datetime(2026, 12, 1, tzinfo=UTC)).policy == Policy()
