"""No secret value ever reaches stdout, stderr, plan files, journals or the audit log.

Runs the real CLI (with --verbose, so every request is logged) against the simulator serving the
Confluence DC API on a loopback port, with a personal access token only the environment knows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconcile.plan import Plan
from tests.support.cli import reconcile
from tests.support.sim import example_site_with_token

TOKEN = "s3cr3t-token-value"
WRONG = "s3cr3t-wrong-token-value"

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
  protect: ["svc-*"]
policy:
  absent: ignore
users:
  alice@example.com:
    groups: [team-docs, team-platform]
  bob@example.com:
    groups: [team-docs]
  carol@example.com:
    groups: []
"""


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    with example_site_with_token(TOKEN) as url:
        yield url


def test_secret_never_written_or_printed(sim_url: str, tmp_path: Path) -> None:
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "site.yaml").write_text(DESIRED.format(url=sim_url))
    state = tmp_path / "state"
    base = ["--verbose", "--desired", str(desired), "--state-dir", str(state)]
    outputs: list[str] = []

    def run(*args: str, token: str = TOKEN) -> int:
        result = reconcile(*base, *args, env={"CONFLUENCE_TOKEN": token, "NO_COLOR": "1"})
        outputs.append(result.stdout + result.stderr)
        return result.exit_code

    plan_file = tmp_path / "plan.json"
    assert run("validate") == 0, outputs[-1]
    assert run("plan", "--out", str(plan_file), "--detailed-exitcode") == 3, outputs[-1]
    plan = Plan.loads(plan_file.read_text())
    assert [a.describe() for a in plan.actions] == [
        f"add alice@example.com ({plan.actions[0].subject.ref}) to team-platform",
        f"remove carol@example.com ({plan.actions[1].subject.ref}) from team-docs",
    ]
    assert run("plan", "--format", "markdown") == 0
    assert run("show", str(plan_file), "--format", "json") == 0
    assert run("apply", str(plan_file), "--approve", plan.digest) == 0, outputs[-1]
    assert run("plan", "--detailed-exitcode") == 0, outputs[-1]
    assert run("plan", token=WRONG) == 1, outputs[-1]  # a wrong token: one clear error

    assert any("GET " in text for text in outputs), "--verbose logged the requests"
    assert "credentials" in outputs[-1].lower() or "token" in outputs[-1].lower()
    written = [plan_file, *state.rglob("*")]
    assert any(p.name == "audit.jsonl" for p in written) and any(p.suffix == ".jsonl" for p in written)
    for secret in (TOKEN, WRONG):
        for number, text in enumerate(outputs):
            assert secret not in text, f"secret in the output of command #{number}"
        for path in written:
            if path.is_file():
                assert secret not in path.read_text(), f"secret in {path}"
