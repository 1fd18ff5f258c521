"""`make bench` at toy sizes: every section runs end to end against real simulator processes.

Asserts structure and correctness (same plan at any concurrency, zero failed or duplicated
actions, serialized deletions, converged state) — never timings, which belong to `make bench`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import PLAN_PARTS, SECTIONS, main
from bench.report import lines

DIGEST = re.compile(r"^[0-9a-f]{64}$")


def smoke(work: Path, sections: str) -> tuple[dict[str, Any], str]:
    """`python -m bench --scale smoke --only SECTIONS`: the results and their JSON text.

    One run per test, of the sections it checks only: the tests spread over the xdist workers (a shared
    module fixture ran every section once per worker) and `make check` runs only the unmarked ones.
    """
    out = work / "results.json"
    assert main(["--scale", "smoke", "--only", sections, "--out", str(out), "--work", str(work / "files")]) == 0
    text = out.read_text()
    assert "sim-admin-token" not in text and "sim-cloud-key" not in text, "no credential in results.json"
    return json.loads(text), text


def test_a_whole_run_plans_each_target_once() -> None:
    """`plan-dc`/`plan-cloud` are for --only: in a whole run one would replace `plan`'s rows with its own."""
    assert "plan" in SECTIONS and not set(PLAN_PARTS) & set(SECTIONS)
    assert {target for part in PLAN_PARTS.values() for target in part} == {"confluence-dc", "atlassian-cloud"}


@pytest.mark.slow
def test_plan_rows_cover_both_targets_and_agree_across_concurrency(tmp_path: Path) -> None:
    data, _ = smoke(tmp_path, "plan")
    rows = {row["target"]: row for row in data["plan"]}
    assert set(rows) == {"confluence-dc", "atlassian-cloud"}
    defaults = {"confluence-dc": 16, "atlassian-cloud": 8}  # each target's own: the desired file sets none
    for target, row in rows.items():
        fast, slow = row["fast"], row["concurrency_1"]
        assert (fast["concurrency"], slow["concurrency"]) == (defaults[target], 1)
        assert fast["exit_code"] == slow["exit_code"] == 0
        assert DIGEST.match(fast["digest"])
        assert row["same_plan"] and fast["digest"] == slow["digest"]
        assert fast["actions"] > 0, "the drifted desired state must give the planner work"
        assert fast["requests"] > 0 and slow["requests"] > 0
        assert fast["peak_rss_mb"] > 10
    table = lines(data)
    assert any("plan confluence-dc" in line.what for line in table)
    assert any("plan atlassian-cloud" in line.what for line in table)


@pytest.mark.slow
def test_apply_under_rate_limit_has_no_failed_or_duplicated_action(tmp_path: Path) -> None:
    data, _ = smoke(tmp_path, "apply")
    rows = {row["target"]: row for row in data["apply"]}
    assert set(rows) == {"confluence-dc", "atlassian-cloud"}
    for row in rows.values():
        assert row["apply_exit_code"] == 0
        assert row["actions"] > 0
        assert row["done"] + row["already"] == row["actions"]
        assert row["failed"] == 0
        assert row["duplicated_writes"] == 0 and row["duplicated_non_idempotent"] == 0
        assert row["residual_actions"] == 0, "a plan after the apply must be empty"
        assert row["writes"] >= row["done"]
    dc = rows["confluence-dc"]
    assert dc["actions"] == 40 and dc["writes"] == 40, "one PUT/DELETE per DC membership change"


@pytest.mark.slow
def test_deletions_run_one_at_a_time_to_completion(tmp_path: Path) -> None:
    data, _ = smoke(tmp_path, "delete")
    (row,) = data["delete"]
    assert row["actions"] == 5 and row["tasks"] == 5
    assert row["done"] == 5 and row["failed"] == 0
    assert row["serialization_violations"] == 0
    assert row["residual_actions"] == 0
    assert row["sum_of_tasks_s"] == pytest.approx(5 * 0.05)


@pytest.mark.slow
def test_planner_and_ldap_rows_and_the_table(tmp_path: Path) -> None:
    data, _ = smoke(tmp_path, "planner,ldap")
    assert data["planner"]["actions"] > 0 and data["planner"]["users"] == 2000
    assert data["ldap"] == {"available": False, "why": "skipped at this scale"}
    assert data["machine"]["cores"] >= 1
    table = lines(data)
    verdicts = {line.verdict for line in table}
    assert verdicts <= {"PASS", "MISS", ""}
    assert any("planner" in line.what for line in table)


