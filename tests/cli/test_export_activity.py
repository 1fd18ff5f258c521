"""`export --format csv` with per-product last activity (issue 14 item 7): Confluence DC's `last_login`,
Cloud's `last_active_<product>` and `added_to_org`, through the CLI against the simulator's example world.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

from typer.testing import CliRunner

from reconcile.cli import app
from reconcile.export import CSV_COLUMNS
from reconcile.sim.app import build_app
from reconcile.sim.server import running

REPO = Path(__file__).resolve().parents[1].parent
ENV = {"NO_COLOR": "1", "CONFLUENCE_TOKEN": "example-admin-token",
       "ATLASSIAN_ORG_ID": "3f2a9c1e-7b4d-4e6f-9a8b-1c2d3e4f5a6b", "ATLASSIAN_ADMIN_KEY": "sim-cloud-admin-key"}


def export_csv(tmp: Path, source: Path, url: str) -> list[dict[str, str]]:
    desired = tmp / source.name
    shutil.copytree(source, desired, ignore=shutil.ignore_patterns("examples"))
    for path in desired.glob("*.yaml"):
        path.write_text(path.read_text(encoding="utf-8").replace("http://127.0.0.1:8990", url), encoding="utf-8")
    result = CliRunner().invoke(app, ["--desired", str(desired), "export", "--format", "csv"], env=ENV)
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.stdout)))


def test_dc_csv_has_the_last_login_with_never_and_unknown_apart(tmp_path: Path) -> None:
    with running(build_app()) as url:
        rows = export_csv(tmp_path, REPO / "desired", url)
    assert list(rows[0]) == [*CSV_COLUMNS, "last_login"]
    by_name = {r["username"]: r for r in rows}
    assert by_name["rupert"]["last_login"] == "2025-06-30T12:00:00Z"
    assert by_name["heidi"]["last_login"] == "never"  # licensed, never logged in
    assert by_name["zoe"]["last_login"] == ""  # disabled: DC does not list its last login


def test_cloud_csv_has_a_column_per_product_and_added_to_org(tmp_path: Path) -> None:
    with running(build_app()) as url:
        rows = export_csv(tmp_path, REPO / "desired" / "examples" / "atlassian-cloud", url)
    assert list(rows[0]) == [*CSV_COLUMNS, "last_active_confluence", "added_to_org"]
    by_email = {r["email"]: r for r in rows}
    assert by_email["alice@acme.example"]["last_active_confluence"] == "2026-09-30T08:00:00Z"
    assert by_email["alice@acme.example"]["added_to_org"] == "2023-05-15T10:00:00Z"
    assert by_email["erin@acme.example"]["last_active_confluence"] == ""  # no product used yet
