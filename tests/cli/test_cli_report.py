"""`plan --report` / `apply --report` through the real CLI: what each run wrote, however it ended.

Every report read here is validated against `reconcile.report.SCHEMA` (see fixtures_cli.Cli.report).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconcile.plan import Plan
from tests.support.apply import EXPECTED, read_world, world, write_world
from tests.support.cli import Cli, make_cli, reconcile
from tests.support.sim import example_site_with_token

KINDS = ["enable", "add_member", "remove_member", "disable", "delete"]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return make_cli(tmp_path)


def outcomes(report: dict[str, object]) -> list[str | None]:
    actions = report["actions"]
    assert isinstance(actions, list)
    return [a["outcome"]["result"] if a["outcome"] else None for a in actions]


def test_plan_report(cli: Cli) -> None:
    result = cli("plan", "--out", str(cli.tmp / "plan.json"), "--report", str(cli.tmp / "report.json"),
                 "--detailed-exitcode")
    assert result.exit_code == 3, result.output
    plan = Plan.loads((cli.tmp / "plan.json").read_text())
    report = cli.report()
    assert (report["command"], report["status"], report["exit_code"]) == ("plan", "changes", 3)
    assert report["plan"]["digest"] == plan.digest and report["plan"]["created_at"] == plan.created_at
    assert report["target"] == {"type": "memory", "url": str(cli.state)}
    assert report["summary"]["actions"] == {"enable": 1, "add_member": 2, "remove_member": 1,
                                            "remove_licence": 0, "disable": 1, "delete": 0}
    assert report["summary"]["total"] == 5
    assert report["summary"]["warnings"]["protected"] == sum(w.kind == "protected" for w in plan.warnings) > 0
    assert [(a["kind"], a["subject"]["ref"], a["group"]) for a in report["actions"]] == [
        (str(a.kind), a.subject.ref, a.group) for a in plan.actions]
    assert all("outcome" not in a for a in report["actions"])
    assert report["apply"] is None and report["error"] is None and report["notifications"] == []
    assert report["warnings"] == [w.to_json() for w in plan.warnings]
    assert 0 <= report["duration_seconds"] < 60
    assert "Report written to" in result.stderr


def test_apply_report_has_every_outcome_and_convergence(cli: Cli) -> None:
    path, plan = cli.plan_file()
    result = cli("apply", str(path), "--approve", plan.digest, "--report", str(cli.tmp / "report.json"))
    assert result.exit_code == 0, result.output
    report = cli.report()
    assert (report["command"], report["status"], report["exit_code"]) == ("apply", "applied", 0)
    assert outcomes(report) == ["done"] * 5
    applied = report["apply"]
    assert applied["counts"] == {"done": 5, "already": 0, "failed": 0, "not_run": 0, "done_earlier": 0, "would": 0,
                                 "skipped": 0}
    assert (applied["approval"], applied["operator"], applied["dry_run"]) == ("digest", "tester", False)
    assert applied["residual_drift"] == [] and applied["converged"] is True and applied["failures"] == []
    assert all(a["outcome"]["seconds"] is not None for a in report["actions"])


def test_limit_then_resume_then_nothing_to_do(cli: Cli) -> None:
    path, plan = cli.plan_file()
    first = cli("apply", str(path), "--approve", plan.digest, "--limit", "1", "--report", str(cli.tmp / "1.json"))
    assert first.exit_code == 0, first.output
    one = cli.report("1.json")
    assert one["status"] == "incomplete"
    assert outcomes(one) == ["done", "not_run", "not_run", "not_run", "not_run"]
    assert one["apply"]["converged"] is False and one["apply"]["residual_drift"] == []

    rest = cli("apply", str(path), "--approve", plan.digest, "--report", str(cli.tmp / "2.json"))
    assert rest.exit_code == 0, rest.output
    two = cli.report("2.json")
    assert two["status"] == "applied" and two["apply"]["converged"] is True
    assert outcomes(two) == ["done_earlier", "done", "done", "done", "done"]

    again = cli("apply", str(path), "--approve", plan.digest, "--report", str(cli.tmp / "3.json"))
    assert again.exit_code == 0, again.output
    three = cli.report("3.json")
    assert three["status"] == "no_changes" and outcomes(three) == ["done_earlier"] * 5


def test_failed_actions_are_reported_with_exit_1(cli: Cli) -> None:
    broken = world()
    broken["groups"][2]["readonly"] = True  # team-eng: the directory refuses writes
    write_world(cli.state, broken)
    path, _ = cli.plan_file()
    result = cli("apply", str(path), "--auto-approve", "--report", str(cli.tmp / "report.json"))
    assert result.exit_code == 1
    report = cli.report()
    assert (report["status"], report["exit_code"]) == ("failed", 1)
    assert report["error"]["type"] == "ActionsFailed" and report["error"]["refused"] is False
    # only alice's later membership change waits for her failure; dave is still disabled
    assert outcomes(report) == ["done", "failed", "done", "not_run", "done"]
    waiting = [a for a in report["actions"] if a["outcome"]["result"] == "not_run"]
    assert [a["outcome"]["message"] for a in waiting] == [
        "not started: waits for the failed add alice@example.com (u-alice) to team-eng"]
    [failure] = report["apply"]["failures"]
    assert failure["action"] == "add alice@example.com (u-alice) to team-eng"
    assert "readonly_groups" in failure["message"]
    assert report["apply"]["approval"] == "auto"


def test_a_refused_plan_still_writes_its_report(cli: Cli) -> None:
    (cli.desired / "policy.yaml").write_text("policy:\n  limits:\n    add_member: 1\n")
    result = cli("plan", "--report", str(cli.tmp / "report.json"), "--detailed-exitcode")
    assert result.exit_code == 4
    assert "exceeds the limit" in result.stderr
    report = cli.report()
    assert (report["status"], report["exit_code"]) == ("refused", 4)
    assert report["error"]["type"] == "LimitExceeded" and report["error"]["refused"] is True
    assert "add_member: 2 exceeds the limit of 1" in report["error"]["message"]
    assert report["summary"]["total"] == 5  # what was refused is in the report


def test_a_stale_plan_reports_no_outcomes(cli: Cli) -> None:
    path, plan = cli.plan_file()
    changed = world()
    changed["users"][5]["status"] = "active"  # erin enabled by hand
    write_world(cli.state, changed)
    result = cli("apply", str(path), "--approve", plan.digest, "--report", str(cli.tmp / "report.json"))
    assert result.exit_code == 4
    report = cli.report()
    assert (report["status"], report["error"]["type"]) == ("refused", "StalePlan")
    assert "action no longer needed: enable erin@example.com (u-erin)" in report["error"]["message"]
    assert outcomes(report) == [None] * 5
    assert report["plan"]["digest"] == plan.digest
    assert read_world(cli.state) == changed


def test_an_invalid_configuration_reports_an_error(cli: Cli) -> None:
    (cli.desired / "extra.yaml").write_text("version: 1\npolicy:\n  absnt: delete\n")
    result = cli("apply", "--auto-approve", "--report", str(cli.tmp / "report.json"))
    assert result.exit_code == 1
    report = cli.report()
    assert (report["status"], report["error"]["type"]) == ("error", "ConfigError")
    assert "extra.yaml:3:3" in report["error"]["message"]
    assert report["plan"] is None and report["actions"] == [] and report["target"] == {}


def test_dry_run_and_cancel(cli: Cli) -> None:
    path, _ = cli.plan_file()
    before = cli.state.read_text()
    dry = cli("apply", str(path), "--dry-run", "--report", str(cli.tmp / "dry.json"))
    assert dry.exit_code == 0, dry.output
    report = cli.report("dry.json")
    assert report["status"] == "dry_run" and outcomes(report) == ["would"] * 5
    assert report["apply"]["dry_run"] is True and report["apply"]["converged"] is None

    cancelled = cli("apply", str(path), "--report", str(cli.tmp / "no.json"), input="no\n")
    assert cancelled.exit_code == 1
    report = cli.report("no.json")
    assert report["status"] == "cancelled" and report["error"] is None and outcomes(report) == [None] * 5
    assert cli.state.read_text() == before


def test_an_unwritable_report_path_is_refused_before_anything(cli: Cli) -> None:
    (cli.tmp / "a-file").write_text("")
    before = cli.state.read_text()
    result = cli("apply", "--auto-approve", "--report", str(cli.tmp / "a-file" / "report.json"))
    assert result.exit_code == 1
    assert "--report" in result.stderr and "cannot be written" in result.stderr
    assert cli.state.read_text() == before and not (cli.tmp / "state").exists()


def test_fresh_apply_report_lists_the_plan_it_applied(cli: Cli) -> None:
    result = cli("apply", "--auto-approve", "--report", str(cli.tmp / "report.json"))
    assert result.exit_code == 0, result.output
    report = cli.report()
    assert [f"{a['kind']}:{a['subject']['ref']}" for a in report["actions"]] == [
        "enable:u-erin", "add_member:u-alice", "add_member:u-carol", "remove_member:u-alice", "disable:u-dave"]
    assert report["status"] == "applied" and len(EXPECTED) == report["summary"]["total"]


TOKEN = "rep0rt-s3cr3t-token"
DESIRED = """\
version: 1
target:
  type: confluence-dc
  url: {url}
  auth:
    token: ${{CONFLUENCE_TOKEN}}