@pytest.mark.slow
def test_the_entra_row_reads_the_same_tenant_at_both_concurrencies(tmp_path_factory: pytest.TempPathFactory) -> None:
    work = tmp_path_factory.mktemp("bench-entra")
    out = work / "results.json"
    assert main(["--scale", "smoke", "--only", "entra", "--out", str(out), "--work", str(work / "files")]) == 0
    row = json.loads(out.read_text())["entra"]
    fast, slow = row["fast"], row["concurrency_1"]
    assert (fast["concurrency"], slow["concurrency"]) == (8, 1)
    assert row["same_result"] and fast["users"] > 250 and fast["memberships"] > 0
    assert fast["requests"] == slow["requests"] > 12  # token, users, groups, one member read per team group
    assert fast["latency_floor_s"] < slow["latency_floor_s"] and fast["peak_rss_mb"] > 10
    _has_idp_columns(fast["latency_ms"], fast, slow)
    assert any("Entra ID read of 300 users, concurrency 1" in line.what for line in lines(json.loads(out.read_text())))
def test_okta_read_rows_agree_across_concurrency(tmp_path: Path) -> None:
    data, text = smoke(tmp_path, "okta")
    row = data["okta"]
    fast, slow = row["fast"], row["concurrency_1"]
    assert (fast["concurrency"], slow["concurrency"]) == (4, 1)
    assert row["same_read"] and fast["users"] > 0 and fast["memberships"] > 0
    assert fast["requests"] == slow["requests"] > row["groups"]  # every group's members, every user page
    assert fast["floor_s"] == pytest.approx(fast["requests"] / 4 * row["latency_ms"] / 1000, abs=0.01)
    assert any(line.what.startswith("Okta read of 300 users") for line in lines(data))
    assert "sim-okta-token" not in text, "no credential in results.json"
    _has_idp_columns(row["latency_ms"], fast, slow)
def test_the_google_row_reads_the_same_account_at_both_concurrencies(tmp_path: Path) -> None:
    data, _ = smoke(tmp_path, "google")
    row = data["google"]
    fast, slow = row["fast"], row["concurrency_1"]
    assert (fast["concurrency"], slow["concurrency"]) == (8, 1)
    assert fast["users"] == slow["users"] == 300 and fast["memberships"] == slow["memberships"] == 1200
    assert row["same_result"] and fast["requests"] == slow["requests"] > 0
    assert fast["latency_floor_s"] == pytest.approx(fast["requests"] / 8 * 0.002, abs=0.01)
    assert fast["peak_rss_mb"] > 10
    assert sum("google-workspace source read" in line.what for line in lines(data)) == 3
    _has_idp_columns(2.0, fast, slow)


@pytest.mark.slow
def test_the_sim_row_times_the_start_and_every_read_route(tmp_path_factory: pytest.TempPathFactory) -> None:
    work = tmp_path_factory.mktemp("bench-sim")
    out = work / "results.json"
    assert main(["--scale", "smoke", "--only", "sim", "--out", str(out), "--work", str(work / "files")]) == 0
    row = json.loads(out.read_text())["sim"]
    assert row["start"]["users"] == 300 and row["start"]["seconds"] > 0 and row["start"]["cpu_s"] >= 0
    routes = {r["route"] for r in row["pages"]}
    assert routes == {r["route"] for r in row["served"]}
    assert {"DC user list (expand=status)", "DC group members", "Cloud groups search"} <= routes
    assert any(r.startswith("Cloud users search") for r in routes)
    for page in row["pages"]:  # every probe answered 200 (the bench raises otherwise), each timed
        assert page["requests"] >= 1 and page["median_ms"] > 0 and page["target_ms"] == 2.0
    table = lines(json.loads(out.read_text()))
    assert sum(line.what.startswith("sim CPU per page (HTTP)") for line in table) == len(routes)
    assert any(line.what.startswith("simulator start, 300 users") for line in table)


def _has_idp_columns(latency_ms: float, *runs: dict[str, Any]) -> None:
    """The columns every IdP row carries (bench/idp_read.py): CPU of both sides, floor, ratio, verdict."""
    for run in runs:
        assert run["reader_cpu_s"] > 0 and run["sim_cpu_s"] >= 0
        assert run["floor_s"] == pytest.approx(run["requests"] / run["concurrency"] * latency_ms / 1000, abs=0.01)
        assert run["wall_over_floor"] > 0 and isinstance(run["targets_met"], bool)
