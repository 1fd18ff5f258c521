"""A deterministic generator of large simulated Entra ID tenants (benchmarks); see world.py `generate`."""

from __future__ import annotations

from reconcile.sim.entra_id import world as entra_world
from reconcile.sim.entra_id.world import EntraWorld


def generate_entra(users: int, groups: int, memberships: int, seed: int = 1) -> EntraWorld:
    """An Entra ID tenant of that size, deterministic in its arguments."""
    return entra_world.generate(users, groups, memberships, seed)
