"""Plan files remember the desired directory they were planned from (issue 11, item 6), and files
that are not plans get a plan-file error (item 15).

The scenario of the issue: `plan --desired X --out p.json` next to a default `desired/` directory
that names another site with tighter limits; following the printed hint applies X, never the other.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import Result

from reconcile.errors import StalePlan
from reconcile.plan import Plan, check_target, target_label
from tests.support.apply import member_of, read_world, status_of, write_desired, write_world
from tests.support.cli import reconcile

ENV = {"NO_COLOR": "1", "USER": "tester"}


def cli(*args: str) -> Result:
    return reconcile("--state-dir", "state", *args, env=ENV)


@pytest.fixture
def two_sites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`X/` plans the fixture world; the default `desired/` names another world that refuses any disable."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECONCILE_DESIRED", raising=False)
    write_desired(Path("X"), write_world(tmp_path / "world.json"))
    write_desired(Path("desired"), write_world(tmp_path / "other.json"),
                  "policy:\n  limits: {disable: 0}\n")
    return tmp_path


def _hint(result: Result) -> str:
    found = re.search(r"apply it with: (reconcile apply .*)", result.output)
    assert found, result.output
    return found.group(1)


def test_the_printed_hint_applies_the_directory_that_was_planned(two_sites: Path) -> None:
    planned = cli("plan", "--desired", "X", "--out", "p.json")
    assert planned.exit_code == 0, planned.output
    hint = _hint(planned)
    assert "--desired X" in hint
    assert json.loads(Path("p.json").read_text())["desired_dir"] == "X"

    applied = cli(*hint.split()[1:])

    assert applied.exit_code == 0, applied.output
    assert "safety limits" not in applied.output
    assert status_of(read_world(two_sites / "world.json"), "u-dave") == "disabled"
    assert status_of(read_world(two_sites / "other.json"), "u-dave") == "active"  # the other site untouched


def test_apply_without_desired_uses_the_plans_directory(two_sites: Path) -> None:
    planned = cli("plan", "--desired", "X", "--out", "p.json")
    digest = Plan.loads(Path("p.json").read_text()).digest

    applied = cli("apply", "p.json", "--approve", digest)  # as the hint of the first release printed it

    assert planned.exit_code == 0 and applied.exit_code == 0, applied.output
    assert member_of(read_world(two_sites / "world.json"), "team-eng") == ["u-alice", "u-bob"]
    assert member_of(read_world(two_sites / "other.json"), "team-eng") == ["u-bob"]


@pytest.mark.parametrize("where", [["--desired", "desired"], []])
def test_a_different_desired_directory_is_refused_by_name(two_sites: Path, where: list[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    cli("plan", "--desired", "X", "--out", "p.json")
    digest = Plan.loads(Path("p.json").read_text()).digest
    if not where:
        monkeypatch.setenv("RECONCILE_DESIRED", "desired")  # given through the environment instead

    applied = cli("apply", "p.json", *where, "--approve", digest)

    assert applied.exit_code == 2, applied.output
    assert "--desired desired is not the desired directory X that p.json was planned from" in applied.output
    assert status_of(read_world(two_sites / "world.json"), "u-dave") == "active"


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_another_target_is_named_before_any_limit(two_sites: Path, force: list[str]) -> None:
    cli("plan", "--desired", "X", "--out", "p.json")
    digest = Plan.loads(Path("p.json").read_text()).digest
    # X now names the other world, whose limits this plan exceeds: the target is what is wrong.
    text = (Path("X") / "reconcile.yaml").read_text().replace("world.json", "other.json")
    (Path("X") / "reconcile.yaml").write_text(text + "policy:\n  limits: {disable: 0}\n")

    applied = cli("apply", "p.json", "--approve", digest, *force)

    assert applied.exit_code == 4, applied.output
    world, other = two_sites / "world.json", two_sites / "other.json"
    assert f"the plan is for memory {world}, but the configuration names memory {other}" in applied.output
    assert "safety limits" not in applied.output and "{" not in applied.output
    assert status_of(read_world(other), "u-dave") == "active"


def test_the_digest_does_not_depend_on_the_directory(two_sites: Path) -> None:
    Path("Y").mkdir()
    Path("Y/reconcile.yaml").write_text(Path("X/reconcile.yaml").read_text())

    cli("plan", "--desired", "X", "--out", "x.json")
    cli("plan", "--desired", "Y", "--out", "y.json")

    x, y = (Plan.loads(Path(f).read_text()) for f in ("x.json", "y.json"))
    assert (x.desired_dir, y.desired_dir) == ("X", "Y")
    assert x.digest == y.digest


def test_targets_are_named_in_words() -> None:
    cloud = {"type": "atlassian-cloud", "url": "https://api.atlassian.com", "org": "o-1"}
    dc = {"type": "confluence-dc", "url": "https://wiki.example.com"}
    plan = Plan(target=cloud, desired_digest="d", actual_fingerprint="a", actions=())

    assert target_label(cloud) == "atlassian-cloud https://api.atlassian.com org o-1"
    with pytest.raises(StalePlan) as refused:
        check_target(plan, dc)
    assert str(refused.value).startswith("refused: the plan is for atlassian-cloud https://api.atlassian.com "
                                         "org o-1, but the configuration names confluence-dc "
                                         "https://wiki.example.com;")


@pytest.mark.parametrize(("content", "why"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8 text"),
    (b'{"format_version": 1, "target": {"type": "memory"', "invalid JSON at line 1"),
    (b'["a list"]', "not a JSON object"),
    (b'{"format_version": 1}', "the field 'target' is missing"),
])
def test_a_file_that_is_not_a_plan_gets_a_plan_file_error(two_sites: Path, content: bytes, why: str) -> None:
    Path("p.json").write_bytes(content)

    for command in (["apply", "p.json", "--auto-approve"], ["show", "p.json"]):
        result = cli(*command)
        assert result.exit_code == 1, result.output
        assert "Error: p.json: not a reconcile plan file: " in result.output and why in result.output
        assert "desired state" not in result.output and "Traceback" not in result.output