scope:
  users: ["*@example.com"]
  groups: ["team-*"]
policy:
  absent: ignore
users:
  alice@example.com:
    groups: [team-docs, team-platform]
  bob@example.com:
    groups: [team-docs]
"""


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    with example_site_with_token(TOKEN) as url:
        yield url


def test_reports_against_the_simulator_hold_no_secret(sim_url: str, tmp_path: Path) -> None:
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "site.yaml").write_text(DESIRED.format(url=sim_url))
    cli = Cli(tmp_path, desired, tmp_path / "unused", {"CONFLUENCE_TOKEN": TOKEN})
    planned = cli("--verbose", "plan", "--out", str(tmp_path / "plan.json"), "--report", str(tmp_path / "p.json"))
    assert planned.exit_code == 0, planned.output
    plan = Plan.loads((tmp_path / "plan.json").read_text())
    applied = cli("apply", str(tmp_path / "plan.json"), "--approve", plan.digest, "--report",
                  str(tmp_path / "a.json"))
    assert applied.exit_code == 0, applied.output
    wrong = reconcile("--desired", str(desired), "plan", "--report", str(tmp_path / "w.json"),
                               env={"CONFLUENCE_TOKEN": TOKEN + "-wrong", "NO_COLOR": "1"})
    assert wrong.exit_code == 1
    assert cli.report("p.json")["target"] == {"type": "confluence-dc", "url": sim_url}
    a = cli.report("a.json")
    assert a["status"] == "applied" and set(outcomes(a)) == {"done"}
    assert all(x["outcome"]["http_status"] for x in a["actions"])  # the target's answer is recorded
    w = cli.report("w.json")
    assert w["status"] == "error" and w["error"]["type"] in {"AuthError", "TargetError"}
    for name in ("p.json", "a.json", "w.json"):
        assert TOKEN not in (tmp_path / name).read_text()


def test_a_usage_error_is_reported_too(cli: Cli) -> None:
    path, plan = cli.plan_file()
    result = cli("apply", str(path), "--approve", plan.digest[:11], "--report", str(cli.tmp / "report.json"))
    assert result.exit_code == 2 and "at least 12" in result.stderr
    report = cli.report()
    assert (report["status"], report["exit_code"], report["error"]["type"]) == ("error", 2, "UsageError")
    assert report["plan"] is None and report["apply"]["approval"] is None
