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
