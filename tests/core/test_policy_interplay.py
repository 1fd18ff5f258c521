"""How the policies, the delete guard and undo work together (issue 14), end to end through the CLI on both
targets against the simulator's example world, with exact expected plans: a guard-downgraded delete applied and
then undone (the disable comes back as an enable), a licence removal applied and undone (back into the licence
group), undo plans listing irreversible deletes, and one plan mixing remove_licence, absent deletes and exemptions.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from reconcile.cli import app
from reconcile.plan import Plan
from reconcile.sim.server import running

ROOT = Path(__file__).resolve().parents[2]
ENV = {"NO_COLOR": "1", "USER": "tester", "CONFLUENCE_TOKEN": "example-admin-token",
       "ATLASSIAN_ORG_ID": "3f2a9c1e-7b4d-4e6f-9a8b-1c2d3e4f5a6b", "ATLASSIAN_ADMIN_KEY": "sim-cloud-admin-key",
       "ATLASSIAN_SITE_TOKEN": "sim-site-token"}
DC_NOW = "2026-03-02T09:00:00Z"  # the example world's Data Center facts are as of this day
CLOUD_NOW = "2026-10-01T09:00:00Z"  # and its Cloud organization's
SITE = '  site: {url: URL, email: olga@acme.example, token: "${ATLASSIAN_SITE_TOKEN}"}\n'
GUARDED = "  absent: delete\n  delete_guard: {}"


@pytest.fixture
def site() -> Iterator[str]:
    with running() as url:  # the example world, fresh for each test
        yield url


def copy(tmp: Path, source: Path, url: str, edits: dict[str, dict[str, str]]) -> Path:
    """A copy of a desired directory pointed at `url`, with `{file: {old: new}}` edits (each must apply)."""
    out = tmp / source.name
    shutil.copytree(source, out, ignore=shutil.ignore_patterns("examples"))
    for path in out.glob("*.yaml"):
        text = path.read_text(encoding="utf-8").replace("http://127.0.0.1:8990", url)
        for old, new in edits.get(path.name, {}).items():
            assert old in text, (path.name, old)
            text = text.replace(old, new.replace("URL", url))
        path.write_text(text, encoding="utf-8")
    return out


def cli(tmp: Path, desired: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["--desired", str(desired), "--state-dir", str(tmp / "state"), *args], env=ENV)
    assert result.exit_code == 0, result.output
    return result.stdout + result.stderr


def plan(tmp: Path, desired: Path, now: str) -> tuple[Path, Plan]:
    path = tmp / "plan.json"
    cli(tmp, desired, "--now", now, "plan", "--out", str(path))
    return path, Plan.loads(path.read_text(encoding="utf-8"))


def lines(p: Plan) -> list[str]:
    """The plan as a reviewer reads it: one line per action (without refs) and per warning."""
    return ([f"{a.describe().split(' (')[0]}{a.describe().split(')', 1)[1]}: {a.reason}" for a in p.actions]
            + [f"! {w.kind} {w.subject}: {w.message}" for w in p.warnings])


def apply(tmp: Path, desired: Path, path: Path, digest: str) -> tuple[str, Path, str]:
    """Apply a plan; the output and the undo plan it wrote (path, digest)."""
    output = cli(tmp, desired, "apply", str(path), "--approve", digest)
    found = re.search(r"reverse this apply with: reconcile apply (\S+) --approve ([0-9a-f]{64})", output)
    assert found, output
    return output, Path(found.group(1)), found.group(2)


def state(url: str, api: str) -> dict[str, Any]:
    """/_sim/state of one API, group members as sorted lists (a member added back is listed last)."""
    body: dict[str, Any] = httpx.get(f"{url}/_sim/state", params={"api": api}).json()[api]
    groups = body["groups"]
    for group in groups.values() if isinstance(groups, dict) else groups:
        group["members"] = sorted(group["members"])
    return body


def reverse(tmp: Path, desired: Path, url: str, api: str, now: str) -> tuple[Plan, str, Plan, dict[str, Any]]:
    """Plan, apply, apply the undo plan: (the plan, the apply's output, the undo plan, the state before)."""
    path, planned = plan(tmp, desired, now)
    before = state(url, api)
    output, undo_path, undo_digest = apply(tmp, desired, path, planned.digest)
    assert "still differ after apply" not in output  # the plan converged: nothing for the next plan to take back
    undo = Plan.loads(undo_path.read_text(encoding="utf-8"))
    assert undo.digest == undo_digest
    cli(tmp, desired, "apply", str(undo_path), "--approve", undo_digest)
    return planned, output, undo, before


def test_dc_guarded_delete_is_applied_as_a_disable_and_undone_as_an_enable(tmp_path: Path, site: str) -> None:
    desired = copy(tmp_path, ROOT / "desired", site, {"confluence.yaml": {"  absent: disable ": GUARDED + " "}})
    planned, output, undo, before = reverse(tmp_path, desired, site, "confluence-dc", DC_NOW)
    assert lines(planned) == [
        "enable zoe: desired status is active",
        "add carol to team-platform: desired member of team-platform",
        "add grace to team-docs: desired member of team-docs",
        "add olivia to team-support: desired member of team-support",
        "remove mallory from team-platform: not a desired member of team-platform",
        "remove niaj from team-support: not a desired member of team-support",
        "remove zoe from team-support: not a desired member of team-support",
        "disable rupert: delete → disable: personal space ~rupert, sole admin of OPS, 66 pages; not in the desired "
        "state (policy.absent: delete)",
        "disable sybil: delete → disable: personal space ~sybil, sole admin of OLD, 33 pages; not in the desired "
        "state (policy.absent: delete)",
        "delete unsynced entry jsmith: unsynced from directory (policy.unsynced: delete); delete_guard: nothing found",
        "delete unsynced entry jsmith: unsynced from directory (policy.unsynced: delete); delete_guard: nothing found",
        "! missing_user quentin: desired user does not exist on the target (reconcile does not create accounts)",
        "! protected admin: protected (an administrator): would delete; never touched",
        "! protected svc-backup: protected (matched by scope.protect): would delete; never touched",
        "! readonly ava: ldap-engineering belongs to a read-only directory: would add to ldap-engineering; change "
        "it in the directory",
    ]
    assert "Did disable rupert" in output and "delete rupert" not in output
    undone = [line for line in lines(undo) if "rupert" in line or "sybil" in line or "jsmith" in line]
    prefix = f"(plan {planned.digest[:12]})"
    assert undone == [
        f"enable rupert: undoes disable {prefix}", f"enable sybil: undoes disable {prefix}",
        *[f"! irreversible jsmith: delete unsynced entry jsmith ({key}) by the apply of plan {planned.digest[:12]}: "
          "a deleted account is gone for good (Confluence DC leaves an anonymised alias on its content)"
          for key in ("8a7f808a8b1c2d3e018b1c2d3e4f0001", "8a7f808a8b1c2d3e018b1c2d3e4f0002")],
    ]
    after = state(site, "confluence-dc")
    gone = {"8a7f808a8b1c2d3e018b1c2d3e4f0001", "8a7f808a8b1c2d3e018b1c2d3e4f0002"}
    assert after["deleted"] == sorted(gone)  # all but the deletes is back as it was
    assert after["users"] == [u for u in before["users"] if u["key"] not in gone]
    assert after["groups"] == before["groups"]


def test_cloud_guarded_delete_is_applied_as_a_suspend_and_undone_and_a_delete_is_irreversible(
        tmp_path: Path, site: str) -> None:
    desired = copy(tmp_path, ROOT / "desired" / "examples" / "atlassian-cloud", site, {
        "target.yaml": {"  absent: disable": GUARDED, "\nscope:": SITE + "\nscope:"},
        "users.yaml": {"  erin@acme.example: {groups: [confluence-users, team-platform]}\n": ""}})  # erin leaves
    planned, output, undo, before = reverse(tmp_path, desired, site, "atlassian-cloud", CLOUD_NOW)
    assert lines(planned) == [
        "enable carol@acme.example: desired status is active",
        "add carol@acme.example to team-docs: desired member of team-docs",
        "disable bob@acme.example: delete → disable: personal space ~bob, sole admin of SALES, 88 pages; not in the "
        "desired state (policy.absent: delete)",
        "delete erin@acme.example: not in the desired state (policy.absent: delete); delete_guard: nothing found",
        "! protected olga@acme.example: protected (an administrator): would delete; never touched",
        "! synced dan@acme.example: managed by the identity provider: would delete; change it in the IdP",
    ]
    assert "Did disable bob@acme.example" in output and "Did delete erin@acme.example" in output
    prefix = f"(plan {planned.digest[:12]})"
    assert lines(undo) == [
        f"enable bob@acme.example: undoes disable {prefix}",
        f"remove carol@acme.example from team-docs: undoes add_member team-docs {prefix}",
        f"disable carol@acme.example: undoes enable {prefix}",
        "! irreversible erin@acme.example: delete erin@acme.example (712020:e0000000-0000-4000-8000-000000000006) by "
        f"the apply of plan {planned.digest[:12]}: a removed or deleted account is not brought back by an undo: "
        're-invite it; its groups and roles are gone (a deleted account shows as "Former user" on its content)',
    ]
    after = state(site, "atlassian-cloud")
    erin = "712020:e0000000-0000-4000-8000-000000000006"
    assert after["users"][erin]["status"] == "not_invited"  # removed from the directory: not restored
    assert {a: u for a, u in after["users"].items() if a != erin} == {
        a: u for a, u in before["users"].items() if a != erin}  # bob active again, carol suspended again
    assert after["groups"] == {k: {**g, "members": [m for m in g["members"] if m != erin]}
                               for k, g in before["groups"].items()}


def test_dc_plan_mixing_remove_licence_absent_deletes_and_exemptions_applied_and_undone(
        tmp_path: Path, site: str) -> None:
    desired = copy(tmp_path, ROOT / "desired" / "examples" / "reclaim-dc", site, {
        "target.yaml": {"  absent: ignore": GUARDED},
        "licensed.yaml": {" rupert,": "", " ivan,": ""}})  # rupert (exempt from inactive) and ivan leave
    planned, _, undo, before = reverse(tmp_path, desired, site, "confluence-dc", DC_NOW)
    assert lines(planned) == [
        "remove licence of oliver: out of confluence-users: inactive: last active 2025-11-22T09:00:00Z (lastLogin), "
        "before the cutoff 2025-12-02 (policy.inactive.after: 90d); frees the seat",
        "remove licence of sybil: out of confluence-users: inactive: last active 2025-09-14T08:00:00Z (lastLogin), "
        "before the cutoff 2025-12-02 (policy.inactive.after: 90d); frees the seat",
        # an exemption never shields from policy.absent; the guard still keeps rupert's spaces
        "disable rupert: delete → disable: personal space ~rupert, sole admin of OPS, 66 pages; not in the desired "
        "state (policy.absent: delete)",
        "delete ivan: not in the desired state (policy.absent: delete); delete_guard: nothing found",
        "! unknown_activity policy.inactive: never active: 1 user(s) (heidi); not selected: only "
        "policy.inactive.never_active_after selects users who were never active",
    ]  # rupert's exemption names someone in scope: no "names nobody in scope" warning
    assert planned.seats is not None and planned.seats.line() == "seats (confluence): 27 → 23 (max 30, headroom 7)"
    prefix = f"(plan {planned.digest[:12]})"
    assert lines(undo) == [
        f"enable rupert: undoes disable {prefix}",
        f"add oliver to confluence-users: undoes remove_licence confluence-users {prefix}",
        f"add sybil to confluence-users: undoes remove_licence confluence-users {prefix}",
        "! irreversible ivan: delete ivan (1224d265d186546468b17d9f4bc9da12) by the apply of plan "
        f"{planned.digest[:12]}: a deleted account is gone for good (Confluence DC leaves an anonymised alias on "
        "its content)",
    ]
    after = state(site, "confluence-dc")
    ivan = "1224d265d186546468b17d9f4bc9da12"
    assert after["users"] == [u for u in before["users"] if u["key"] != ivan]  # oliver, sybil licensed again
    assert [{**g, "members": [m for m in g["members"] if m != "ivan"]} for g in after["groups"]] == [
        {**g, "members": [m for m in g["members"] if m != "ivan"]} for g in before["groups"]]


def test_cloud_plan_mixing_remove_licence_absent_deletes_and_exemptions_applied_and_undone(
        tmp_path: Path, site: str) -> None:
    desired = copy(tmp_path, ROOT / "desired" / "examples" / "reclaim-cloud", site, {
        "target.yaml": {"  absent: ignore": "  absent: delete", "\nscope:": SITE + "\nscope:"},
        "licensed.yaml": {" bob@acme.example,": ""}})  # bob (exempt from inactive) leaves
    planned, _, undo, before = reverse(tmp_path, desired, site, "atlassian-cloud", "2027-02-02T08:00:00Z")
    assert lines(planned) == [
        "enable carol@acme.example: desired status is active",
        "remove licence of alice@acme.example: out of confluence-users: inactive: last active 2026-09-30T08:00:00Z "
        "(productAccess[confluence]), before the cutoff 2026-11-04 (policy.inactive.after: 90d); frees the seat",
        # enabled by this plan and never active: judged as the active user it becomes, not reclaimed next time
        "remove licence of carol@acme.example: out of confluence-users: never active (productAccess[confluence]), "
        "in the organization since 2024-01-03T09:00:00Z, before the cutoff 2027-01-03 "
        "(policy.inactive.never_active_after: 30d); frees the seat",
        "disable bob@acme.example: delete → disable: personal space ~bob, sole admin of SALES, 88 pages; not in the "
        "desired state (policy.absent: delete)",
        "! exemption bob@acme.example: exemption expires on 2027-02-15 (owner olga@acme.example, reason: on "
        "secondment to the Jira team, back in February)",
        "! exemption erin@acme.example: exemption expired on 2027-01-15 (owner alice@acme.example, reason: new hire, "
        "starts using Confluence after onboarding); the rules apply again: renew it with a new `until`, or remove it",
        "! synced dan@acme.example: managed by the identity provider: would delete; change it in the IdP",
    ]
    prefix = f"(plan {planned.digest[:12]})"
    assert lines(undo) == [
        f"enable bob@acme.example: undoes disable {prefix}",
        f"add alice@acme.example to confluence-users: undoes remove_licence confluence-users {prefix}",
        f"add carol@acme.example to confluence-users: undoes remove_licence confluence-users {prefix}",
        f"disable carol@acme.example: undoes enable {prefix}",
    ]
    assert state(site, "atlassian-cloud") == before


def test_with_action_disable_a_suspended_never_active_user_is_not_enabled_only_to_be_disabled(
        tmp_path: Path, site: str) -> None:
    desired = copy(tmp_path, ROOT / "desired" / "examples" / "reclaim-cloud", site, {
        "target.yaml": {"    action: remove_licence": "    action: disable"}})
    path, planned = plan(tmp_path, desired, CLOUD_NOW)
    assert [line for line in lines(planned) if "carol" in line] == []  # stays suspended: the rule disables her
    output = cli(tmp_path, desired, "apply", str(path), "--approve", planned.digest)
    assert "still differ after apply" not in output
    assert plan(tmp_path, desired, CLOUD_NOW)[1].actions == ()
