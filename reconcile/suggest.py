"""Did-you-mean for the users and groups a desired state names but the target lacks (a typo must not
pass quietly). Pure: from the names the planner has and the actions it planned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from difflib import SequenceMatcher

from reconcile.model import ActualState, norm
from reconcile.plan import Action, ActionKind

CUTOFF = 0.7  # difflib's get_close_matches uses 0.6; a little stricter, as every suggestion is read

_USER_VERBS: Mapping[ActionKind, str] = {
    ActionKind.ENABLE: "enables",
    ActionKind.DISABLE: "disables",
    ActionKind.DELETE: "deletes",
    ActionKind.ADD_MEMBER: "adds to {group}",
    ActionKind.REMOVE_MEMBER: "removes from {group}",
}


def similarity(wanted: str, candidate: str) -> float:
    """How alike two names are (0..1), case-insensitively.

    Emails of one domain are compared by their local parts (`alcie@example.com` is near
    `alice@example.com`, `zed@example.com` is not near `bob@example.com`); an email and a username
    by the email's local part.
    """
    a, b = norm(wanted), norm(candidate)
    local_a, _, domain_a = a.partition("@")
    local_b, _, domain_b = b.partition("@")
    if domain_a and domain_b and domain_a != domain_b:
        return SequenceMatcher(None, a, b).ratio()
    return SequenceMatcher(None, local_a, local_b).ratio()


def closest(wanted: str, names: Iterable[str]) -> str | None:
    """The name most like `wanted` above the cutoff, or None.

    Ties go to a name of the same form (an email for an email), then to the alphabetically first.
    """
    best: tuple[float, bool, str] | None = None
    for name in sorted(set(names)):
        if norm(name) == norm(wanted):
            continue
        score = similarity(wanted, name)
        rank = (score, ("@" in name) == ("@" in wanted))
        if score >= CUTOFF and (best is None or rank > best[:2]):
            best = (*rank, name)
    return best[2] if best else None


def _and(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def user_hint(wanted: str, actual: ActualState, actions: Sequence[Action]) -> str:
    """`; did you mean alice, whom this plan disables?` for a desired user with no account, or ''."""
    by_key: dict[str, str] = {}  # a key an account is known by -> its ref
    for user in actual.users.values():
        if not user.unsynced:
            for key in (user.username, user.email):
                if key:
                    by_key.setdefault(norm(key), user.ref)
    near = closest(wanted, by_key)
    if near is None:
        return ""
    verbs = [_USER_VERBS[a.kind].format(group=a.group) for a in actions if a.subject.ref == by_key[near]]
    whom = f", whom this plan {_and(verbs[:3])}{' ...' if len(verbs) > 3 else ''}" if verbs else ""
    return f"; did you mean {near}{whom}?"


def group_hint(wanted: str, actual: ActualState, actions: Sequence[Action]) -> str:
    """`; did you mean team-eng, from which this plan removes alice and bob?` for a missing group, or ''."""
    near = closest(wanted, (g.name for g in actual.groups.values()))
    if near is None:
        return ""
    on_it = [a for a in actions if norm(a.group or "") == norm(near)]
    added = [a.subject.identity for a in on_it if a.kind is ActionKind.ADD_MEMBER]
    removed = [a.subject.identity for a in on_it if a.kind is ActionKind.REMOVE_MEMBER]

    def who(names: list[str]) -> str:
        return _and(names) if len(names) <= 3 else f"{len(names)} members"

    if removed and added:
        which = f", which this plan changes (adds {who(added)}, removes {who(removed)})"
    elif removed:
        which = f", from which this plan removes {who(removed)}"
    elif added:
        which = f", to which this plan adds {who(added)}"
    else:
        which = ""
    return f"; did you mean {near}{which}?"
