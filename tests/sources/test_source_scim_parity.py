"""The SCIM source plans the same against the SCIM simulator (reconcile sim, /scim/v2) as against the real
scim2-server holding the same data: the example through the CLI, and the nested groups and cycles of the seed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconcile.config.idp_scim import ScimGroupsSettings, ScimKey, ScimSourceSettings
from reconcile.model import DesiredState
from reconcile.plan import Plan
from reconcile.settings import HttpSettings, Secret
from reconcile.sim.app import build_app
from reconcile.sim.scim.world import ScimWorld
from reconcile.sim.server import running
from reconcile.sources.scim import ScimSource
from tests.sources.test_source_scim import EXAMPLE, TOKEN, example, idp_fixture, rows
from tests.support.scim_server import MAX_RESULTS, SEED_GROUPS, SEED_USERS, ScimServer

__all__ = ["idp_fixture"]  # the scim2-server seeded with the example's directory (module scope)


@pytest.fixture(name="both_url")
def both_url_fixture() -> Iterator[str]:
    """One simulator: the example's Confluence site and, under /scim/v2, the example's SCIM directory."""
    app = build_app()
    directory = json.loads((EXAMPLE / "directory.json").read_text(encoding="utf-8"))
    app.state.ctx.extra["scim"] = ScimWorld.from_directory(directory, token=TOKEN, max_results=MAX_RESULTS)
    with running(app) as url:
        yield url


def _plan(run: Any, out: Path, **env: str) -> Plan:
    code, output = run("plan", "--out", str(out), "--detailed-exitcode", **env)
    assert code == 3, output
    return Plan.loads(out.read_text(encoding="utf-8"))


def test_the_example_plans_the_same_against_the_simulator_and_scim2_server(idp: ScimServer, both_url: str,
                                                                             tmp_path: Path) -> None:
    for name in ("real", "sim"):
        (tmp_path / name).mkdir()
    real = example(tmp_path / "real", both_url, idp)
    simulated = example(tmp_path / "sim", both_url, idp)
    against_real = _plan(real, tmp_path / "real.json")
    against_sim = _plan(simulated, tmp_path / "sim.json", SCIM_URL=f"{both_url}/scim/v2")
    assert rows(against_sim) == rows(against_real) and len(rows(against_real)) == 10
    assert sorted((w.kind.value, w.subject) for w in against_sim.warnings) == \
        sorted((w.kind.value, w.subject) for w in against_real.warnings)


def _seed_directory() -> dict[str, Any]:
    """tests/support/scim_server.py's seed (what the scim_server fixture creates) as a simulator directory."""
    users = [{"userName": name, "active": active, "externalId": external, "displayName": name.capitalize(),
              "emails": [{"value": e, "type": "work", "primary": i == 0} for i, e in enumerate(emails)]}
             for name, active, external, emails in SEED_USERS]
    groups = [{"displayName": name, "externalId": f"ext-{name}", "users": list(members), "groups": list(inner)}
              for name, (members, inner) in SEED_GROUPS.items()]
    return {"users": users, "groups": groups}


def _read(url: str, token: str, key: ScimKey, nested: bool) -> DesiredState:
    config = ScimSourceSettings(name="idp", url=url, token=Secret(token, "${SCIM_TOKEN}"), key=key,
                              groups=ScimGroupsSettings(nested=nested), http=HttpSettings(max_retries=1))
    return asyncio.run(ScimSource(config).read())


def _facts(state: DesiredState) -> dict[str, tuple[Any, ...]]:
    """Everything but `origin` (it holds the server's URL and ids)."""
    return {k: (u.status, u.groups, u.identity, u.display_name, u.fact) for k, u in state.users.items()}


@pytest.mark.parametrize(("key", "nested"), [(ScimKey.EMAIL, True), (ScimKey.USERNAME, False),
                                             (ScimKey.EXTERNAL_ID, True)])
def test_nested_groups_and_cycles_read_the_same_from_both(scim_server: ScimServer, key: ScimKey, nested: bool) -> None:
    app = build_app()
    app.state.ctx.extra["scim"] = ScimWorld.from_directory(_seed_directory(), token="t", max_results=MAX_RESULTS)
    with running(app) as url:
        simulated = _read(f"{url}/scim/v2", "t", key, nested)
    real = _read(scim_server.base, scim_server.token, key, nested)
    assert _facts(simulated) == _facts(real) and simulated.groups == real.groups
    assert len(simulated.users) == len(SEED_USERS)
    # the source builds its state without DesiredState.build's copy: it must be what build would make
    assert DesiredState.build(real.users.values(), groups=real.groups) == real
