"""desired/examples/ldap/ plans against the simulator's example world with its directory in a real slapd."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ldap_servers import DATA, SERVICE_PASSWORD, Slapd, require_slapd, start_slapd

from reconcile.apply import make_plan
from reconcile.config import load
from reconcile.plan import Plan
from reconcile.sim.app import build_app
from reconcile.targets.factory import build_target

pytestmark = pytest.mark.ldap

EXAMPLE = Path(__file__).resolve().parents[1] / "desired" / "examples" / "ldap"


@pytest.fixture(scope="module", name="example_directory")
def example_directory_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    require_slapd()
    server = start_slapd(tmp_path_factory.mktemp("slapd-example"), (DATA / "example-world.ldif").read_text(),
                         suffix="dc=example,dc=com")
    yield server
    server.stop()


def plan_example(server: Slapd) -> Plan:
    config = load(EXAMPLE, env={"CONFLUENCE_TOKEN": "example-admin-token", "LDAP_URL": server.url,
                                "LDAP_CA_FILE": server.ca_file, "LDAP_PASSWORD": SERVICE_PASSWORD})

    async def go() -> Plan:
        target = build_target(config.target, transport=httpx.ASGITransport(app=build_app()))
        try:
            return (await make_plan(config, target))[1]
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
