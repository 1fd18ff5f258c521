"""`reconcile export`: the actual state as a desired-state file that plans to no changes, and a CSV report."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from reconcile import config as config_loader
from reconcile.diff import diff
from reconcile.export import scalar, to_csv, to_yaml
from reconcile.model import AbsentPolicy, ActualState, Globs, Group, Limit, Policy, Scope, Status, User
from reconcile.settings import AtlassianCloudSettings, CloudSiteSettings, Config, ConfluenceDcSettings, Secret
from tests.support.builders import NOW

TOKEN = "pat-Zm9vYmFyLXNlY3JldA"  # must never be written


def dc_world() -> ActualState:
    users = [
        User("k-alice", username="alice", email="alice@example.com", display_name="Alice A"),
        User("k-bob", username="bob", email="bob@example.com", status=Status.DISABLED),
        User("k-yes", username="yes", display_name="a username YAML 1.1 reads as true"),
        User("k-num", username="1234", display_name="a username YAML reads as a number"),
        User("k-dash", username="-dash", display_name="=HYPERLINK(\"http://evil\")"),
        User("k-admin", username="admin", admin=True),
        User("k-out", username="contractor", email="c@partner.example"),  # outside scope.users
        User("k-uns", username="trent", unsynced=True),  # unsynced: never a desired user
    ]
    groups = [Group("team-docs"), Group("team platform"), Group("team-empty"), Group("other")]
    members = {
        "team-docs": ["k-alice", "k-bob", "k-out", "k-admin"],
        "team platform": ["k-alice", "k-yes", "k-num", "k-dash"],
        "other": ["k-alice"],
    }
    return ActualState.build(users, groups, members, me="k-admin")


# Every user but the contractor is in scope.
DC_SCOPE = Scope(users=Globs(("[!c]*",)), groups=Globs(("team*",)), protect=Globs(("svc-*",)))
DC_TARGET = ConfluenceDcSettings(url="https://confluence.example.com",
                               token=Secret(TOKEN, reference="${CONFLUENCE_TOKEN}"),
                               readonly_groups=Globs(("ldap-*",)))


def load_back(tmp_path: Path, text: str, env: dict[str, str]) -> Config:
    (tmp_path / "exported.yaml").write_text(text, encoding="utf-8")
    return config_loader.load(tmp_path, env=env)


@pytest.mark.parametrize("by_group", [False, True])
def test_exported_dc_state_loads_back_and_plans_no_changes(tmp_path: Path, by_group: bool) -> None:
    actual = dc_world()
    text = to_yaml(actual, DC_SCOPE, DC_TARGET, policy=Policy(absent=AbsentPolicy.DELETE), by_group=by_group)
    assert TOKEN not in text
    assert "token: ${CONFLUENCE_TOKEN}" in text
    cfg = load_back(tmp_path, text, {"CONFLUENCE_TOKEN": TOKEN})
    assert cfg.target == DC_TARGET
    assert cfg.scope == DC_SCOPE
    assert cfg.policy.absent is AbsentPolicy.DELETE
    plan = diff(cfg.inline, actual, scope=cfg.scope, policy=cfg.policy, target=DC_TARGET.address(), now=NOW)
    assert plan.actions == ()
    assert [w for w in plan.warnings if w.kind != "protected"] == []
    # What is (and is not) in the file.
    assert set(cfg.inline.users) == {"alice", "bob", "yes", "1234", "-dash", "admin"}
    assert cfg.inline.users["bob"].status is Status.DISABLED
    assert cfg.inline.users["alice"].groups == {"team-docs", "team platform"}  # not `other`: unmanaged
    assert "team-empty" in cfg.inline.groups  # a managed group with no member stays named


def test_export_writes_membership_once() -> None:
    by_user = to_yaml(dc_world(), DC_SCOPE, DC_TARGET)
    by_group = to_yaml(dc_world(), DC_SCOPE, DC_TARGET, by_group=True)
    assert '  alice: {groups: ["team platform", team-docs]}' in by_user
    assert by_user.count("members:") == 1  # only the managed group nobody is in
    assert "  team-empty: {members: []}" in by_user
    assert '  "team platform": {members: ["-dash", "1234", alice, "yes"]}' in by_group
    assert "  alice: {}" in by_group
    assert "{groups:" not in by_group


def test_cloud_export_keys_users_by_unique_email_else_account_id(tmp_path: Path) -> None:
    users = [
        User("acc-1", account_id="acc-1", email="Alice@Example.com"),
        User("acc-2", account_id="acc-2", email="shared@example.com"),
        User("acc-3", account_id="acc-3", email="shared@example.com", status=Status.DISABLED),
        User("acc-4", account_id="acc-4"),
    ]
    actual = ActualState.build(users, [Group("eng", ref="g-1")], {"eng": ["acc-1", "acc-2", "acc-4"]})
    target = AtlassianCloudSettings(
        org_id="org-123", api_key=Secret("k3y", reference="file:/run/secrets/atlassian"),
        site=CloudSiteSettings(url="https://acme.atlassian.net", email="admin@example.com",
                             token=Secret("t0k", reference="")),
    )
    scope = Scope(users=Globs(("*",)), groups=Globs(("eng",)))
    text = to_yaml(actual, scope, target)
    assert "k3y" not in text and "t0k" not in text
    assert "api_key_file: /run/secrets/atlassian" in text
    assert "token: ${ATLASSIAN_SITE_TOKEN}" in text  # no safe reference: a placeholder, never the value
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "atlassian").write_text("k3y\n")
    cfg = load_back(tmp_path, text.replace("/run/secrets/atlassian", str(secrets / "atlassian")),
                    {"ATLASSIAN_SITE_TOKEN": "t0k"})
    assert set(cfg.inline.users) == {"alice@example.com", "acc-2", "acc-3", "acc-4"}
    plan = diff(cfg.inline, actual, scope=cfg.scope, policy=cfg.policy, target=target.address(), now=NOW)
    assert plan.actions == ()


@pytest.mark.parametrize("value", ["yes", "No", "on", "null", "~", "1234", "1e5", "0x1F", "12:30", "-dash",
                                   "@me", "a: b", "#x", "x #y", "'q'", '"d"', "* star", "[x]", "{y}",
                                   "ünï", "tab\there", "", " lead", "%p", "!tag", "&a", "|", ">"])
def test_scalars_read_back_as_the_same_string(value: str) -> None:
    for version in ("1.1", "1.2"):
        yaml = YAML(typ="safe")
        yaml.version = tuple(int(p) for p in version.split("."))  # type: ignore[assignment]
        assert yaml.load(f"key: {scalar(value)}\n") == {"key": value}, (version, scalar(value))


def test_policy_limits_round_trip(tmp_path: Path) -> None:
    policy = Policy(limits={"delete": Limit(25), "disable": Limit(10, percent=True)})
    text = to_yaml(dc_world(), DC_SCOPE, DC_TARGET, policy=policy)
    assert 'limits: {delete: 25, disable: "10%"}' in text
    cfg = load_back(tmp_path, text, {"CONFLUENCE_TOKEN": TOKEN})
    assert cfg.policy.limits == policy.limits


def test_csv_report_has_every_user_with_flags_and_neutralised_formulas() -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(dc_world()))))
    assert [r["username"] for r in rows] == ["'-dash", "1234", "admin", "alice", "bob", "contractor",
                                             "trent", "yes"]
    by_ref = {r["ref"]: r for r in rows}
    assert by_ref["k-alice"]["groups"] == "other;team platform;team-docs"
    assert by_ref["k-alice"]["email"] == "alice@example.com"
    assert by_ref["k-bob"]["status"] == "disabled"
    assert by_ref["k-uns"]["unsynced"] == "yes"
    assert by_ref["k-admin"]["admin"] == "yes"
    assert by_ref["k-dash"]["username"] == "'-dash"  # a leading '-' could start a formula
    assert by_ref["k-dash"]["display_name"] == "'=HYPERLINK(\"http://evil\")"
    assert list(rows[0]) == ["username", "email", "account_id", "ref", "display_name", "status", "groups",
                             "last_active", "unsynced", "admin", "synced"]
