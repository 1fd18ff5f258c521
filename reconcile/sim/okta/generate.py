"""A deterministic generator of large simulated Okta orgs (benchmarks); see OktaWorld.generate."""

from __future__ import annotations

from reconcile.sim.okta.world import OktaWorld

OKTA_TOKEN = "sim-okta-token"  # the generated Okta org's API token (SSWS)


def generate_okta(users: int, groups: int, memberships: int, seed: int = 1) -> OktaWorld:
    """A deterministic Okta org of that size, read with the API token `sim-okta-token`."""
    return OktaWorld.generate(users, groups, memberships, seed, api_token=OKTA_TOKEN)
