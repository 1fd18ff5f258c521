"""The generator of large worlds: exact counts, determinism, realistic mix, both worlds served."""

from __future__ import annotations

import hashlib
import json

import pytest

from reconcile.sim.confluence_dc.generate import ADMIN_TOKEN, generate_dc
from reconcile.sim.server import SimOptions, configured_app


def digest(users: int, groups: int, memberships: int, seed: int) -> str:
    world = generate_dc(users, groups, memberships, seed)
    return hashlib.sha256(json.dumps(world.to_json(), sort_keys=True).encode()).hexdigest()


def test_counts_are_exact() -> None:
    world = generate_dc(users=2000, groups=50, memberships=9000, seed=4)
    live = [u for u in world.users.values() if not u.unsynced]
    assert len(live) == 2000
    assert len(world.groups) == 50
    assert sum(len(m) for m in world.members.values()) == 9000
    assert sum(len(g) for g in world.groups_of.values()) == 9000  # both indexes agree
    assert len(list(world.unsynced())) == 10


def test_same_seed_same_world_other_seed_other_world() -> None:
    assert digest(3000, 40, 12000, seed=1) == digest(3000, 40, 12000, seed=1)
    assert digest(3000, 40, 12000, seed=1) != digest(3000, 40, 12000, seed=2)


def test_the_world_has_what_the_tool_must_cope_with() -> None:
    world = generate_dc(users=5000, groups=100, memberships=20000, seed=1)
    admin = world.users[world.tokens[ADMIN_TOKEN]]
    assert admin.username == "admin" and world.is_admin(admin.key)
    live = [u for u in world.users.values() if not u.unsynced]
    disabled = sum(not u.active for u in live) / len(live)
    read_only = sum(world.directories[u.directory].readonly for u in live) / len(live)
    assert 0.02 < disabled < 0.04
    assert 0.35 < read_only < 0.45
    assert any(world.directory_of_group(g).readonly for g in world.groups)
    shared = [name for name, keys in world.unsynced_by_username.items() if len(keys) == 2]
    assert len(shared) == 12  # 25 entries, in pairs sharing a username


def test_too_small_a_world_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        generate_dc(users=0, groups=2, memberships=1)


def test_a_generated_simulator_serves_both_worlds_of_the_size_asked() -> None:
    # How fast a 100,000-user world starts is `make bench`'s (its `sim` row, <= 3 s): no timing here.
    app = configured_app(SimOptions(users=10_000, groups=200, memberships=40_000, seed=1))
    ctx = app.state.ctx
    assert len([u for u in ctx.dc.users.values() if not u.unsynced]) == 10_000
    assert sum(len(m) for m in ctx.dc.members.values()) == 40_000
    assert ctx.cloud is not None and (len(ctx.cloud.users), len(ctx.cloud.groups)) == (10_000, 200)  # and Cloud
