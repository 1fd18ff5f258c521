"""The SCIM reader's work as answers arrive: the lane an answer frees goes first to the request waiting for it,
and the user list becomes the desired state page by page, in list order, with its errors raised as at the end."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from reconcile.config.idp_scim import ScimGroupsSettings, ScimKey, ScimSourceSettings
from reconcile.errors import SourceError
from reconcile.settings import HttpSettings, Secret
from reconcile.sim.app import build_app
from reconcile.sim.scim.world import SCIM_TOKEN, ScimUser, ScimWorld
from reconcile.sources.scim import ScimSource
from tests.sources.test_source_idp_arrival import Seen


def _source(world: ScimWorld, *, concurrency: int = 2, key: ScimKey = ScimKey.EMAIL) -> tuple[Seen, ScimSource]:
    world.max_results = 10
    app = build_app()
    app.state.ctx.extra["scim"] = world
    seen = Seen(app)
    config = ScimSourceSettings(name="idp", url="http://testserver/scim/v2", token=Secret(SCIM_TOKEN, "${T}"),
                                page_size=10, key=key, groups=ScimGroupsSettings(map=(("team-*", "t-*"),)),
                                http=HttpSettings(concurrency=concurrency, max_retries=0))
    return seen, ScimSource(config, transport=httpx.ASGITransport(app=seen))


def test_scim_the_request_waiting_for_a_lane_is_sent_before_the_answer_that_freed_it_is_handled() -> None:
    # one lane: an answer frees it for the requester already waiting with its request; handling the answer first
    # (decoding the page, making its users ready) would leave the lane idle for that long, every page
    world = ScimWorld.generate(60, 4, 100, seed=11)
    seen, source = _source(world, concurrency=1)
    ready, start_of = source._ready, {u.id: f"startIndex={i + 1}&" for i, u in enumerate(world.user_list())}

    def handled(resources: list[Any]) -> None:
        seen.events.append(("handled", start_of[resources[0].id]))
        ready(resources)

    source._ready = handled  # type: ignore[method-assign]
    state = asyncio.run(source.read())
    assert len(state.users) == 60
    overtaken = []  # user pages after whose answer another request was sent before the page was handled
    for at, (kind, what) in enumerate(seen.events):
        if kind == "end" and what.startswith("/scim/v2/Users?"):
            page = what.split("startIndex=")[1].split("&")[0]
            done = seen.events.index(("handled", f"startIndex={page}&"))
            if any(k == "start" for k, _ in seen.events[at:done]):
                overtaken.append(int(page))
    # in process an answer comes at once: the group list's first page waits for the lane the users' first frees,
    # then a requester waits at every other page (11, 31); the others end while it still handles its own
    assert overtaken == [1, 11, 31]


def test_scim_users_become_the_desired_state_page_by_page_before_the_last_answer() -> None:
    world = ScimWorld.generate(200, 30, 600, seed=3, nested=4)
    seen, source = _source(world)
    admit = source._admit

    def admitted(resources: list[Any]) -> None:
        admit(resources)
        dropped = sum(record is None for record in source._admitted.listed.values())
        seen.events.append(("admitted", str(source._admitted.done)))
        seen.events.append(("dropped", f"{dropped} {len(source._prepared)}"))

    source._admit = admitted  # type: ignore[method-assign]
    state = asyncio.run(source.read())
    last = max(i for i, (k, w) in enumerate(seen.events) if k == "end" and w.startswith("/scim/v2/Users?"))
    before = [int(n) for k, n in seen.events[:last] if k == "admitted"]
    # all but the pages still in flight are in the desired state when the last answer comes: little is left after it
    assert before and max(before) >= 170
    # and the records of the users done with are freed then too (not all after the last answer)
    dropped, prepared = (int(n) for n in [w for k, w in seen.events[:last] if k == "dropped"][-1].split())
    assert dropped >= 150 and prepared <= 50
    assert len(state.users) == 200 and sum(len(u.groups) for u in state.users.values()) > 600


def _renamed(world: ScimWorld, at: int, like: int, key: ScimKey) -> None:
    """The `at`-th user of the list gets the `key` (emails or userName) of the `like`-th."""
    users = world.user_list()
    was, model = users[at], users[like]
    name, emails = (was.user_name, model.emails) if key is ScimKey.EMAIL else (model.user_name, was.emails)
    world.users[was.id] = ScimUser(was.id, name, was.active, was.external_id, was.display_name, emails)
    world.changed()


@pytest.mark.parametrize("key", [ScimKey.EMAIL, ScimKey.USERNAME])
def test_scim_a_key_twice_is_the_first_in_list_order_though_users_are_taken_as_pages_arrive(key: ScimKey) -> None:
    world = ScimWorld.generate(200, 30, 600, seed=3)
    users = world.user_list()
    _renamed(world, 157, 12, key)  # a key twice, both pages early in the list
    _renamed(world, 35, 30, key)  # ... and one before it in list order: the error is this one
    _, source = _source(world, key=key)
    with pytest.raises(SourceError) as caught:
        asyncio.run(source.read())
    first, second = users[30], world.user_list()[35]
    value = first.emails[0][0] if key is ScimKey.EMAIL else first.user_name
    assert caught.value.message == (f"source 'idp' (scim): users {first.user_name!r} and {second.user_name!r} "
                                    f"have the same {key} {value!r}")
    # a user with no key before it is skipped, not an error, and the read is otherwise unchanged
    fine = ScimWorld.generate(200, 30, 600, seed=3)
    first = fine.user_list()[3]
    fine.users[first.id] = ScimUser(first.id, first.user_name, first.active, first.external_id, first.display_name)
    fine.changed()
    _, source = _source(fine)
    state = asyncio.run(source.read())
    assert len(state.users) == 199 and first.user_name not in {u.identity.username for u in state.users.values()}


