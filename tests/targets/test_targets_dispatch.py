"""Every action kind through every target, and no default branch (issue 11, item 3).

Each target either performs a kind as exactly that change (against the simulator or the memory
file) or declares it unsupported, and then a plan holding it is refused before it is shown or
applied. An unknown target or source type is a clear error, never another type's behaviour.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import httpx
import pytest

from reconcile.apply import check_supported, make_plan, prepare
from reconcile.config import build
from reconcile.config.loader import load
from reconcile.config.nodes import Item
from reconcile.errors import ConfigError, ReconcileError
from reconcile.model import Globs, Location, Scope
from reconcile.plan import Action, ActionKind, Plan, Subject
from reconcile.sources.registry import SOURCES
from reconcile.targets.base import Result, Target
from reconcile.targets.confluence_dc import ConfluenceDcTarget
from reconcile.targets.memory import MemoryTarget
from tests.support.apply import make_config, read_world, write_world
from tests.support.builders import NOW
from tests.support.cloud import ALICE, BOB, HAL, rig
from tests.support.dc import FAST, DcSim, run

ALL = Scope(users=Globs(("*",)), groups=Globs(("*",)))


@dataclass
class Walk:
    """A target, one action per kind, and how to read the change each one made."""

    target: Target
    actions: dict[ActionKind, Action]
    changes: Callable[[], list[str]]  # the changes the target's world recorded, in order
    expected: dict[ActionKind, str]  # the one change each kind must make


def memory_walk(tmp: Path) -> Walk:
    state = write_world(tmp / "world.json")
    target = MemoryTarget(make_config(state).target)  # type: ignore[arg-type]

    def act(kind: ActionKind, ref: str, group: str | None = None) -> Action:
        return Action(kind, Subject(ref, ref), group=group)

    return Walk(
        target,
        {ActionKind.ENABLE: act(ActionKind.ENABLE, "u-erin"),
         ActionKind.ADD_MEMBER: act(ActionKind.ADD_MEMBER, "u-alice", "team-eng"),
         ActionKind.REMOVE_MEMBER: act(ActionKind.REMOVE_MEMBER, "u-alice", "team-docs"),
         ActionKind.REMOVE_LICENCE: act(ActionKind.REMOVE_LICENCE, "u-dave", "team-docs"),
         ActionKind.DISABLE: act(ActionKind.DISABLE, "u-dave"),
         ActionKind.DELETE: act(ActionKind.DELETE, "u-bob")},
        lambda: [f"{e['kind']} {e['ref']} {e['group']}" for e in read_world(state).get("log", [])],
        {ActionKind.ENABLE: "enable u-erin None", ActionKind.ADD_MEMBER: "add_member u-alice team-eng",
         ActionKind.REMOVE_MEMBER: "remove_member u-alice team-docs", ActionKind.DISABLE: "disable u-dave None",
         ActionKind.REMOVE_LICENCE: "remove_licence u-dave team-docs",
         ActionKind.DELETE: "delete u-bob None"},
    )


def dc_walk(tmp: Path) -> Walk:
    sim = DcSim.from_yaml()

    def act(kind: ActionKind, username: str, group: str | None = None) -> Action:
        return Action(kind, Subject(username, sim.key(username)), group=group)

    # Contract checks of these exchanges are test_dc_perform's; this walks the dispatch only.
    target = ConfluenceDcTarget(sim.config(), transport=httpx.ASGITransport(app=sim.app), backoff=FAST,
                                poll_interval=0.02)
    return Walk(
        target,
        {ActionKind.ENABLE: act(ActionKind.ENABLE, "bob"),
         ActionKind.ADD_MEMBER: act(ActionKind.ADD_MEMBER, "alice", "team-ops"),
         ActionKind.REMOVE_MEMBER: act(ActionKind.REMOVE_MEMBER, "alice", "team-docs"),
         ActionKind.REMOVE_LICENCE: act(ActionKind.REMOVE_LICENCE, "alice", "confluence-users"),
         ActionKind.DISABLE: act(ActionKind.DISABLE, "dave"),
         ActionKind.DELETE: act(ActionKind.DELETE, "alice")},
        lambda: [w for w in sim.writes() if "/longtask/" not in w],
        {ActionKind.ENABLE: "PUT /rest/api/admin/user/bob/enable -> 204",
         ActionKind.ADD_MEMBER: "PUT /rest/api/user/alice/group/team-ops -> 204",
         ActionKind.REMOVE_MEMBER: "DELETE /rest/api/user/alice/group/team-docs -> 204",
         ActionKind.REMOVE_LICENCE: "DELETE /rest/api/user/alice/group/confluence-users -> 204",
         ActionKind.DISABLE: "PUT /rest/api/admin/user/dave/disable -> 204",
         ActionKind.DELETE: "DELETE /rest/api/admin/user/alice -> 202"},
    )


def cloud_walk(tmp: Path) -> Walk:
    r = rig(contract=False)  # contract checks are test_cloud_target's

    def act(kind: ActionKind, ref: str, group: str | None = None) -> Action:
        return Action(kind, Subject(ref, ref), group=group)

    return Walk(
        r.target,
        {ActionKind.ENABLE: act(ActionKind.ENABLE, BOB),
         ActionKind.ADD_MEMBER: act(ActionKind.ADD_MEMBER, HAL, "team-platform"),
         ActionKind.REMOVE_MEMBER: act(ActionKind.REMOVE_MEMBER, ALICE, "team-docs"),
         ActionKind.REMOVE_LICENCE: act(ActionKind.REMOVE_LICENCE, BOB, "confluence-users"),
         ActionKind.DISABLE: act(ActionKind.DISABLE, HAL),
         ActionKind.DELETE: act(ActionKind.DELETE, ALICE)},
        lambda: [f"{m['action']} {m.get('account_id')}" for m in r.world.mutations],
        {ActionKind.ENABLE: f"restore {BOB}", ActionKind.ADD_MEMBER: f"add_member {HAL}",
         ActionKind.REMOVE_MEMBER: f"remove_member {ALICE}", ActionKind.DISABLE: f"suspend {HAL}",
         ActionKind.REMOVE_LICENCE: f"remove_member {BOB}",
         ActionKind.DELETE: f"remove_from_directory {ALICE}"},
    )


WALKS = {"memory": memory_walk, "confluence-dc": dc_walk, "atlassian-cloud": cloud_walk}


@pytest.mark.parametrize("kind", list(ActionKind), ids=str)
@pytest.mark.parametrize("name", list(WALKS))
def test_every_kind_through_every_target(name: str, kind: ActionKind, tmp_path: Path) -> None:
    walk = WALKS[name](tmp_path)
    assert set(walk.actions) == set(ActionKind) == set(walk.expected), "the walk covers every kind"
    action = walk.actions[kind]

    async def perform() -> list[str]:
        await walk.target.fetch(ALL)
        before = walk.changes()
        outcome = await walk.target.perform(action)
        await walk.target.aclose()
        assert outcome.result is Result.DONE, outcome.message
        return walk.changes()[len(before):]

    if kind in walk.target.supports:
        assert run(perform()) == [walk.expected[kind]]  # exactly that change, nothing else
    else:
        with pytest.raises(ReconcileError, match=str(kind)):
            check_supported(_plan_of(action, walk.target), walk.target)


@pytest.mark.parametrize("name", list(WALKS))
def test_a_kind_no_dispatch_knows_changes_nothing(name: str, tmp_path: Path) -> None:
    """What a kind added later meets before its branches are written: no `else` that deletes
    (Cloud), disables (Confluence DC) or removes a membership (memory)."""
    walk = WALKS[name](tmp_path)
    known = walk.actions[ActionKind.REMOVE_MEMBER]
    unknown = Action(cast(ActionKind, "rename"), known.subject, group=known.group)

    async def perform() -> tuple[Result | None, list[str]]:
        await walk.target.fetch(ALL)
        before = walk.changes()
        try:
            outcome: Result | None = (await walk.target.perform(unknown)).result
        except AssertionError:  # typing.assert_never: the executor reports it as a failed action
            outcome = None
        await walk.target.aclose()
        return outcome, walk.changes()[len(before):]

    outcome, changes = run(perform())
    assert outcome in (None, Result.FAILED)
    assert changes == []


def _plan_of(action: Action, target: Target) -> Plan:
    return Plan(target=target.address(), desired_digest="", actual_fingerprint="", actions=(action,))


class NoDeletes(MemoryTarget):
    """A real memory target that declares it cannot delete, as a future target might."""

    supports = frozenset(ActionKind) - {ActionKind.DELETE}


def test_a_plan_with_a_kind_the_target_does_not_support_is_refused_before_anything(tmp_path: Path) -> None:
    from reconcile.model import AbsentPolicy, Policy

    state = write_world(tmp_path / "world.json")
    config = make_config(state, policy=Policy(absent=AbsentPolicy.DELETE))
    full = MemoryTarget(config.target)  # type: ignore[arg-type]
    plan = asyncio.run(make_plan(config, full, now=NOW))[1]
    assert ActionKind.DELETE in {a.kind for a in plan.actions}
    narrow = NoDeletes(config.target)  # type: ignore[arg-type]
    before = state.read_text()

    with pytest.raises(ReconcileError) as planning:
        asyncio.run(make_plan(config, narrow, now=NOW))
    with pytest.raises(ReconcileError) as applying:
        asyncio.run(prepare(plan, config, narrow, state_dir=tmp_path))

    for refused in (planning.value, applying.value):
        message = str(refused)
        assert "cannot perform delete (1 action(s))" in message
        assert f"target memory {state}" in message and "nothing was changed" in message
    assert state.read_text() == before


def _fields(**values: object) -> dict[str, Item]:
    loc = Location("desired/site.yaml", 3, 9)
    return {k: Item(v, loc, loc) for k, v in values.items()}


def test_the_builder_never_maps_an_unknown_type_to_another() -> None:
    with pytest.raises(ConfigError) as target:
        build.target(_fields(type="confluence-cloud", state="world.json"))
    assert str(target.value).splitlines()[1].strip() == (
        "desired/site.yaml:3:9: target.type: unknown value 'confluence-cloud'; did you mean 'confluence-dc'? "
        "(allowed: confluence-dc, atlassian-cloud, memory)")

    problems: build.Problems = []
    sources = build.sources(Item({"hr": Item(_fields(type="xls", path="people.xls"), Location("f", 7, 5),
                                             Location("f", 7, 3))}, Location("f", 6, 1), Location("f", 6, 1)),
                            problems)
    assert sources == {}
    assert [(str(loc), message) for loc, message in problems] == [
        ("desired/site.yaml:3:9", f"sources.hr.type: unknown value 'xls'; allowed: {', '.join(SOURCES.names())}")]


def test_an_unknown_type_in_the_files_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "site.yaml").write_text(
        "version: 1\ntarget:\n  type: memroy\n  state: world.json\nscope:\n  users: ['*']\n"
        "sources:\n  hr:\n    type: xls\n    path: people.xls\n", encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load(tmp_path, env={})
    problems = refused.value.problems
    assert any(p.endswith("site.yaml:3:9: target.type: unknown value 'memroy'; did you mean 'memory'? "
                          "(allowed: confluence-dc, atlassian-cloud, memory)") for p in problems), problems
    assert any("site.yaml:9:11: sources.hr.type: unknown value 'xls'" in p for p in problems), problems
