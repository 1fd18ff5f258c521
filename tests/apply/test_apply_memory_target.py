"""The memory target: what it reads, how it writes, idempotent outcomes, read-only groups."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from reconcile.errors import TargetError
from reconcile.model import Globs, Scope, Status
from reconcile.plan import Action, ActionKind, Subject
from reconcile.settings import MemorySettings
from reconcile.targets.base import Result
from reconcile.targets.factory import build_target
from reconcile.targets.memory import MemoryTarget
from tests.support.apply import member_of, read_world, status_of, write_world

SCOPE = Scope(users=Globs(("*",)), groups=Globs(("team-*",)))


def target(tmp_path: Path, **kw: object) -> MemoryTarget:
    state = write_world(tmp_path / "world.json")
    built = build_target(MemorySettings(state=str(state), readonly_groups=Globs(("team-ldap",)), **kw))  # type: ignore[arg-type]
    assert isinstance(built, MemoryTarget)
    return built


def act(kind: ActionKind, ref: str, group: str | None = None) -> Action:
    return Action(kind, Subject(ref.removeprefix("u-"), ref), group=group)


def test_fetch_reads_users_groups_admins_readonly_and_me(tmp_path: Path) -> None:
    actual = asyncio.run(target(tmp_path).fetch(SCOPE))

    assert actual.me == "u-admin"
    assert actual.users["u-admin"].admin
    assert not actual.users["u-alice"].admin
    assert actual.users["u-erin"].status is Status.DISABLED
    assert actual.members["team-docs"] == {"u-alice", "u-dave", "u-out"}
    assert actual.groups["team-ldap"].readonly
    assert not actual.groups["team-docs"].readonly


@pytest.mark.parametrize(
    ("action", "check"),
    [
        (act(ActionKind.ADD_MEMBER, "u-carol", "team-eng"), lambda w: "u-carol" in member_of(w, "team-eng")),
        (act(ActionKind.REMOVE_MEMBER, "u-dave", "team-docs"),
         lambda w: "u-dave" not in member_of(w, "team-docs")),
        (act(ActionKind.ENABLE, "u-erin"), lambda w: status_of(w, "u-erin") == "active"),
        (act(ActionKind.DISABLE, "u-bob"), lambda w: status_of(w, "u-bob") == "disabled"),
        (act(ActionKind.DELETE, "u-dave"),
         lambda w: all(u["ref"] != "u-dave" for u in w["users"]) and "u-dave" not in member_of(w, "team-docs")),
    ],
    ids=lambda v: v.kind if isinstance(v, Action) else "",
)
def test_each_kind_is_done_once_then_already(tmp_path: Path, action: Action, check: object) -> None:
    t = target(tmp_path)
    first = asyncio.run(t.perform(action))
    second = asyncio.run(t.perform(action))

    world = read_world(t.path)
    assert first.result is Result.DONE
    assert second.result is Result.ALREADY
    assert callable(check) and check(world)
    assert world["log"] == [{"kind": str(action.kind), "ref": action.subject.ref, "group": action.group}]


def test_readonly_group_write_fails_and_says_what_to_do(tmp_path: Path) -> None:
    t = target(tmp_path)
    outcome = asyncio.run(t.perform(act(ActionKind.ADD_MEMBER, "u-alice", "team-ldap")))

    assert outcome.result is Result.FAILED
    assert "read-only directory" in outcome.message
    assert "readonly_groups" in outcome.message
    assert "log" not in read_world(t.path)


def test_missing_user_or_group_fails(tmp_path: Path) -> None:
    t = target(tmp_path)
    assert asyncio.run(t.perform(act(ActionKind.DISABLE, "u-ghost"))).result is Result.FAILED
    assert asyncio.run(t.perform(act(ActionKind.ADD_MEMBER, "u-alice", "team-ghost"))).result is Result.FAILED


def test_writes_are_atomic_replacements(tmp_path: Path) -> None:
    t = target(tmp_path)
    before = t.path.stat().st_ino
    asyncio.run(t.perform(act(ActionKind.DISABLE, "u-bob")))

    assert t.path.stat().st_ino != before  # replaced by rename, never rewritten in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["world.json"]  # no temporary left behind


def test_concurrent_performs_in_one_loop_lose_no_update(tmp_path: Path) -> None:
    t = target(tmp_path, delay=0.01)
    refs = ["u-alice", "u-carol", "u-dave", "u-erin", "u-admin"]

    async def all_at_once() -> None:
        await asyncio.gather(*(t.perform(act(ActionKind.ADD_MEMBER, r, "team-eng")) for r in refs))

    asyncio.run(all_at_once())
    assert member_of(read_world(t.path), "team-eng") == sorted(["u-bob", *refs])


def test_missing_state_file_is_a_target_error(tmp_path: Path) -> None:
    t = MemoryTarget(MemorySettings(state=str(tmp_path / "nope.json")))
    with pytest.raises(TargetError, match=r"nope\.json does not exist"):
        asyncio.run(t.fetch(SCOPE))


def test_deletions_run_one_at_a_time(tmp_path: Path) -> None:
    t = target(tmp_path)
    assert t.concurrency(ActionKind.DELETE) == 1
    assert t.concurrency(ActionKind.ADD_MEMBER) > 1
