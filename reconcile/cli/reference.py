"""docs/cli.md, generated from the `--help` of every command: `python -m reconcile.cli.reference [--write]`.

A test compares the file with this text, so the reference cannot drift from the CLI (`make docs` rewrites it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from typer import rich_utils
from typer.core import TyperGroup
from typer.testing import CliRunner

from reconcile.cli import app

WIDTH = 100  # fixed, so the text does not depend on the terminal that generates it
DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
COMMAND = "python -m reconcile.cli.reference --write"
REGENERATE = f"{COMMAND}  (or: make docs)"
HEADER = f"""# Command line reference

Generated from `reconcile --help` and each command's `--help` by `{COMMAND}`;
do not edit by hand (a test fails when this page differs from the CLI). The guide to the same options
— global options, exit codes, `--strict`, shell completion — is [Command line](command-line.md).
"""


@contextmanager
def _plain_fixed_width() -> Iterator[None]:
    """Rich reads its width and colour settings at import: pin them for the duration, then restore."""
    saved = rich_utils.MAX_WIDTH, rich_utils.COLOR_SYSTEM, rich_utils.FORCE_TERMINAL
    rich_utils.MAX_WIDTH, rich_utils.COLOR_SYSTEM, rich_utils.FORCE_TERMINAL = WIDTH, None, False
    try:
        yield
    finally:
        rich_utils.MAX_WIDTH, rich_utils.COLOR_SYSTEM, rich_utils.FORCE_TERMINAL = saved


def _help(args: list[str]) -> str:
    # Unset every RECONCILE_* variable: a value from the environment must not become a documented default.
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith(("RECONCILE_", "_RECONCILE"))}
    env |= {"NO_COLOR": "1", "COLUMNS": str(WIDTH), "TERM": "dumb"}
    result = CliRunner().invoke(app, [*args, "--help"], prog_name="reconcile", env=env)
    if result.exit_code != 0:
        raise RuntimeError(f"reconcile {' '.join(args)} --help exited {result.exit_code}: {result.output}")
    return "\n".join(line.rstrip() for line in result.output.strip("\n").splitlines())


def command_names() -> list[str]:
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    return [name for name, command in group.commands.items() if not command.hidden]


def generate() -> str:
    """The whole page: the top-level help, then each command's, in the order `reconcile --help` lists them."""
    with _plain_fixed_width():
        parts = [HEADER, "## reconcile\n", f"```text\n{_help([])}\n```\n"]
        for name in command_names():
            parts += [f"## reconcile {name}\n", f"```text\n{_help([name])}\n```\n"]
    return "\n".join(parts)


def main(argv: list[str]) -> int:
    text = generate()
    if argv == ["--write"]:
        DOC.write_text(text, encoding="utf-8")
        print(f"wrote {DOC}")
    elif argv:
        print("usage: python -m reconcile.cli.reference [--write]", file=sys.stderr)
        return 2
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
