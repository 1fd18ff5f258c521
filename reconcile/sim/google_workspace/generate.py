"""A deterministic generator of large simulated Google Workspace accounts (benchmarks)."""

from __future__ import annotations

from reconcile.sim.google_workspace.world import GoogleWorld


def generate_google_workspace(users: int, groups: int, memberships: int, seed: int = 1) -> GoogleWorld:
    """A deterministic Google Workspace account of that size; see GoogleWorld.generate."""
    return GoogleWorld.generate(users, groups, memberships, seed)
