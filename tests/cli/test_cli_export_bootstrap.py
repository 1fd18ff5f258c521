"""The bootstrap recipe of docs/workflows.md through the CLI against the simulator: export into desired/,
then "No changes"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import Result

from reconcile.sim.server import running
from tests.support.cli import reconcile as invoke

CONFLUENCE_YAML = """\
version: 1
target:
  type: confluence-dc
  url: {url}
  auth:
    token: ${{CONFLUENCE_TOKEN}}
  admin_groups: [confluence-administrators]
  readonly_groups: ["ldap-*"]
scope:
  users: ["*"]
  groups: ["team-*"]
"""


@pytest.fixture
def site() -> Iterator[str]:
    with running() as url:  # the example world; its admin's token is example-admin-token
        yield url


def reconcile(tmp: Path, *args: str) -> Result:
    return invoke("--state-dir", str(tmp / "state"), *args,
                              env={"NO_COLOR": "1", "CONFLUENCE_TOKEN": "example-admin-token"})


def test_the_readme_bootstrap_recipe_exports_users_beside_the_target_and_plans_no_changes(
        tmp_path: Path, site: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the recipe's paths, relative to the repository
    Path("desired").mkdir()
    Path("desired/confluence.yaml").write_text(CONFLUENCE_YAML.format(url=site), encoding="utf-8")

    exported = reconcile(tmp_path, "export", "--format", "yaml", "--out", "desired/users.yaml")
    assert exported.exit_code == 0, exported.output
    text = Path("desired/users.yaml").read_text(encoding="utf-8")
    for section in ("target:", "scope:", "policy:"):
        assert f"\n{section}" not in text, text  # written once, in confluence.yaml
    assert "\nusers:\n" in text and "desired/confluence.yaml" in text

    plan = reconcile(tmp_path, "plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.output
    assert "No changes." in plan.stdout

    # "Edit the scope first, export again": an existing file is replaced only with --force.
    Path("desired/users.yaml").write_text("# mine\n", encoding="utf-8")
    refused = reconcile(tmp_path, "export", "--format", "yaml", "--out", "desired/users.yaml")
    assert refused.exit_code == 1
    assert "--out desired/users.yaml exists" in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.output
    assert Path("desired/users.yaml").read_text(encoding="utf-8") == "# mine\n"

    forced = reconcile(tmp_path, "export", "--format", "yaml", "--out", "desired/users.yaml", "--force")
    assert forced.exit_code == 0, forced.output
    assert Path("desired/users.yaml").read_text(encoding="utf-8") == text
    assert reconcile(tmp_path, "plan", "--detailed-exitcode").exit_code == 0


def test_export_into_a_directory_whose_files_write_users_is_refused_before_the_network(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("desired").mkdir()
    Path("desired/confluence.yaml").write_text(CONFLUENCE_YAML.format(url="http://127.0.0.1:9"), encoding="utf-8")
    Path("desired/teams.yaml").write_text("users:\n  alice: {}\n", encoding="utf-8")
    refused = reconcile(tmp_path, "export", "--out", "desired/users.yaml")
    assert refused.exit_code == 1, refused.output
    assert "desired/teams.yaml already writes users or groups" in refused.stderr
    assert not Path("desired/users.yaml").exists()


def test_export_outside_the_desired_directory_is_a_whole_desired_state(tmp_path: Path, site: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("desired").mkdir()
    Path("desired/confluence.yaml").write_text(CONFLUENCE_YAML.format(url=site), encoding="utf-8")
    result = reconcile(tmp_path, "export", "--out", "elsewhere/all.yaml")
    assert result.exit_code == 0, result.output
    text = Path("elsewhere/all.yaml").read_text(encoding="utf-8")
    assert "\ntarget:\n" in text and "\nscope:\n" in text
    assert reconcile(tmp_path, "--desired", "elsewhere", "plan", "--detailed-exitcode").exit_code == 0
