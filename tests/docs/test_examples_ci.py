"""The CI examples: every file parses, and every `reconcile ...` command in them uses only real options.

Options are checked twice: against the command line the SPEC defines (plus the few documented
extensions below) and against the real typer application, so an example cannot drift from either.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from ruamel.yaml import YAML

from reconcile.cli import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted({*ROOT.glob("examples/**/*.yml"), *ROOT.glob("examples/**/.*.yml"),
                   *ROOT.glob("examples/**/*.yaml")})
SCRIPT_KEYS = {"run", "script", "before_script", "after_script", "entry"}  # GitHub, GitLab, pre-commit

# SPEC §3 and §8: the options of each command.
SPEC: dict[str, set[str]] = {
    "": {"--desired"},
    "validate": set(),
    "plan": {"--out", "--format", "--detailed-exitcode", "--force"},
    "show": {"--format"},
    "apply": {"--approve", "--auto-approve", "--limit", "--force"},
    "export": {"--format"},
    "schema": set(),
}
# Options beyond the SPEC that the examples rely on, each for a reason stated in docs/workflows.md.
EXTENSIONS: dict[str, set[str]] = {
    "": {"--no-color"},  # CI logs and Markdown files must not carry ANSI codes
    "validate": {"--require-env"},  # CI holds the variables: an unset one fails there, not on laptops
    "plan": {"--mask-emails"},  # PR comments of public repositories
    "show": {"--mask-emails"},
}
SHELL_OPERATORS = {"|", "||", "&&", ";", ">", ">>", "2>", "<", "&", "(", ")", "<<"}


def _scripts(node: Any, inside: bool = False) -> Iterator[str]:
    """The shell text of a CI file: the strings under `run:` / `script:` keys, however nested."""
    if isinstance(node, str):
        if inside:
            yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _scripts(value, inside or key in SCRIPT_KEYS)
    elif isinstance(node, list):
        for value in node:
            yield from _scripts(value, inside)


def reconcile_commands(text: str) -> list[list[str]]:
    """Each `reconcile ...` invocation in a shell script, as argv (up to the first shell operator)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    found = []
    for line in joined.splitlines():
        if not re.search(r"(^|[\s;|&(])reconcile\s", line):
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;<>()")
        lexer.whitespace_split = True
        tokens = list(lexer)
        for i, token in enumerate(tokens):
            if token == "reconcile" and (i == 0 or tokens[i - 1] in SHELL_OPERATORS or "=" in tokens[i - 1]):
                argv = []
                for t in tokens[i + 1:]:
                    if t in SHELL_OPERATORS or re.fullmatch(r"[0-9]?[<>&|;()]+", t):
                        break
                    argv.append(t)
                found.append(argv)
    return found


def split(argv: list[str]) -> tuple[str, set[str], set[str]]:
    """(command, global options, command options) of a reconcile argv."""
    globals_: set[str] = set()
    command = ""
    options: set[str] = set()
    for token in argv:
        if not token.startswith("-"):
            if not command:
                command = token
            continue
        name = token.split("=", 1)[0]
        (options if command else globals_).add(name)
    return command, globals_, options


def _cli_options() -> dict[str, set[str]]:
    root = typer.main.get_command(app)
    out = {"": {o for p in root.params for o in p.opts if o.startswith("-")}}
    commands: dict[str, Any] = getattr(root, "commands", {})
    for name, command in commands.items():
        out[name] = {o for p in command.params for o in p.opts if o.startswith("-")}
    return out


def _all_commands() -> list[tuple[str, list[str]]]:
    out = []
    for path in EXAMPLES:
        for text in _scripts(YAML(typ="safe").load(path.read_text(encoding="utf-8"))):
            for argv in reconcile_commands(text):
                out.append((str(path.relative_to(ROOT)), argv))
    return out


def test_the_expected_examples_exist_and_parse() -> None:
    names = {str(p.relative_to(ROOT)) for p in EXAMPLES}
    assert names >= {
        "examples/github-actions/reconcile-plan.yml",
        "examples/github-actions/reconcile-apply.yml",
        "examples/gitlab-ci/.gitlab-ci.yml",
        "examples/nightly-drift.yml",
    }
    for path in EXAMPLES:
        assert isinstance(YAML(typ="safe").load(path.read_text(encoding="utf-8")), dict), path


def test_examples_use_only_spec_options_known_to_the_cli() -> None:
    cli = _cli_options()
    commands = _all_commands()
    assert len(commands) >= 9
    for where, argv in commands:
        command, globals_, options = split(argv)
        assert command in SPEC, f"{where}: unknown command in reconcile {' '.join(argv)}"
        allowed_globals = SPEC[""] | EXTENSIONS[""]
        allowed = SPEC[command] | EXTENSIONS.get(command, set())
        assert globals_ <= allowed_globals, f"{where}: reconcile {' '.join(argv)}"
        assert options <= allowed, f"{where}: reconcile {' '.join(argv)}: {options - allowed}"
        assert globals_ <= cli[""] and options <= cli[command], f"{where}: not in the CLI: {argv}"


def test_the_pipelines_cover_the_three_workflows() -> None:
    by_file: dict[str, list[list[str]]] = {}
    for where, argv in _all_commands():
        by_file.setdefault(where, []).append(argv)
    plan_pr = by_file["examples/github-actions/reconcile-plan.yml"]
    assert ["--no-color", "plan", "--out", "plan.json", "--format", "markdown", "--mask-emails",
            "--detailed-exitcode"] in plan_pr
    apply_gh = by_file["examples/github-actions/reconcile-apply.yml"]
    assert ["--no-color", "apply", "reviewed/plan.json", "--approve", "$DIGEST"] in apply_gh
    gitlab = by_file["examples/gitlab-ci/.gitlab-ci.yml"]
    assert any(a[:2] == ["--no-color", "plan"] for a in gitlab)
    assert ["--no-color", "apply", "reviewed/plan.json", "--approve", "$DIGEST"] in gitlab
    nightly = by_file["examples/nightly-drift.yml"]
    assert ["--no-color", "plan", "--out", "plan.json", "--detailed-exitcode"] in nightly
    assert ["--no-color", "apply", "plan.json", "--auto-approve"] in nightly
    # Nothing in the examples applies without an explicit approval.
    for where, argv in _all_commands():
        if split(argv)[0] == "apply":
            assert {"--approve", "--auto-approve"} & split(argv)[2], where


def test_the_comment_marker_the_pipelines_search_for_is_the_renderers() -> None:
    from reconcile.render import COMMENT_MARKER

    for name in ("github-actions/reconcile-plan.yml", "github-actions/reconcile-apply.yml",
                 "gitlab-ci/.gitlab-ci.yml"):
        assert COMMENT_MARKER in (ROOT / "examples" / name).read_text(encoding="utf-8"), name


def test_pre_commit_hook_runs_validate() -> None:
    hooks = YAML(typ="safe").load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    [hook] = hooks
    assert hook["id"] == "reconcile-validate"
    assert reconcile_commands(hook["entry"]) == [["validate"]]
    assert hook["pass_filenames"] is False


@pytest.mark.parametrize(("script", "expected"), [
    ("reconcile plan --out p.json > plan.md 2> err || code=$?", [["plan", "--out", "p.json"]]),
    ("X=1 reconcile --no-color \\\n  apply p.json --approve \"$D\"", [["--no-color", "apply", "p.json",
                                                                        "--approve", "$D"]]),
    ("echo reconcile is great", []),
    ("pip install reconcile==0.1.0", []),
])
def test_command_extraction(script: str, expected: list[list[str]]) -> None:
    assert reconcile_commands(script) == expected
