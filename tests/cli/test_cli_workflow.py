"""The command line end to end on the memory target: plan -> apply -> plan, and every refusal."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from reconcile.plan import Plan
from tests.support.apply import (
    EXPECTED,
    WORLD,
    member_of,
    read_world,
    status_of,
    world,
    write_desired,
    write_world,
)
from tests.support.cli import Cli, make_cli, reconcile, reconcile_process


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return make_cli(tmp_path)


def test_validate_ok(cli: Cli) -> None:
    result = cli("validate")
    assert result.exit_code == 0, result.output
    assert "valid" in result.stdout and "memory" in result.stdout


def test_validate_reports_file_line_col_without_traceback(cli: Cli) -> None:
    (cli.desired / "extra.yaml").write_text("version: 1\npolicy:\n  absnt: delete\n")
    result = cli("validate")
    assert result.exit_code == 1
    assert "extra.yaml:3:3" in result.stderr
    assert "Traceback" not in result.output


def test_plan_apply_plan_converges(cli: Cli) -> None:
    pending = cli("plan", "--detailed-exitcode", "--out", str(cli.tmp / "plan.json"))
    assert pending.exit_code == 3, pending.output
    for line in EXPECTED:
        assert line in pending.stdout
    plan = Plan.loads((cli.tmp / "plan.json").read_text())

    applied = cli("apply", str(cli.tmp / "plan.json"), "--approve", plan.digest)
    assert applied.exit_code == 0, applied.output
    assert "5 done" in applied.stdout
    # admin stays protected (a warning): the target does not "match" while a warning stands
    assert "Nothing left to change, but 1 warning needs attention" in applied.stdout
    assert "matches" not in applied.stdout
    for line in EXPECTED:
        assert f"Did {line}" in applied.stdout

    converged = cli("plan", "--detailed-exitcode")
    assert converged.exit_code == 0, converged.output
    assert "No changes, but 1 warning needs attention." in converged.stdout
    assert [a["approval"] for a in cli.audit] == ["digest"] * 5


def test_plan_formats_and_show(cli: Cli) -> None:
    path, plan = cli.plan_file()
    as_json = cli("plan", "--format", "json")
    assert json.loads(as_json.stdout)["digest"] == plan.digest
    shown = cli("show", str(path), "--format", "markdown", "--mask-emails")
    assert shown.exit_code == 0, shown.output
    assert plan.digest in shown.stdout and "a***@example.com" in shown.stdout
    assert "alice@example.com" not in shown.stdout


def test_approval_mismatch_changes_nothing(cli: Cli) -> None:
    path, plan = cli.plan_file()
    before = cli.state.read_text()
    wrong = ("0" if plan.digest[0] != "0" else "1") * 12
    result = cli("apply", str(path), "--approve", wrong)
    assert result.exit_code == 4
    assert "does not match" in result.stderr
    assert cli.state.read_text() == before and not cli.journal.exists()


def test_short_digest_prefix_is_a_usage_error(cli: Cli) -> None:
    path, plan = cli.plan_file()
    result = cli("apply", str(path), "--approve", plan.digest[:11])
    assert result.exit_code == 2
    assert "at least 12" in result.stderr


def test_approve_and_auto_approve_exclude_each_other(cli: Cli) -> None:
    path, plan = cli.plan_file()
    assert cli("apply", str(path), "--approve", plan.digest, "--auto-approve").exit_code == 2


def test_stale_plan_names_the_difference_and_changes_nothing(cli: Cli) -> None:
    path, plan = cli.plan_file()
    behind_our_back = world()
    behind_our_back["users"][5]["status"] = "active"  # someone enabled erin by hand
    write_world(cli.state, behind_our_back)

    result = cli("apply", str(path), "--approve", plan.digest)

    assert result.exit_code == 4
    assert "stale" in result.stderr
    assert "action no longer needed: enable erin@example.com (u-erin)" in result.stderr
    assert read_world(cli.state) == behind_our_back
    assert not cli.audit


def test_limit_one_then_resume(cli: Cli) -> None:
    path, plan = cli.plan_file()
    first = cli("apply", str(path), "--approve", plan.digest, "--limit", "1")
    assert first.exit_code == 0, first.output
    assert f"Did {EXPECTED[0]}" in first.stdout
    assert "4 action(s) left" in first.stdout
    assert status_of(read_world(cli.state), "u-erin") == "active"
    assert member_of(read_world(cli.state), "team-eng") == ["u-bob"]

    rest = cli("apply", str(path), "--approve", plan.digest)
    assert rest.exit_code == 0, rest.output
    assert "4 done" in rest.stdout and EXPECTED[0] not in rest.stdout

    again = cli("apply", str(path), "--approve", plan.digest)
    assert again.exit_code == 0 and "already done" in again.stdout
    assert len(read_world(cli.state)["log"]) == 5


def test_limit_exceeded_refuses_and_force_lifts_it(cli: Cli) -> None:
    (cli.desired / "policy.yaml").write_text("policy:\n  limits:\n    add_member: 1\n")
    refused = cli("plan", "--out", str(cli.tmp / "plan.json"), "--detailed-exitcode")
    assert refused.exit_code == 4
    assert "add_member: 2 exceeds the limit of 1" in refused.stderr and "--force" in refused.stderr
    assert not (cli.tmp / "plan.json").exists()

    path, plan = cli.plan_file("--force")
    without = cli("apply", str(path), "--approve", plan.digest)
    assert without.exit_code == 4 and "exceeds the limit" in without.stderr
    forced = cli("apply", str(path), "--approve", plan.digest, "--force")
    assert forced.exit_code == 0, forced.output


def test_empty_desired_state_is_refused_even_with_force(cli: Cli) -> None:
    text = (cli.desired / "reconcile.yaml").read_text()
    (cli.desired / "reconcile.yaml").write_text(text.split("users:\n  alice")[0])
    for args in (["plan"], ["plan", "--force"], ["apply", "--auto-approve", "--force"]):
        result = cli(*args)
        assert result.exit_code == 4, (args, result.output)
        assert "no users" in result.stderr
    assert "log" not in read_world(cli.state)


def test_interactive_yes_applies(cli: Cli) -> None:
    result = cli("apply", input="yes\n")
    assert result.exit_code == 0, result.output
    assert "Type yes to apply PLAN" in result.stdout
    assert "5 done" in result.stdout
    assert [a["approval"] for a in cli.audit] == ["interactive"] * 5


@pytest.mark.parametrize("answer", ["no\n", "YES please\n", ""])
def test_interactive_anything_else_cancels(cli: Cli, answer: str) -> None:
    before = cli.state.read_text()
    result = cli("apply", input=answer)
    assert result.exit_code == 1
    assert "Apply cancelled, nothing changed." in result.stderr
    assert cli.state.read_text() == before and not cli.audit


def test_auto_approve_and_failed_action_exit_1_then_retry(cli: Cli) -> None:
    broken = world()
    broken["groups"][2]["readonly"] = True  # team-eng: the directory refuses writes
    write_world(cli.state, broken)
    path, _plan = cli.plan_file()

    failed = cli("apply", str(path), "--auto-approve")
    assert failed.exit_code == 1
    assert "Failed to add alice@example.com (u-alice) to team-eng" in failed.stderr
    assert "readonly_groups" in failed.stderr
    assert "Not started: remove alice@example.com (u-alice) from team-docs" in failed.stdout
    assert status_of(read_world(cli.state), "u-dave") == "disabled"  # another user: not held back

    fixed = read_world(cli.state)
    fixed["groups"][2]["readonly"] = False
    write_world(cli.state, fixed)
    retried = cli("apply", str(path), "--auto-approve")
    assert retried.exit_code == 0, retried.output
    assert "2 done" in retried.stdout
    assert [a["approval"] for a in cli.audit].count("auto") == len(cli.audit)


def test_dry_run_prints_would_and_changes_nothing(cli: Cli) -> None:
    path, _plan = cli.plan_file()
    before = cli.state.read_text()
    result = cli("apply", str(path), "--dry-run")
    assert result.exit_code == 0, result.output
    assert [line for line in result.stdout.splitlines() if line.startswith("Would")] == [
        f"Would {d}" for d in EXPECTED
    ]
    assert cli.state.read_text() == before and not cli.journal.exists()


def test_broken_state_file_is_one_clear_error(cli: Cli) -> None:
    cli.state.write_text("{not json")
    result = cli("plan")
    assert result.exit_code == 1
    assert "cannot read" in result.stderr and "Traceback" not in result.output


def test_missing_plan_file_is_a_usage_error(cli: Cli) -> None:
    result = cli("apply", str(cli.tmp / "nope.json"), "--auto-approve")
    assert result.exit_code == 2 and "cannot read plan file" in result.stderr


def test_schema_prints_json(cli: Cli) -> None:
    result = cli("schema")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["type"] == "object"


def test_every_command_help_has_an_example(cli: Cli) -> None:
    for command in ("validate", "plan", "show", "apply", "schema"):
        result = cli(command, "--help")
        assert result.exit_code == 0
        assert "Example" in result.stdout, command


def test_options_from_environment(cli: Cli, tmp_path: Path) -> None:
    result = reconcile("plan", "--detailed-exitcode", env={
        "RECONCILE_DESIRED": str(cli.desired), "RECONCILE_STATE_DIR": str(tmp_path / "s"), "NO_COLOR": "1"})
    assert result.exit_code == 3, result.output


def test_export_is_a_desired_state_that_plans_no_changes(cli: Cli) -> None:
    exported = cli.tmp / "bootstrap" / "users.yaml"
    result = cli("export", "--out", str(exported))
    assert result.exit_code == 0, result.output
    assert "  erin: {status: disabled}\n" in exported.read_text()

    again = reconcile("--desired", str(exported.parent), "--state-dir", str(cli.tmp / "s"),
                                     "plan", "--detailed-exitcode", env={"NO_COLOR": "1"})
    assert again.exit_code == 0, again.output
    assert "No changes" in again.stdout


def test_export_csv(cli: Cli) -> None:
    result = cli("export", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = result.stdout.splitlines()
    assert rows[0].startswith("username,email,account_id,ref")
    assert any(row.startswith("dave,dave@example.com,,u-dave,") for row in rows)


def test_interactive_approval_of_a_plan_file(cli: Cli) -> None:
    path, plan = cli.plan_file()
    result = cli("apply", str(path), input="yes\n")
    assert result.exit_code == 0, result.output
    assert f"Type yes to apply PLAN {plan.digest[:12]}:" in result.stdout
    assert {a["approval"] for a in cli.audit} == {"interactive"}


def test_approve_without_plan_file_applies_only_that_exact_plan(cli: Cli) -> None:
    _, plan = cli.plan_file()
    changed = world()
    changed["users"][5]["status"] = "active"  # erin enabled by hand: a different plan now
    write_world(cli.state, changed)

    refused = cli("apply", "--approve", plan.digest)

    assert refused.exit_code == 4 and "does not match" in refused.stderr
    assert read_world(cli.state) == changed


def test_detailed_exitcode_is_1_on_error(cli: Cli) -> None:
    cli.state.write_text("[]")
    result = cli("plan", "--detailed-exitcode")
    assert result.exit_code == 1
    assert "not a JSON object" in result.stderr


# Through the real command line (a child process): bad input is one clear message and the right exit code,
# never a traceback or an "internal error", and never a partial apply (SPEC §5, §8, §11).


def clean(done: subprocess.CompletedProcess[str]) -> str:
    """stderr, after checking it is one clear message: no traceback, no internal error."""
    assert "Traceback" not in done.stderr, done.stderr
    assert "internal error" not in done.stderr, done.stderr
    return done.stderr


def unchanged(cli: Cli) -> bool:
    return read_world(cli.state) == WORLD


def test_a_source_of_only_out_of_scope_users_is_refused_even_with_force(cli: Cli) -> None:
    # The CSV export of the wrong organization: 2 users, none of them *@example.com. Before the
    # fix, `--force` (which lifts only limits) disabled every in-scope user the source should list.
    export = cli.tmp / "export.csv"
    export.write_text("User id,User name,Email,User status,Group name\n"
                      ",Xavier,xavier@other.org,Active,\n,Yolanda,yolanda@other.org,Active,\n")
    (cli.desired / "sources.yaml").write_text(f"sources:\n  hr:\n    type: csv\n    path: {export}\n"
                                              "policy:\n  absent: disable\n")
    for args in (("plan", "--force"), ("apply", "--auto-approve", "--force")):
        done = cli.run(*args)
        assert done.returncode == 4, done.stderr
        message = clean(done)
        assert "source 'hr' returned 2 users, none of them in scope" in message
        assert "--force does not lift" in message
    assert unchanged(cli)


def test_an_edited_plan_file_is_refused_with_what_to_do(cli: Cli) -> None:
    plan_file = cli.tmp / "plan.json"
    assert cli.run("plan", "--out", str(plan_file)).returncode == 0
    data = json.loads(plan_file.read_text())
    digest = data["digest"]
    data["actions"][0]["subject"]["identity"] = "admin"
    plan_file.write_text(json.dumps(data))
    done = cli.run("apply", str(plan_file), "--approve", digest)
    assert done.returncode == 1
    message = clean(done)
    assert "edited" in message and "reconcile plan --out" in message and "desired state" not in message
    assert unchanged(cli)


def test_a_plan_for_another_target_is_stale_and_changes_nothing(cli: Cli) -> None:
    plan_file = cli.tmp / "plan.json"
    assert cli.run("plan", "--out", str(plan_file)).returncode == 0
    other = write_world(cli.tmp / "other.json")
    elsewhere = write_desired(cli.tmp / "elsewhere", other)
    done = cli.run("apply", str(plan_file), "--auto-approve", desired=elsewhere)
    # the plan records the desired directory it was planned from: another one is refused by name
    assert done.returncode == 2
    assert f"is not the desired directory {cli.desired}" in clean(done)
    assert unchanged(cli) and read_world(other) == WORLD


def test_a_binary_plan_file_is_one_clear_error(cli: Cli) -> None:
    plan_file = cli.tmp / "plan.json"
    plan_file.write_bytes(b"\xff\xfe\x00garbage")
    done = cli.run("show", str(plan_file))
    assert done.returncode in (1, 2)
    assert "plan.json" in clean(done)


def test_an_unwritable_audit_log_changes_nothing(cli: Cli) -> None:
    blocker = cli.tmp / "not-a-directory"
    blocker.write_text("")
    done = cli.run("apply", "--auto-approve", "--audit-log", str(blocker / "audit.jsonl"))
    assert done.returncode == 1
    assert "audit" in clean(done)
    assert unchanged(cli), "an action was performed that the audit log does not record"


@pytest.mark.parametrize("args", [("--state-dir", "{blocker}", "apply", "--auto-approve"),
                                  ("plan", "--out", "{blocker}/plan.json"),
                                  ("export", "--out", "{blocker}/export.yaml")])
def test_an_unusable_output_path_is_one_clear_error(cli: Cli, args: tuple[str, ...]) -> None:
    blocker = cli.tmp / "not-a-directory"
    blocker.write_text("")
    argv = [a.format(blocker=blocker) for a in args]
    done = reconcile_process("--desired", str(cli.desired), *argv) if argv[0] == "--state-dir" else cli.run(*argv)
    assert done.returncode == 1
    assert str(blocker) in clean(done)
    assert unchanged(cli)
