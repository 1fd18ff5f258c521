"""Builders for the atlassian-cloud tests: a small realistic organization and a target wired to the
in-process simulator through the contract-checking transport."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from reconcile.http import Backoff, Clock
from reconcile.settings import AtlassianCloudSettings, CloudSiteSettings, HttpSettings, Secret
from reconcile.sim.app import build_app
from reconcile.sim.atlassian_cloud.routes import CloudApi
from reconcile.sim.atlassian_cloud.world import CloudWorld
from reconcile.sim.confluence_dc.world import DcWorld
from reconcile.sim.context import SimContext
from reconcile.sim.control import SimSettings
from reconcile.targets.atlassian_cloud import AtlassianCloudTarget
from tests.support.contract import ContractTransport

ORG_KEY = "org-key-7f3a9c"  # what the tests authenticate with; must never reach a cassette
SITE_TOKEN = "site-token-41b2"
ORG = "0a7f6c1e-55b1-4c2e-9d61-5b0c1f2e3d4a"

ALICE = "712020:a11ce000-0000-4000-8000-000000000001"
BOB = "712020:b0b00000-0000-4000-8000-000000000002"
CAROL = "712020:ca201000-0000-4000-8000-000000000003"
DAVE = "712020:da7e0000-0000-4000-8000-000000000004"
ERIN = "5b10ac8d82e05b22cc7d4ef5"
ADA = "712020:ada00000-0000-4000-8000-000000000006"
FRANK = "712020:f4a2c000-0000-4000-8000-000000000007"
GINA = "712020:914a0000-0000-4000-8000-000000000008"
HAL = "712020:4a100000-0000-4000-8000-000000000009"


def scenario() -> dict[str, Any]:
    """The `cloud:` section of a scenario: one directory, every kind of user the target meets."""
    return {
        "org_id": ORG,
        "api_keys": [{"key": ORG_KEY, "owner": ADA}],
        "licences": {"jira-software": 3},
        "site": {"url": "http://acme.atlassian.test",
                 "credentials": [{"email": "ada@example.com", "token": SITE_TOKEN}]},
        "users": [
            {"account_id": ADA, "email": "ada@example.com", "name": "Ada Admin",
             "platform_roles": ["atlassian/org-admin"]},
            {"account_id": ALICE, "email": "Alice@Example.com", "name": "Alice Archer",
             "product_access": [
                 {"key": "confluence", "last_active": "2026-03-02T08:15:00Z"},
                 {"key": "jira-software", "last_active": "2026-05-17T12:00:00Z"}]},
            {"account_id": BOB, "email": "bob@example.com", "name": "Bob Baker", "status": "suspended"},
            {"account_id": CAROL, "email": "carol@example.com", "name": "Carol Chen", "status": "deactivated"},
            {"account_id": DAVE, "email": "dave@example.com", "name": "Dave Doe", "management_source": "synced"},
            {"account_id": ERIN, "email": "erin@contractor.test", "name": "Erin Evans",
             "claim_status": "unmanaged"},
            {"account_id": FRANK, "email": "frank@example.com", "status": "for_deletion"},
            {"account_id": GINA, "email": "gina@example.com", "status": "not_invited"},
            {"account_id": HAL, "email": "hal@example.com", "name": "Hal Hill"},
        ],
        "groups": [
            {"id": "9f1c0000-0000-4000-8000-0000000000a1", "name": "confluence-users",
             "products": ["confluence"], "members": [ADA, ALICE, BOB]},
            {"id": "9f1c0000-0000-4000-8000-0000000000a2", "name": "Team-Docs", "members": [ALICE]},
            {"id": "9f1c0000-0000-4000-8000-0000000000a3", "name": "idp-engineering",
             "external_synced": True, "members": [DAVE]},
            {"id": "9f1c0000-0000-4000-8000-0000000000a4", "name": "jira-software-users",
             "products": ["jira-software"], "members": [ADA, ALICE, HAL]},
            {"id": "9f1c0000-0000-4000-8000-0000000000a5", "name": "team-platform", "members": []},
        ],
    }


@dataclass
class Rig:
    """A target talking to an in-process simulator; `world` and `api` are the simulator's state."""

    world: CloudWorld
    ctx: SimContext
    api: CloudApi
    contract: ContractTransport
    target: AtlassianCloudTarget


def rig(world: CloudWorld | None = None, *, settings: SimSettings | None = None, contract: bool = True,
        concurrency: int = 4, clock: Clock | None = None, backoff: Backoff | None = None, **config: Any) -> Rig:
    """A Cloud target on the simulator; `clock`/`backoff` default to a fast real-time schedule."""
    world = world or CloudWorld.from_scenario(scenario())
    app = build_app(dc=DcWorld(), cloud=world, settings=settings or SimSettings())
    ctx: SimContext = app.state.ctx
    transport = ContractTransport(httpx.ASGITransport(app=app))
    cfg = AtlassianCloudSettings(
        org_id=world.org_id,
        api_key=Secret(next(iter(world.api_keys)) if world.api_keys else ORG_KEY, "${ATLASSIAN_ADMIN_KEY}"),
        url="http://api.atlassian.test",
        site=CloudSiteSettings(url="http://acme.atlassian.test", email="ada@example.com",
                             token=Secret(SITE_TOKEN, "${ATLASSIAN_SITE_TOKEN}")),
        http=HttpSettings(concurrency=concurrency, timeout=10),
        **config,
    )
    target = AtlassianCloudTarget(cfg, transport=transport if contract else httpx.ASGITransport(app=app),
                                  backoff=backoff or Backoff(base=0.01, cap=0.1, max_wait=2.0), clock=clock)
    return Rig(world=world, ctx=ctx, api=ctx.extra["cloud_api"], contract=transport, target=target)
