"""CLI polish: `--desired` on every command that reads desired state, --help (examples, no metavar on
flags), shell completion, and who the audit log names when $USER is unset.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import Cli, make_cli, reconcile

COMMANDS = ["validate", "plan", "show", "apply", "export", "schema", "sim"]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return make_cli(tmp_path)


def run(*args: str, env: dict[str, str | None] | None = None) -> tuple[int, str, str]:
    result = reconcile(*args, env={"NO_COLOR": "1", **(env or {})})
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(("command", "expected"), [
    (["validate"], 0), (["plan", "--detailed-exitcode"], 3), (["apply", "--dry-run"], 0), (["export"], 0)])
def test_desired_on_the_command(cli: Cli, command: list[str], expected: int) -> None:
    state = ["--state-dir", str(cli.tmp / "state")]
    nowhere = str(cli.tmp / "nowhere")
    # only on the command
    code, out, err = run(*state, *command, "--desired", str(cli.desired))
    assert code == expected, out + err
    # on both: the command's wins
    code, out, err = run(*state, "--desired", nowhere, *command, "--desired", str(cli.desired))
    assert code == expected, out + err
    # RECONCILE_DESIRED loses to the command's option too
    code, out, err = run(*state, *command, "--desired", str(cli.desired), env={"RECONCILE_DESIRED": nowhere})
    assert code == expected, out + err
    # and the global option (or RECONCILE_DESIRED) alone still works, the command's absent
    code, out, err = run(*state, *command, env={"RECONCILE_DESIRED": str(cli.desired)})
    assert code == expected, out + err
    # a wrong command-level directory is reported as such
    code, _, err = run(*state, "--desired", str(cli.desired), *command, "--desired", nowhere)
    assert code == 1 and f"{nowhere}: no such directory" in err


def test_help_has_an_example_everywhere_and_flags_take_no_value() -> None:
    for args in [[], *([c] for c in COMMANDS)]:
        code, out, _ = run(*args, "--help")
        assert code == 0, args
        assert "Example" in out, args
        assert "<bool>" not in out, args
    _, plan_help, _ = run("plan", "--help")
    assert "--detailed-exitcode" in plan_help and "--report" in plan_help and "--notify" in plan_help
    assert "<path>" in plan_help  # options that take a value still say what


def test_shell_completion(tmp_path: Path) -> None:
    env = {**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    shown = subprocess.run([sys.executable, "-m", "reconcile.cli", "--show-completion", "bash"], env=env,
                           capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    assert "complete -o default -F _reconcile_completion reconcile" in shown.stdout
    # what that script asks the program for while the user types `reconcile pl<TAB>`
    env = {**os.environ, "_RECONCILE_COMPLETE": "complete_bash", "COMP_WORDS": "reconcile pl", "COMP_CWORD": "1"}
    asked = subprocess.run([sys.executable, "-m", "reconcile.cli"], env=env, capture_output=True, text=True,
                           timeout=60, check=False)
    assert asked.stdout.split() == ["plan"]
    env.update(COMP_WORDS="reconcile apply --auto", COMP_CWORD="2")
    asked = subprocess.run([sys.executable, "-m", "reconcile.cli"], env=env, capture_output=True, text=True,
                           timeout=60, check=False)
    assert asked.stdout.split() == ["--auto-approve"]


def test_operator_is_the_login_name_when_user_is_unset(cli: Cli) -> None:
    unset: dict[str, str | None] = dict.fromkeys(
        ("USER", "LOGNAME", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILDKITE_BUILD_CREATOR", "BUILD_REQUESTEDFOR"))
    code, out, err = run("--desired", str(cli.desired), "--state-dir", str(cli.tmp / "state"), "apply",
                         "--auto-approve", env=unset)
    assert code == 0, out + err
    lines = (cli.tmp / "state" / "audit.jsonl").read_text().splitlines()
    assert {json.loads(line)["operator"] for line in lines} == {pwd.getpwuid(os.getuid()).pw_name}
