"""Tiny builders for actual and desired states, and a pure in-test applier of plans.

The applier is the reference semantics of each action kind, used by the property tests to check
that applying a plan converges; it is not a mock of any target.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime

from reconcile.model import (
    ActualState,
    DesiredState,
    DesiredUser,
    Globs,
    Group,
    Identity,
    Policy,
    Scope,
    Status,
    User,
)
from reconcile.plan import ActionKind, Plan

TARGET = {"type": "memory", "url": "test"}
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # the time tests plan at: never the wall clock


def dc_user(name: str, *, status: str = "active", email: str | None = None, **kw: object) -> User:
    """A Confluence DC-like user whose userKey is `key-<name>`."""
    return User(
        ref=f"key-{name}",
        username=name.lower(),
        email=email,
        display_name=name.title(),
        status=Status(status),
        **kw,  # type: ignore[arg-type]
    )


def actual(
    users: Iterable[User],
    members: Mapping[str, Iterable[str]] | None = None,
    *,
    readonly: Iterable[str] = (),
    idp_managed: Iterable[str] = (),
    extra_groups: Iterable[str] = (),
    me: str | None = None,
) -> ActualState:
    """Members are given by username/label; groups exist when named in members or extra_groups."""
    users = list(users)
    by_label = {u.label: u.ref for u in users}
    members = {g: [by_label.get(m, m) for m in ms] for g, ms in (members or {}).items()}
    names = set(members) | set(extra_groups) | set(readonly) | set(idp_managed)
    groups = [Group(name=g, ref=f"gid-{g}", readonly=g in set(readonly), idp_managed=g in set(idp_managed))
              for g in names]
    return ActualState.build(users, groups, members, me=me)


def desired(users: Mapping[str, Mapping[str, object]] | None = None, groups: Iterable[str] = ()) -> DesiredState:
    """`{"alice": {"groups": ["team"], "status": "disabled"}}` -> DesiredState."""
    out = []
    for key, spec in (users or {}).items():
        out.append(
            DesiredUser(
                key=key,
                status=Status(str(spec.get("status", "active"))),
                groups=frozenset(str(g) for g in spec.get("groups", ()) or ()),  # type: ignore[attr-defined]
                identity=Identity(username=spec.get("username"), email=spec.get("email")),  # type: ignore[arg-type]
            )
        )
    return DesiredState.build(out, groups)


def scope(users: Iterable[str] = ("*",), groups: Iterable[str] = ("team-*",), protect: Iterable[str] = ()) -> Scope:
    return Scope(users=Globs(tuple(users)), groups=Globs(tuple(groups)), protect=Globs(tuple(protect)))


def policy(**kw: object) -> Policy:
    return Policy(**kw)  # type: ignore[arg-type]


def apply_plan(state: ActualState, plan: Plan) -> ActualState:
    """What each action means, applied to a state (the reference semantics)."""
    users = dict(state.users)
    members = {g: set(refs) for g, refs in state.members.items()}
    for action in plan.actions:
        ref = action.subject.ref
        if action.kind is ActionKind.ENABLE:
            users[ref] = replace(users[ref], status=Status.ACTIVE)
        elif action.kind is ActionKind.DISABLE:
            users[ref] = replace(users[ref], status=Status.DISABLED)
        elif action.kind is ActionKind.ADD_MEMBER:
            assert action.group is not None
            members.setdefault(action.group, set()).add(ref)
        elif action.kind is ActionKind.REMOVE_MEMBER:
            assert action.group is not None
            members[action.group].discard(ref)
        elif action.kind is ActionKind.DELETE:
            del users[ref]
            for refs in members.values():
                refs.discard(ref)
    return ActualState(
        users=users,
        groups=state.groups,
        members={g: frozenset(r) for g, r in members.items()},
        me=state.me,
    )


def lines(plan: Plan) -> list[str]:
    """A plan's actions as short strings: `add_member alice team-docs`."""
    return [
        " ".join(x for x in (str(a.kind), a.subject.identity, a.group or "") if x) for a in plan.actions
    ]
