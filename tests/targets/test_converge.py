"""plan → apply → plan converges a simulated 1,000-user site through the real CLI, on each target.

Confluence DC (issue 4): unsynced entries sharing a username, a read-only LDAP directory, a
protected admin. Atlassian Cloud (issue 5): SCIM-synced users and groups, an org admin, a group
whose product licence is limited. The desired state is the site as it is plus deliberate changes
on ordinary users, so the exact plan SPEC §5 prescribes is known: the test compares every action.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconcile.plan import Plan
from reconcile.sim.app import build_app
from reconcile.sim.atlassian_cloud.world import CloudWorld
from reconcile.sim.confluence_dc.generate import ADMIN_PASSWORD, generate_dc
from reconcile.sim.server import running
from tests.support.cli import reconcile

pytestmark = pytest.mark.slow
INTERNAL = "Confluence Internal Directory"
# Several pages of every listing on both targets; completeness at 5,000 users is proven by the fetch tests
# (test_dc_fetch.py, test_cloud_target.py), so a bigger site here would only be slower.
SITE_USERS = 1_000


def cli(desired: Path, state: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    result = reconcile("--desired", str(desired), "--state-dir", str(state), *args,
                                env={"NO_COLOR": "1", "USER": "acceptance", **env})
    return result.exit_code, result.output


def converge(tmp: Path, url: str, env: dict[str, str]) -> Plan:
    """plan --out, apply --approve <digest>, plan --detailed-exitcode: returns the applied plan."""
    desired, state, plan_file = tmp / "desired", tmp / "state", tmp / "plan.json"
    code, out = cli(desired, state, env, "plan", "--out", str(plan_file))
    assert code == 0, out
    plan = Plan.loads(plan_file.read_text())
    code, out = cli(desired, state, env, "apply", str(plan_file), "--approve", plan.digest[:12])
    assert code == 0, out
    # "matches" only without warnings; these worlds keep some (protected, read-only)
    assert re.search(r"The target now matches the desired state\.|Nothing left to change, but \d+ warn", out)
    code, out = cli(desired, state, env, "plan", "--detailed-exitcode")
    assert code == 0, out
    assert "No changes" in out
    stats = httpx.get(f"{url}/_sim/stats").json()
    assert stats["violations"] == 0, stats
    return plan


def triples(plan: Plan) -> set[tuple[str, str, str | None]]:
    return {(str(a.kind), a.subject.ref, a.group) for a in plan.actions}


def yaml_users(users: dict[str, tuple[str, list[str]]]) -> str:
    lines = ["users:"]
    for key, (status, groups) in sorted(users.items()):
        lines.append(f"  {key}: {{status: {status}, groups: [{', '.join(sorted(groups))}]}}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ Confluence DC


@pytest.fixture(scope="module")
def dc_site() -> Iterator[tuple[str, dict[str, Any]]]:
    with running(build_app(dc=generate_dc(SITE_USERS, 60, 4 * SITE_USERS, seed=11))) as url:
        state = httpx.get(f"{url}/_sim/state", params={"api": "confluence-dc"}).json()["confluence-dc"]
        yield url, state


def test_a_confluence_dc_site_converges_exactly_as_spec_says(dc_site, tmp_path: Path) -> None:
    url, state = dc_site
    users = state["users"]
    live = [u for u in users if not u["unsynced"]]
    unsynced = [u for u in users if u["unsynced"]]
    key_of = {u["username"]: u["key"] for u in live}
    managed = {g["name"]: set(g["members"]) for g in state["groups"] if g["name"].startswith(("team-", "ldap-"))}
    teams = sorted(g for g in managed if g.startswith("team-"))
    ldap = sorted(g for g in managed if g.startswith("ldap-"))
    groups_of: dict[str, set[str]] = {}
    for group, members in managed.items():
        for name in members:
            groups_of.setdefault(name, set()).add(group)
    # Deliberate changes only on ordinary users of the writable internal directory.
    ordinary = [u["username"] for u in live if u["directory"] == INTERNAL and u["username"] != "admin"]
    active = [n for n in ordinary if next(u for u in live if u["username"] == n)["active"]]
    disabled = [n for n in ordinary if n not in set(active)]
    assert len(active) > 60 and len(disabled) >= 3 and len(unsynced) >= 4 and ldap
    shared = {u["username"] for u in unsynced}
    assert len(shared) < len(unsynced)  # unsynced entries share usernames

    desired: dict[str, tuple[str, list[str]]] = {
        u["username"]: ("active" if u["active"] else "disabled", sorted(groups_of.get(u["username"], ())))
        for u in live if u["username"] != "admin"
    }
    expected: set[tuple[str, str, str | None]] = set()
    for name in active[0:10]:  # absent: disabled, memberships kept
        del desired[name]
        expected.add(("disable", key_of[name], None))
    for name in active[10:15]:  # desired disabled
        desired[name] = ("disabled", desired[name][1])
        expected.add(("disable", key_of[name], None))
    for name in disabled[0:3]:  # desired active
        desired[name] = ("active", desired[name][1])
        expected.add(("enable", key_of[name], None))
    for name in active[20:30]:  # one more team each
        group = next(g for g in teams if g not in desired[name][1])
        desired[name] = (desired[name][0], [*desired[name][1], group])
        expected.add(("add_member", key_of[name], group))
    removed = [n for n in active[30:60] if any(g.startswith("team-") for g in desired[n][1])][:10]
    for name in removed:  # one team less each
        group = next(g for g in desired[name][1] if g.startswith("team-"))
        desired[name] = (desired[name][0], [g for g in desired[name][1] if g != group])
        expected.add(("remove_member", key_of[name], group))
    readonly = active[60:63]  # membership of read-only directory groups: warnings only
    for name in readonly:
        group = next(g for g in ldap if g not in desired[name][1])
        desired[name] = (desired[name][0], [*desired[name][1], group])
    for entry in unsynced:  # every entry its own delete, by userKey
        expected.add(("delete", entry["key"], None))

    (tmp_path / "desired").mkdir()
    (tmp_path / "desired" / "site.yaml").write_text(f"""\
