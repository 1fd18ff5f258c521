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


def _pair(wanted: str, candidate: str) -> tuple[str, str]:
    """What to compare: emails of one domain by their local parts, an email and a username by the
    email's local part, emails of two domains whole."""
    local_a, _, domain_a = wanted.partition("@")
    local_b, _, domain_b = candidate.partition("@")
    if domain_a and domain_b and domain_a != domain_b:
        return wanted, candidate
    return local_a, local_b


def similarity(wanted: str, candidate: str) -> float:
    """How alike two names are (0..1), case-insensitively (`alcie@example.com` is near
    `alice@example.com`; `zed@example.com` is not near `bob@example.com`)."""
    a, b = _pair(norm(wanted), norm(candidate))
    return SequenceMatcher(None, b, a).ratio()


def closest(wanted: str, names: Iterable[str]) -> str | None:
    """The name most like `wanted` above the cutoff, or None.

    A name of the same form wins (an email for an email: `alice@exmaple.com` is more likely
    `alice@example.com` than the username `alice`), then the closer, then the alphabetically first.
    Cheap bounds first, as difflib.get_close_matches does: this runs over every account of a site.
    """
    w = norm(wanted)
    best: tuple[bool, float, str] | None = None
    matchers: dict[str, SequenceMatcher[str]] = {}
    for name in names:
        n = norm(name)
        if n == w:
            continue
        a, b = _pair(w, n)
        if 2 * min(len(a), len(b)) < CUTOFF * (len(a) + len(b)):
            continue  # the lengths alone rule it out
        matcher = matchers.get(a)
        if matcher is None:
            matcher = matchers[a] = SequenceMatcher(None, "", a)  # seq2 is analysed once
        matcher.set_seq1(b)
        if matcher.quick_ratio() < CUTOFF:
            continue
        score = matcher.ratio()
        if score < CUTOFF:
            continue
        rank = (("@" in n) == ("@" in w), score)
        if best is None or rank > best[:2] or (rank == best[:2] and name < best[2]):
            best = (*rank, name)
    return best[2] if best else None


def _and(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _deletes(text: str) -> set[str]:
    """`text` and every string one character shorter: two names one edit apart share one of them."""
    return {text, *(text[:i] + text[i + 1:] for i in range(len(text)))}


class _Names:
    """A pool of names to search. Small pools are compared whole; a large one (a site's accounts)
    first narrows to the names one edit away from the wanted one's local part, through an index of
    deletions built on the first search (difflib alone would compare every account each time)."""

    WHOLE = 5000

    def __init__(self, names: Iterable[str]) -> None:
        self.names = sorted(set(names))
        self._index: dict[str, list[str]] | None = None

    def near(self, wanted: str) -> str | None:
        if len(self.names) <= self.WHOLE:
            return closest(wanted, self.names)
        if self._index is None:
            by_local: dict[str, list[str]] = {}  # `alice` and `alice@example.com` share one entry
            for name in self.names:
                by_local.setdefault(norm(name).partition("@")[0], []).append(name)
            self._index = {}
            for local, names in by_local.items():
                for key in _deletes(local):
                    self._index.setdefault(key, []).extend(names)
        found = {n: None for key in _deletes(norm(wanted).partition("@")[0]) for n in self._index.get(key, ())}
        return closest(wanted, found)


class Suggestions:
    """Did-you-mean for one plan: the target's names indexed once, at most LIMIT searches (past that
    many unknown names the cause is a source or scope, not typos)."""

    LIMIT = 20

    def __init__(self, actual: ActualState, actions: Sequence[Action]) -> None:
        self.actual = actual
        self.actions = actions
        self.left = self.LIMIT
        self._users: _Names | None = None  # built on the first search: most plans need none
        self._groups: _Names | None = None
        self.by_key: dict[str, str] = {}  # a key an account is known by -> its ref

    @property
    def users(self) -> _Names:
        if self._users is None:
            for user in self.actual.users.values():
                if not user.unsynced:
                    for key in (user.username, user.email):
                        if key:
                            self.by_key.setdefault(norm(key), user.ref)
            self._users = _Names(self.by_key)
        return self._users

    @property
    def groups(self) -> _Names:
        if self._groups is None:
            self._groups = _Names(g.name for g in self.actual.groups.values())
        return self._groups

    def _closest(self, wanted: str, names: _Names) -> str | None:
        if self.left <= 0:
            return None
        self.left -= 1
        return names.near(wanted)

    def user(self, wanted: str) -> str:
        """`; did you mean alice, whom this plan disables?` for a desired user with no account, or ''."""
        near = self._closest(wanted, self.users)
        if near is None:
            return ""
        ref = self.by_key[near]
        verbs = [_USER_VERBS[a.kind].format(group=a.group) for a in self.actions if a.subject.ref == ref]
        whom = f", whom this plan {_and(verbs[:3])}{' ...' if len(verbs) > 3 else ''}" if verbs else ""
        return f"; did you mean {near}{whom}?"

    def group(self, wanted: str) -> str:
        """`; did you mean team-eng, from which this plan removes alice and bob?` for a missing group, or ''."""
        near = self._closest(wanted, self.groups)
        if near is None:
            return ""
        on_it = [a for a in self.actions if norm(a.group or "") == norm(near)]
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
