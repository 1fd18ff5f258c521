"""desired/examples/ldap/ plans against the simulator's example world with its directory in a real slapd.

Through the CLI too, as docs/sources/ldap.md documents it (`make ldap-demo`): within its own safety limits, no --force.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconcile.apply import make_plan
from reconcile.config import load
from reconcile.plan import Plan
from reconcile.sim.app import build_app
from reconcile.sim.server import running
from reconcile.targets.factory import build_target
from tests.support.builders import NOW
from tests.support.cli import reconcile
from tests.support.ldap_servers import SERVICE_PASSWORD, Slapd, require_slapd, start_slapd

pytestmark = pytest.mark.ldap

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "desired" / "examples" / "ldap"


@pytest.fixture(scope="module", name="example_directory")
def example_directory_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    require_slapd()
    server = start_slapd(tmp_path_factory.mktemp("slapd-example"), (EXAMPLE / "directory.ldif").read_text(),
                         suffix="dc=example,dc=com")
    yield server
    server.stop()


def plan_example(server: Slapd) -> Plan:
    config = load(EXAMPLE, env={"CONFLUENCE_TOKEN": "example-admin-token", "LDAP_URL": server.url,
                                "LDAP_CA_FILE": server.ca_file, "LDAP_PASSWORD": SERVICE_PASSWORD})

    async def go() -> Plan:
        target = build_target(config.target, transport=httpx.ASGITransport(app=build_app()))
        try:
            return (await make_plan(config, target, now=NOW))[1]
        finally:
            await target.aclose()

    return asyncio.run(go())


def test_the_ldap_example_plans_what_its_comment_says(example_directory: Slapd) -> None:
    plan = plan_example(example_directory)
    actions = sorted((a.kind.value, a.subject.identity, a.group or "") for a in plan.actions)
    assert actions == [
        ("add_member", "carol@example.com", "team-platform"),  # through the nested platform-oncall group
        ("add_member", "grace@example.com", "team-docs"),
        ("add_member", "olivia@example.com", "team-support"),
        ("disable", "rupert", ""),  # gone from the directory
        ("disable", "sybil", ""),
        ("enable", "zoe@example.com", ""),  # disabled on the site, active in the directory
        ("remove_member", "mallory@example.com", "team-platform"),
        ("remove_member", "niaj@example.com", "team-support"),
        ("remove_member", "zoe@example.com", "team-support"),
    ]
    assert sorted((w.kind.value, w.subject) for w in plan.warnings) == [
        ("missing_user", "quentin@example.com"), ("protected", "admin"), ("protected", "svc-backup")]


def test_the_ldap_example_plans_through_the_cli_within_its_own_limits(example_directory: Slapd,
                                                                      tmp_path: Path) -> None:
    with running() as url:  # the example world on a free port: a copy of the example pointing there
        desired = tmp_path / "desired"
        desired.mkdir()
        for path in EXAMPLE.glob("*.yaml"):
            text = path.read_text(encoding="utf-8").replace("http://127.0.0.1:8990", url)
            (desired / path.name).write_text(text, encoding="utf-8")
        env = {"NO_COLOR": "1", "CONFLUENCE_TOKEN": "example-admin-token", "LDAP_URL": example_directory.url,
               "LDAP_CA_FILE": example_directory.ca_file, "LDAP_PASSWORD": SERVICE_PASSWORD}
        result = reconcile("--desired", str(desired), "--state-dir", str(tmp_path / "state"),
                                          "plan", "--detailed-exitcode", env=env)
    assert result.exit_code == 3, result.output  # changes pending; 4 would be a refusal by the limits
    assert "Plan: 1 to enable, 3 to add, 3 to remove, 2 to disable, 0 to delete." in result.stdout


@pytest.mark.slow
def test_make_ldap_demo_starts_its_directory_without_root_and_plans_the_example(tmp_path: Path) -> None:
    require_slapd()
    with running() as url:  # whatever else listens there: the script must pick another port
        taken = url.rsplit(":", 1)[1]
        env = {**os.environ, "RECONCILE_BIN": str(Path(sys.executable).parent), "NO_COLOR": "1",
               "RECONCILE_DEMO_DIR": str(tmp_path / "demo")}
        proc = subprocess.run(["bash", str(ROOT / "scripts" / "ldap-demo.sh"), taken], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(StartTLS; desired/examples/ldap/directory.ldif)" in proc.stdout
    assert "Plan: 1 to enable, 3 to add, 3 to remove, 2 to disable, 0 to delete." in proc.stdout
    assert f"127.0.0.1:{taken}" not in proc.stdout.split("instead", 1)[1]
