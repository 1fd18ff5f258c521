"""Plans for the renderer, export and notification tests: one realistic plan, and a huge one."""

from __future__ import annotations

import functools

from reconcile.plan import (
    Action,
    ActionKind,
    LimitBase,
    Plan,
    PlanWarning,
    Subject,
    WarningKind,
    order,
    order_warnings,
)

TARGET = {"type": "confluence-dc", "url": "https://confluence.example.com"}


def realistic_plan() -> Plan:
    """Every action kind, a warning of every kind, an unsynced delete and a name that needs escaping."""
    a = ActionKind
    actions = [
        Action(a.ENABLE, Subject("dave@example.com", "8a7f80c2"), reason="desired status is active"),
        Action(a.ADD_MEMBER, Subject("alice@example.com", "8a7f80a1"), "team-docs",
               reason="desired member of team-docs"),
        Action(a.ADD_MEMBER, Subject("carol@example.com", "8a7f80c3"), "team-platform",
               reason="desired member of team-platform"),
        Action(a.ADD_MEMBER, Subject("o_brien|ops", "8a7f80d9"), "team-platform",
               reason="desired member of team-platform"),
        Action(a.REMOVE_MEMBER, Subject("bob@example.com", "8a7f80b2"), "team-docs",
               reason="not a desired member of team-docs"),
        Action(a.DISABLE, Subject("bob@example.com", "8a7f80b2"), reason="desired status is disabled"),
        Action(a.DISABLE, Subject("mallory", "8a7f80e5"),
               reason="not in the desired state (policy.absent: disable)"),
        Action(a.DELETE, Subject("trent", "8a7f8011"), unsynced=True,
               reason="unsynced from directory (policy.unsynced: delete)"),
        Action(a.DELETE, Subject("trent", "8a7f8012"), unsynced=True,
               reason="unsynced from directory (policy.unsynced: delete)"),
        Action(a.DELETE, Subject("victor", "8a7f8020"),
               reason="not in the desired state (policy.absent: delete)"),
    ]
    w = WarningKind
    warnings = order_warnings([
        PlanWarning(w.MISSING_GROUP, "team-legal", "desired group does not exist on the target"),
        PlanWarning(w.MISSING_USER, "zoe@example.com",
                "desired user does not exist on the target (reconcile does not create accounts)"),
        PlanWarning(w.PROTECTED, "admin", "protected (an administrator): would disable; never touched"),
        PlanWarning(w.PROTECTED, "reconcile-bot",
                "protected (the account of the credentials in use): would remove from team-docs; never touched"),
        PlanWarning(w.READONLY, "alice@example.com",
                "ldap-staff belongs to a read-only directory: would add to ldap-staff; change it in the directory"),
        PlanWarning(w.IDP_MANAGED, "ivan@example.com",
                "managed by the identity provider: would disable; change it in the IdP @ops-team"),
    ])
    return Plan(
        target=TARGET,
        desired_digest="d" * 64,
        actual_fingerprint="a" * 64,
        actions=order(actions),
        warnings=warnings,
        limit_base=LimitBase(users=240, memberships=1800, in_scope=243),
        seats_freed=4,
        created_at="2026-11-26T12:00:00Z",
        tool_version="0.1.0",
    )


def empty_plan() -> Plan:
    return Plan(target=TARGET, desired_digest="d" * 64, actual_fingerprint="a" * 64, actions=(),
                created_at="2026-11-26T12:00:00Z", tool_version="0.1.0")


@functools.cache
def huge_plan(n: int = 100_000) -> Plan:
    """`n` actions over every kind, with long emails, and 2,000 warnings."""
    kinds = list(ActionKind)
    actions = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        group = f"team-{i % 997:03d}" if kind in (ActionKind.ADD_MEMBER, ActionKind.REMOVE_MEMBER,
                                                                         ActionKind.REMOVE_LICENCE) else None
        actions.append(Action(kind, Subject(f"user{i:06d}.with.a.long.name@example.com", f"ref{i:08x}"),
                              group, reason=f"reason number {i}"))
    warnings = tuple(PlanWarning(WarningKind.MISSING_USER, f"ghost{i}@example.com", "not on the target")
                     for i in range(2000))
    return Plan(target=TARGET, desired_digest="d" * 64, actual_fingerprint="a" * 64,
                actions=order(actions), warnings=warnings, created_at="2026-11-26T12:00:00Z",
                tool_version="0.1.0")
