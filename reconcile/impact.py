"""What deleting a user would destroy (issue 14, `policy.delete_guard`): their personal space, the spaces
they alone administer, the content they created; and whether a planned delete must become a disable.

Pure values; targets read them (`Target.impact`), the planner decides with them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from reconcile.policies import DeleteGuard, GuardCondition, GuardUnknown


@dataclass(frozen=True, slots=True)
class Impact:
    """One user's footprint as a target read it. A fact in `unknown` (condition -> why it could not be
    read: endpoint missing, refused) says nothing; its field is then meaningless."""

    personal_space: str | None = None  # the key of their personal space (None: they have none)
    sole_admin_of: tuple[str, ...] = ()  # keys of spaces where they are the only direct `administer` grantee
    content: int = 0  # pages and blog posts they created
    unknown: Mapping[GuardCondition, str] = field(default_factory=dict)

    @staticmethod
    def unread(why: str) -> Impact:
        """Nothing could be read, for one reason."""
        return Impact(unknown=dict.fromkeys(GuardCondition, why))


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the guard decided for one delete: `blocked` turns it into a disable; `evidence` says why."""

    blocked: bool
    evidence: tuple[str, ...]  # "personal space ~rupert", "sole admin of OPS", "66 pages", "content unknown (…)"


def judge(guard: DeleteGuard, impact: Impact | None) -> Verdict:
    """The guard's verdict on one delete candidate; no impact read at all counts as every fact unknown."""
    found = impact if impact is not None else Impact.unread("not read")
    evidence: list[str] = []
    blocked = False
    for condition in GuardCondition:  # a fixed order: the evidence text is part of the plan's digest
        if condition not in guard.when:
            continue
        why = found.unknown.get(condition)
        if why is not None:
            evidence.append(f"{_NAMES[condition]} unknown ({why})")
            blocked = blocked or guard.unknown is GuardUnknown.BLOCK
            continue
        match condition:
            case GuardCondition.PERSONAL_SPACE:
                if found.personal_space is not None:
                    evidence.append(f"personal space {found.personal_space}")
                    blocked = True
            case GuardCondition.SOLE_SPACE_ADMIN:
                if found.sole_admin_of:
                    evidence.append(f"sole admin of {', '.join(found.sole_admin_of)}")
                    blocked = True
            case GuardCondition.CONTENT_CREATED:
                if found.content > guard.content_over:
                    evidence.append(f"{found.content} pages" if found.content != 1 else "1 page")
                    blocked = True
    return Verdict(blocked, tuple(evidence))


_NAMES = {
    GuardCondition.PERSONAL_SPACE: "personal space",
    GuardCondition.SOLE_SPACE_ADMIN: "space administrators",
    GuardCondition.CONTENT_CREATED: "content created",
}
