"""Properties of the planner over generated worlds (hypothesis).

- equal states plan nothing;  - applying a plan converges;  - protected principals are never named
by an action;  - plans are deterministic whatever the input order;  - out-of-scope users never appear.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from reconcile.diff import diff
from reconcile.model import (
    AbsentPolicy,
    ActualState,
    DesiredState,
    DesiredUser,
    Globs,
    Group,
    Policy,
    Scope,
    Status,
    UnsyncedPolicy,
    User,
)
from tests.support.builders import NOW, TARGET, apply_plan
from tests.support.examples import examples

GROUPS = ["team-a", "team-b", "team-ro", "other"]
SCOPE = Scope(users=Globs(("*@example.com", "u*")), groups=Globs(("team-*",)), protect=Globs(("*9",)))


@dataclass(frozen=True)
class World:
    actual: ActualState
    desired: DesiredState
    policy: Policy


@st.composite
def worlds(draw: st.DrawFn) -> World:
    n = draw(st.integers(min_value=0, max_value=25))
    users: list[User] = []
    for i in range(n):
        domain = draw(st.sampled_from(["example.com", "partner.org"]))
        users.append(
            User(
                ref=f"key{i}",
                username=f"u{i}" if domain == "example.com" else f"x{i}",
                email=f"p{i}@{domain}" if draw(st.booleans()) else None,
                status=draw(st.sampled_from(list(Status))),
                admin=draw(st.integers(0, 9)) == 0,
                unsynced=draw(st.integers(0, 6)) == 0,
            )
        )
    members = {g: frozenset(u.ref for u in users if not u.unsynced and draw(st.booleans())) for g in GROUPS}
    groups = {g: Group(g, ref=g, readonly=g == "team-ro") for g in GROUPS}
    me = users[0].ref if bool(users) and draw(st.booleans()) else None
    actual = ActualState(users={u.ref: u for u in users}, groups=groups, members=members, me=me)

    wanted: list[DesiredUser] = []
    for u in users:
        if u.unsynced or not draw(st.booleans()):
            continue
        key = u.email if u.email and draw(st.booleans()) else u.username
        assert key is not None
        wanted.append(
            DesiredUser(
                key=key,
                status=draw(st.sampled_from(list(Status))),
                groups=frozenset(draw(st.lists(st.sampled_from(GROUPS[:3]), max_size=3))),
            )
        )
    if draw(st.booleans()):
        wanted.append(DesiredUser(key="ghost@example.com"))
    policy = Policy(
        absent=draw(st.sampled_from(list(AbsentPolicy))),
        unsynced=draw(st.sampled_from(list(UnsyncedPolicy))),
        allow_empty=True,
    )
    return World(actual, DesiredState.build(wanted), policy)


def plan(world: World, actual: ActualState | None = None):
    return diff(world.desired, actual or world.actual, scope=SCOPE, policy=world.policy, target=TARGET, now=NOW)


def mirror(actual: ActualState) -> DesiredState:
    """The desired state that says exactly what the actual state holds (live users only)."""
    users = []
    for u in actual.users.values():
        if u.unsynced:
            continue
        groups = frozenset(g for g, refs in actual.members.items() if u.ref in refs and g.startswith("team-"))
        users.append(DesiredUser(key=u.username or u.ref, status=u.status, groups=groups))
    return DesiredState.build(users)


@settings(max_examples=examples(100), deadline=None)
@given(worlds())
def test_equal_states_plan_nothing(world: World) -> None:
    same = World(world.actual, mirror(world.actual),
                 Policy(absent=AbsentPolicy.DISABLE, unsynced=UnsyncedPolicy.IGNORE, allow_empty=True))
    assert plan(same).actions == ()


@settings(max_examples=examples(100), deadline=None)
@given(worlds())
def test_applying_a_plan_converges(world: World) -> None:
    first = plan(world)
    after = apply_plan(world.actual, first)
    assert plan(world, after).actions == ()


@settings(max_examples=examples(100), deadline=None)
@given(worlds())
def test_protected_principals_are_never_named(world: World) -> None:
    protected = {
        u.ref
        for u in world.actual.users.values()
        if u.admin or u.ref == world.actual.me or SCOPE.protect.matches(*u.keys())
    }
    assert not {a.subject.ref for a in plan(world).actions} & protected


@settings(max_examples=examples(100), deadline=None)
@given(worlds(), st.randoms(use_true_random=False))
def test_plans_are_deterministic(world: World, rnd) -> None:
    users = list(world.actual.users.values())
    rnd.shuffle(users)
    shuffled = ActualState(
        users={u.ref: u for u in users},
        groups=dict(reversed(list(world.actual.groups.items()))),
        members=world.actual.members,
        me=world.actual.me,
    )
    a, b = plan(world), plan(world, shuffled)
    assert a.digest == b.digest
    assert a.actions == b.actions and a.warnings == b.warnings


@settings(max_examples=examples(100), deadline=None)
@given(worlds())
def test_out_of_scope_users_and_groups_never_appear(world: World) -> None:
    result = plan(world)
    for action in result.actions:
        user = world.actual.users[action.subject.ref]
        assert SCOPE.users.matches(*user.keys()) or action.subject.identity in world.desired.users
        assert action.group is None or action.group.startswith("team-")
        assert action.group != "team-ro"  # read-only groups only ever warn
