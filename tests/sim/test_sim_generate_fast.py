"""The fast Cloud generator draws what `random`, `uuid` and `strftime` gave before it (issue 15 item 1):
same seed, same organization, byte for byte."""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from reconcile.sim.atlassian_cloud.world import CloudWorld, Stamps, below, uuid4_text
from reconcile.sim.confluence_dc.generate import generate_dc

# sha256 of both generated worlds (300 users, 12 groups, 1,200 memberships, seed 1) as the generators made them
# before they were sped up: a change here changes every generated world, and with it the bench's baselines.
PINNED = "2adcff8499ec4cc8bce6a24ed4d0e4ca09460ad1d3810d343445bb234ec2fde6"


def _digest(users: int, groups: int, memberships: int) -> str:
    cloud = CloudWorld.generate(users, groups, memberships, 1)
    dc = generate_dc(users, groups, memberships, 1)
    blob = json.dumps([
        cloud.to_json(),
        {a: [u.product_access, u.added_to_org, u.management_source, u.platform_roles, u.membership]
         for a, u in cloud.users.items()},
        [(g.id, g.name, g.external_synced) for g in cloud.groups.values()],
        dc.to_json(),
        {k: [s.to_json(dc)] for k, s in dc.spaces.items()},
    ], default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def test_the_generated_worlds_are_the_ones_generated_before_the_speed_up() -> None:
    assert _digest(300, 12, 1200) == PINNED


@given(st.integers(0, 2**32), st.integers(1, 10**7))
def test_below_draws_what_randrange_and_choice_draw(seed: int, n: int) -> None:
    ours, theirs, chooser = random.Random(seed), random.Random(seed), random.Random(seed)
    items = range(n)
    for _ in range(5):
        expected = theirs.randrange(n)
        assert below(ours.getrandbits, n) == expected == chooser.choice(items)


@given(st.integers(0, 2**128 - 1))
def testuuid4_text_text_is_what_uuid_writes(value: int) -> None:
    assert uuid4_text(value) == str(uuid.UUID(int=value, version=4))


@given(st.integers(0, 60 * 24 * 1200), st.sampled_from([datetime(2026, 1, 1, tzinfo=UTC),
                                                         datetime(2025, 6, 30, 13, 7, 59, tzinfo=UTC)]))
def test_stamps_are_what_strftime_writes(minutes: int, epoch: datetime) -> None:
    expected = (epoch - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert Stamps(epoch).minutes_before(minutes) == expected