version: 1
target:
  type: confluence-dc
  url: {url}
  auth:                      # Basic auth: the unsynced-users admin page needs a websudo session
    username: admin
    password: ${{CONFLUENCE_PASSWORD}}
  readonly_groups: ["ldap-*"]
scope:
  users: ["*"]
  groups: ["team-*", "ldap-*"]
policy:
  absent: disable
  unsynced: delete
""")
    (tmp_path / "desired" / "users.yaml").write_text(yaml_users(desired))

    plan = converge(tmp_path, url, {"CONFLUENCE_PASSWORD": ADMIN_PASSWORD})

    assert triples(plan) == expected
    assert all(a.unsynced for a in plan.actions if str(a.kind) == "delete")
    warnings = {(str(w.kind), w.subject) for w in plan.warnings}
    assert ("protected", "admin") in warnings
    assert {("readonly", name) for name in readonly} <= warnings
    after = httpx.get(f"{url}/_sim/state", params={"api": "confluence-dc"}).json()["confluence-dc"]
    assert not [u for u in after["users"] if u["unsynced"]]
    admin = next(u for u in after["users"] if u["username"] == "admin")
    assert admin["active"]  # protected: absent from the desired state, never disabled


# ---------------------------------------------------------------------------------- Atlassian Cloud

ORG_KEY = "sim-cloud-key"
DIRECTORY = "5d2f0a1e-0000-4000-8000-0000000000d1"


def test_an_atlassian_cloud_org_converges_exactly_as_spec_says(tmp_path: Path) -> None:
    world = CloudWorld.generate(SITE_USERS, 60, 4 * SITE_USERS, seed=5)
    ids = list(world.users)
    synced_users = [a for a, u in world.users.items() if u.management_source == "synced"]
    synced_groups = [g for g in world.groups.values() if g.external_synced]
    admins = [a for a, u in world.users.items() if "atlassian/org-admin" in u.platform_roles]
    assert synced_users and synced_groups and admins
    licensed = next(g for g in world.groups.values() if not g.external_synced)
    licensed.products = ["jira-software"]

    ordinary = [a for a in ids[1:] if a not in set(synced_users) and world.users[a].status == "active"]
    plain_groups = sorted(g.name for g in world.groups.values() if not g.external_synced)
    groups_of: dict[str, set[str]] = {}
    for group in world.groups.values():
        for member in group.members:
            groups_of.setdefault(member, set()).add(group.name)

    def email(account: str) -> str:
        return world.users[account].email

    def status(account: str) -> str:
        return "active" if world.users[account].status == "active" else "disabled"

    desired = {email(a): (status(a), sorted(groups_of.get(a, ()))) for a in ids}
    for account in admins:  # asked to flip an org admin's status: protected, a warning, never an action
        desired[email(account)] = ("disabled" if status(account) == "active" else "active", desired[email(account)][1])
    expected: set[tuple[str, str, str | None]] = set()
    for account in ordinary[0:10]:  # absent: suspended, memberships kept
        del desired[email(account)]
        expected.add(("disable", account, None))
    joiners = [a for a in ordinary[10:40] if licensed.name not in groups_of.get(a, set())][:5]
    for account in joiners:  # into the licence-limited group: exactly the seats that are left
        key = email(account)
        desired[key] = (desired[key][0], [*desired[key][1], licensed.name])
        expected.add(("add_member", account, licensed.name))
    world.licences = {"jira-software": world.seats_used("jira-software") + len(joiners)}
    for account in ordinary[40:45]:  # one group less each
        key = email(account)
        dropped = next((g for g in desired[key][1] if g in plain_groups), None)
        if dropped is not None:
            desired[key] = (desired[key][0], [g for g in desired[key][1] if g != dropped])
            expected.add(("remove_member", account, dropped))
    for account in synced_users[:3]:  # IdP-managed: warnings, never written
        key = email(account)
        if key in desired:
            desired[key] = ("disabled" if desired[key][0] == "active" else "active", desired[key][1])

    with running(build_app(cloud=world)) as url:
        (tmp_path / "desired").mkdir()
        (tmp_path / "desired" / "org.yaml").write_text(f"""\
version: 1
target:
  type: atlassian-cloud
  org_id: {world.org_id}
  url: {url}
  auth:
    api_key: ${{ATLASSIAN_ADMIN_KEY}}
scope:
  users: ["*@example.com"]
  groups: ["group-*"]
policy:
  absent: disable
""")
        (tmp_path / "desired" / "users.yaml").write_text(yaml_users(desired))
        plan = converge(tmp_path, url, {"ATLASSIAN_ADMIN_KEY": ORG_KEY})

        assert triples(plan) == expected
        warnings = {(str(w.kind), w.subject) for w in plan.warnings}
        assert {("protected", email(a)) for a in admins} <= warnings
        assert {("synced", email(a)) for a in synced_users[:3]} <= warnings
        assert set(joiners) <= licensed.members  # every seat that was left is used ...
        assert world.seats_used("jira-software") <= world.licences["jira-software"]  # ... and no more
