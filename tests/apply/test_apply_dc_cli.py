"""The apply engine through the CLI against a Confluence DC simulator on a loopback port (issue 11).

A change that recurs (the same drift again: the same digest) is applied from its plan file again,
and one refused action (a group of a read-only LDAP directory) holds back nothing but the same
user's later membership changes: the departed user is still disabled.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from reconcile.plan import Plan
from reconcile.sim.app import build_app
from reconcile.sim.confluence_dc.world import DcWorld
from reconcile.sim.scenario import parse_scenario
from reconcile.sim.server import running
from tests.support.cli import reconcile

TOKEN = "pat-apply-engine-3c9d"
WORLD = f"""
confluence_dc:
  version: "9.4"
  directories:
    - {{name: Corporate LDAP, readonly: true}}
  groups:
    - {{name: confluence-administrators}}
    - {{name: team-docs}}
    - {{name: team-support}}
    - {{name: ldap-eng, directory: Corporate LDAP}}
  users:
    - {{username: admin, email: admin@example.com, tokens: [{TOKEN}], groups: [confluence-administrators]}}
    - {{username: alice, email: alice@example.com, groups: [team-docs]}}
    - {{username: bob, email: bob@example.com, groups: [team-support]}}
    - {{username: dave, email: dave@example.com, groups: [team-support]}}
    - {{username: frank, email: frank@example.com, groups: [team-support]}}
"""
CONFIG = """version: 1
target:
  type: confluence-dc
  url: {url}
  auth:
    token: ${{TOKEN}}
scope:
  users: ["*"]
  groups: ["team-*", "ldap-*"]
  protect: [admin]
"""


@dataclass
class Site:
    url: str
    world: DcWorld
    tmp: Path

    def cli(self, *args: str) -> tuple[int, str, str]:
        base = ["--desired", str(self.tmp / "desired"), "--state-dir", str(self.tmp / "state")]
        result = reconcile(*base, *args, env={"NO_COLOR": "1", "USER": "tester", "TOKEN": TOKEN})
        return result.exit_code, result.stdout, result.stderr

    def desire(self, users: str) -> None:
        (self.tmp / "desired").mkdir(exist_ok=True)
        (self.tmp / "desired" / "site.yaml").write_text(CONFIG.format(url=self.url) + users, encoding="utf-8")

    def plan(self, name: str) -> tuple[Path, Plan]:
        path = self.tmp / name
        code, out, err = self.cli("plan", "--out", str(path))
        assert code == 0, out + err
        return path, Plan.loads(path.read_text(encoding="utf-8"))

    def members(self, group: str) -> set[str]:
        return {self.world.users[k].username for k in self.world.members[group]}

    def active(self, username: str) -> bool:
        return self.world.users[self.world.by_username[username]].active

    def writes(self) -> list[str]:
        """`METHOD path` of every write the tool sent, in order (reads and the test's own mutations left out)."""
        log = httpx.get(f"{self.url}/_sim/log").json()
        entries = log["entries"] if isinstance(log, dict) else log
        return [f"{e['method']} {e['path']}" for e in entries
                if e.get("kind") == "request" and e["method"] in ("PUT", "POST", "DELETE")]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    application = build_app(parse_scenario(WORLD, "<apply engine world>"))
    with running(application) as url:
        yield Site(url, application.state.ctx.dc, tmp_path)


def test_a_recurring_change_is_applied_from_its_plan_file_again(site: Site) -> None:
    site.desire("users:\n  alice: {groups: [team-docs]}\n  bob: {groups: [team-support]}\n"
                "  dave: {groups: [team-support]}\n  frank: {}\n")
    b_path, b = site.plan("b.json")
    assert [a.describe().split(" (")[0] for a in b.actions] == ["remove frank"]
    code, out, err = site.cli("apply", str(b_path), "--approve", b.digest)
    assert code == 0, out + err
    assert "frank" not in site.members("team-support")

    # frank is added back behind the tool: the same drift, so the same plan and the same digest
    added = httpx.post(f"{site.url}/_sim/mutate", json={"op": "add_member", "username": "frank",
                                                         "group": "team-support"})
    assert added.status_code == 200, added.text
    c_path, c = site.plan("c.json")
    assert c.digest == b.digest

    code, out, err = site.cli("apply", str(c_path), "--approve", c.digest)
    assert code == 0, out + err  # before the fix: refused as stale (exit 4), for good
    assert "1 done" in out and "Nothing left to change, but 1 warning needs attention" in out
    assert "frank" not in site.members("team-support")
    code, out, err = site.cli("plan", "--detailed-exitcode")
    assert code == 0, out + err


def test_a_refused_membership_leaves_the_departed_user_disabled_and_only_it_is_retried(site: Site) -> None:
    # alice moves into a group of the read-only LDAP directory (readonly_groups not configured);
    # dave left the company: absent from the desired state, so he is disabled.
    site.desire("users:\n  alice: {groups: [ldap-eng]}\n  bob: {groups: [team-support]}\n"
                "  frank: {groups: [team-support]}\n")
    path, plan = site.plan("plan.json")
    assert [a.describe().split(" (")[0] for a in plan.actions] == ["add alice", "remove alice", "disable dave"]

    code, out, err = site.cli("apply", str(path), "--approve", plan.digest)

    assert code == 1, out + err
    assert "Failed to add alice" in err and "to ldap-eng" in err
    assert "does not allow updates" in err  # the server's cause
    assert "target.readonly_groups" in err  # and the remedy
    assert "Not started: remove alice" in out
    assert not site.active("dave"), "a departed user must not stay enabled because of another's failure"
    assert "alice" in site.members("team-docs")  # her move waits: she keeps her access meanwhile
    first = site.writes()
    assert first.count("PUT /rest/api/admin/user/dave/disable") == 1

    code, out, err = site.cli("apply", str(path), "--approve", plan.digest)
    assert code == 1, out + err
    again = site.writes()[len(first):]
    assert again == ["PUT /rest/api/user/alice/group/ldap-eng"], "only the failed action is retried"

    site.world.directories["Corporate LDAP"].readonly = False  # the connector is made writable
    code, out, err = site.cli("apply", str(path), "--approve", plan.digest)
    assert code == 0, out + err
    assert "2 done" in out
    assert site.members("ldap-eng") == {"alice"} and "alice" not in site.members("team-docs")
    code, out, err = site.cli("plan", "--detailed-exitcode")
    assert code == 0, out + err
