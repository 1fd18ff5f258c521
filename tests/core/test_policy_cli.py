"""The reclamation examples through the CLI against `reconcile sim` (issue 14): golden plans at a fixed
`--now`, a login between plan and apply, and the seat guard with and without `--force`.

Regenerate the golden plans after an intended change with `UPDATE_GOLDEN=1 pytest tests/core/test_policy_cli.py`
(and review the diff).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from reconcile.cli import app
from reconcile.plan import Plan
from reconcile.sim.server import running

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parents[1] / "golden"
ENV = {"NO_COLOR": "1", "USER": "tester", "CONFLUENCE_TOKEN": "example-admin-token",
       "ATLASSIAN_ORG_ID": "3f2a9c1e-7b4d-4e6f-9a8b-1c2d3e4f5a6b", "ATLASSIAN_ADMIN_KEY": "sim-cloud-admin-key"}
DC_NOW = "2026-03-02T09:00:00Z"  # the example world's Data Center facts are as of this day
CLOUD_NOW = "2026-10-01T09:00:00Z"  # and its Cloud organization's


@pytest.fixture
def site() -> Iterator[str]:
    with running() as url:  # the example world
        yield url


def example(tmp: Path, name: str, url: str, *edits: tuple[str, str]) -> Path:
    """A copy of desired/examples/NAME pointed at the running simulator (optionally lines edited)."""
    out = tmp / name
    shutil.copytree(ROOT / "desired" / "examples" / name, out)
    target = out / "target.yaml"
    text = target.read_text(encoding="utf-8").replace("http://127.0.0.1:8990", url)
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    target.write_text(text, encoding="utf-8")
    return out


def cli(tmp: Path, desired: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--desired", str(desired), "--state-dir", str(tmp / "state"), *args], env=ENV)


def plan_file(tmp: Path, desired: Path, now: str, *extra: str) -> tuple[Path, Plan]:
    path = tmp / f"{desired.name}.plan.json"
    result = cli(tmp, desired, "--now", now, "plan", "--out", str(path), *extra)
    assert result.exit_code == 0, result.output
    return path, Plan.loads(path.read_text(encoding="utf-8"))


def decisions(plan: Plan) -> dict[str, Any]:
    """What the plan decided, without what depends on where the simulator listens or when it ran."""
    data = plan.to_json()
    return {"actions": [{k: a[k] for k in ("kind", "subject", "group", "reason", "precondition")}
                        for a in data["actions"]],
            "warnings": data["warnings"], "summary": data["summary"], "policy": data.get("policy"),
            "evaluated_at": data["evaluated_at"]}


def golden(name: str, actual: dict[str, Any]) -> None:
    path = GOLDEN / name
    text = json.dumps(actual, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text(encoding="utf-8")


def test_reclaim_dc_golden_plan(tmp_path: Path, site: str) -> None:
    _, plan = plan_file(tmp_path, example(tmp_path, "reclaim-dc", site), DC_NOW)
    golden("reclaim-dc.plan.json", decisions(plan))
    assert [a.describe().split(" (")[0] for a in plan.actions] == ["remove licence of oliver",
                                                                   "remove licence of sybil"]
    assert plan.seats is not None and plan.seats.line() == "seats (confluence): 27 → 25 (max 30, headroom 5)"
    # plans made later the same day are the same plan
    _, again = plan_file(tmp_path, example(tmp_path / "again", "reclaim-dc", site), "2026-03-02T23:59:59Z")
    assert again.digest == plan.digest


def test_reclaim_cloud_golden_plans_before_and_after_an_exemption_expires(tmp_path: Path, site: str) -> None:
    desired = example(tmp_path, "reclaim-cloud", site)
    _, plan = plan_file(tmp_path, desired, CLOUD_NOW)
    golden("reclaim-cloud.plan.json", decisions(plan))
    assert plan.seats is not None and plan.seats.approximate and plan.seats.line().startswith(
        "seats (confluence): 3 → 4 (max unknown, approximate:")
    # 2027-02-02: erin's exemption (until 2027-01-15) has expired, bob's (until 2027-02-15) is expiring
    _, later = plan_file(tmp_path, desired, "2027-02-02T08:00:00Z")
    golden("reclaim-cloud.2027-02-02.plan.json", decisions(later))
    notes = [w.message for w in later.warnings if w.kind == "exemption"]
    assert any("expired on 2027-01-15 (owner alice@acme.example" in n for n in notes)
    assert any("expires on 2027-02-15 (owner olga@acme.example" in n for n in notes)


def test_markdown_and_run_report_show_the_facts_of_policy_actions(tmp_path: Path, site: str) -> None:
    desired = example(tmp_path, "reclaim-dc", site)
    result = cli(tmp_path, desired, "--now", DC_NOW, "plan", "--format", "markdown",
                 "--report", str(tmp_path / "report.json"))
    assert result.exit_code == 0, result.output
    assert "**seats (confluence): 27 → 25 (max 30, headroom 5)**" in result.stdout
    assert ("| `sybil` | `remove_licence` `confluence-users` | inactive | 2025-09-14T08:00:00Z (lastLogin) | "
            "2025-12-02T00:00:00Z |  |") in result.stdout
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    facts = {a["subject"]["identity"]: a.get("facts") for a in report["actions"]}
    assert facts["oliver"] == {"rule": "inactive", "last_active": "2025-11-22T09:00:00Z", "source": "lastLogin",
                               "cutoff": "2025-12-02T00:00:00Z", "exemption": None}
    assert report["summary"]["seats"]["after"] == 25


def test_a_user_who_logs_in_between_plan_and_apply_is_skipped(tmp_path: Path, site: str) -> None:
    desired = example(tmp_path, "reclaim-dc", site)
    path, plan = plan_file(tmp_path, desired, DC_NOW)
    login = httpx.post(f"{site}/_sim/mutate", json={"op": "login", "username": "sybil",
                                                    "at": "2026-03-02T10:00:00.000Z"})
    assert login.status_code == 200, login.text
    applied = cli(tmp_path, desired, "apply", str(path), "--approve", plan.digest)
    assert applied.exit_code == 0, applied.output
    assert "Skipped remove licence of sybil" in applied.output
    assert "active since the plan: last active 2026-03-02T10:00:00Z" in applied.output
    state = httpx.get(f"{site}/_sim/state").json()
    members = next(g["members"] for g in state["confluence-dc"]["groups"] if g["name"] == "confluence-users")
    assert "sybil" in members and "oliver" not in members
    licence = httpx.get(f"{site}/rest/license/1.0/license/userCount",
                        headers={"Authorization": "Bearer example-admin-token"}).json()
    assert licence == {"count": 26}


def test_a_cloud_user_active_since_the_plan_is_skipped(tmp_path: Path, site: str) -> None:
    # without bob's exemption, the example reclaims his Confluence licence
    desired = example(tmp_path, "reclaim-cloud", site)
    licensed = desired / "licensed.yaml"
    text = licensed.read_text(encoding="utf-8")
    licensed.write_text(text[:text.index("  - user: bob@acme.example")] + text[text.index("  - user: erin"):],
                        encoding="utf-8")
    path, plan = plan_file(tmp_path, desired, CLOUD_NOW)
    assert [a.describe().split(" (")[0] for a in plan.actions if a.kind == "remove_licence"] == [
        "remove licence of bob@acme.example", "remove licence of carol@acme.example"]
    active = httpx.post(f"{site}/_sim/mutate", json={"api": "atlassian-cloud", "op": "active",
                                                     "user": "bob@acme.example", "product": "confluence",
                                                     "at": "2026-10-01T10:00:00Z"})
    assert active.status_code == 200, active.text
    applied = cli(tmp_path, desired, "apply", str(path), "--approve", plan.digest)
    assert applied.exit_code == 0, applied.output
    assert "Skipped remove licence of bob@acme.example" in applied.output


@pytest.mark.parametrize(("force", "code"), [(False, 4), (True, 0)])
def test_seats_above_fail_at_refuse_the_plan_unless_forced(tmp_path: Path, site: str, force: bool, code: int) -> None:
    desired = example(tmp_path, "reclaim-cloud", site, ("    warn_at: 5", "    warn_at: 3"),
                      ("    fail_at: 6", "    fail_at: 3"))
    result = cli(tmp_path, desired, "--now", CLOUD_NOW, "plan", *(["--force"] if force else []))
    assert result.exit_code == code, result.output
    assert "seats (confluence): 3 → 4" in result.stdout  # +carol (enabled), +erin, -carol (never active)
    if not force:
        assert "seats: 4 in use after the plan (approximate) exceeds policy.licences.fail_at 3" in result.output


def test_before_9_3_activity_and_can_use_groups_are_unknown_and_said_once(tmp_path: Path) -> None:
    from reconcile.sim.app import build_app
    from reconcile.sim.scenario import parse_scenario

    scenario = (ROOT / "reconcile" / "sim" / "scenarios" / "example.yaml").read_text(encoding="utf-8")
    old = build_app(parse_scenario(scenario.replace('version: "9.4"', 'version: "9.2"'), "<9.2 world>"))
    with running(old) as url:
        _, plan = plan_file(tmp_path, example(tmp_path, "reclaim-dc", url), DC_NOW)
    assert plan.actions == ()
    unknown = [w.message for w in plan.warnings if w.kind == "unknown_activity"]
    assert len(unknown) == 1 and "the target reveals no activity at all (Confluence Data Center before 9.3" in \
        unknown[0]
    assert [w.message for w in plan.warnings if w.kind == "seats"] == [
        "27 seats in use after the plan reach policy.licences.warn_at 90% of 30",  # nothing reclaimed
        "which groups grant \"Can use\" is not revealed before Confluence 9.3 (GET /rest/api/permissions -> 404): "
        "policy.licences.groups stand in for them"]


def test_a_reclaimed_dc_licence_does_not_come_back_until_an_exemption_grants_it(tmp_path: Path, site: str) -> None:
    desired = example(tmp_path, "reclaim-dc", site)
    path, plan = plan_file(tmp_path, desired, DC_NOW)
    applied = cli(tmp_path, desired, "apply", str(path), "--approve", plan.digest)
    assert applied.exit_code == 0, applied.output
    assert "still differ after apply" not in applied.output  # no residual drift: the policy holds
    # unlicensed, oliver and sybil drop out of the active-users list: their last login is no longer known
    _, after = plan_file(tmp_path, desired, DC_NOW)
    assert after.actions == ()
    assert any("not given a licence group: 2 user(s) (oliver, sybil)" in w.message for w in after.warnings)
    licensed = desired / "licensed.yaml"
    licensed.write_text(licensed.read_text(encoding="utf-8") + (
        "  - user: oliver\n    reason: back from leave\n    owner: dave@example.com\n    until: 2026-03-09\n"
        "    from: [licences]\n"), encoding="utf-8")
    _, back = plan_file(tmp_path, desired, DC_NOW)
    assert [a.describe().split(" (")[0] for a in back.actions] == ["add oliver"]
