"""Output flags do what they say (issue 11, item 12): `-v` is one line per request, `-q` only the
summary and errors, `--no-color` plain bars too, and global options also after the command.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconcile.cli.argv import hoist_globals
from tests.cli.test_cli_terminal import on_a_terminal
from tests.support.apply import write_desired, write_world
from tests.support.cli import reconcile
from tests.support.sim import example_site_with_token

TOKEN = "flags-test-token-0123456789"
SITE = """\
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
"""
REQUEST = re.compile(r"^DEBUG reconcile\.http: (GET|POST|PUT|DELETE) http://127\.0\.0\.1:\d+/\S* -> \d{3} "
                     r"in \d+ ms$")


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with example_site_with_token(TOKEN) as url:
        yield url


def _run(desired: Path, *args: str) -> tuple[int, str, str]:
    result = reconcile("--desired", str(desired), *args,
                                env={"CONFLUENCE_TOKEN": TOKEN, "NO_COLOR": "1"})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def desired(site: str, tmp_path: Path) -> Path:
    (tmp_path / "desired").mkdir()
    (tmp_path / "desired" / "site.yaml").write_text(SITE.format(url=site))
    return tmp_path / "desired"


def test_verbose_is_one_line_per_request_and_no_library_internals(desired: Path) -> None:
    code, stdout, stderr = _run(desired, "plan", "-v")  # the global option after the command

    assert code == 0, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    requests = [line for line in lines if REQUEST.match(line)]
    assert len(requests) >= 3, stderr
    assert not [line for line in lines if re.match(r"\w+ (httpx|httpcore|hpack|asyncio)\b", line)], stderr
    assert TOKEN not in stdout + stderr
    assert "Plan:" in stdout


def test_quiet_prints_the_summary_line_only(desired: Path) -> None:
    code, stdout, stderr = _run(desired, "plan", "--quiet", "--out", str(desired.parent / "p.json"))

    assert code == 0, stderr
    assert stdout.splitlines() == ["Plan: 0 to enable, 1 to add, 0 to remove, 0 to disable, 0 to delete."]
    assert stderr == ""


def test_quiet_still_prints_errors(desired: Path) -> None:
    result = reconcile("--desired", str(desired), "plan", "-q",
                                env={"CONFLUENCE_TOKEN": "wrong-token", "NO_COLOR": "1"})

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: GET ")


def test_no_color_covers_the_progress_bars(tmp_path: Path) -> None:
    state = write_world(tmp_path / "world.json")
    desired = write_desired(tmp_path / "desired", state)
    text = (desired / "reconcile.yaml").read_text().replace("  type: memory\n", "  type: memory\n  delay: 0.3\n")
    (desired / "reconcile.yaml").write_text(text)
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    base = ["--desired", str(desired), "--state-dir", str(tmp_path / "state")]

    code, drawn = on_a_terminal([*base, "apply", "--auto-approve", "--no-color"], env, raw=True)

    assert code == 0, drawn
    assert "ETA" in drawn  # the bars were drawn ...
    assert not re.findall(r"\x1b\[[0-9;]*m", drawn), drawn  # ... without a colour or style

    write_world(state)
    code, drawn = on_a_terminal([*base, "apply", "--auto-approve"], env, raw=True)
    assert code == 0 and re.search(r"\x1b\[[0-9;]*m", drawn)  # (colours by default on a terminal)


@pytest.mark.parametrize(("args", "expected"), [
    (["plan", "--no-color", "-v"], ["--no-color", "-v", "plan"]),
    (["--desired", "d", "apply", "p.json", "-qv", "--state-dir", "s", "--approve", "abc"],
     ["--desired", "d", "-qv", "--state-dir", "s", "apply", "p.json", "--approve", "abc"]),
    (["plan", "--log-format=json", "--out", "x"], ["--log-format=json", "plan", "--out", "x"]),
    (["sim", "--", "-v"], ["sim", "--", "-v"]),
])
def test_global_options_after_the_command_are_moved_before_it(args: list[str], expected: list[str]) -> None:
    assert hoist_globals(args, {"plan", "apply", "sim"}) == expected
