"""Identity matching (SPEC §4): which account each desired user names, or why that is ambiguous.

Pure; the planner (reconcile/diff.py) plans only for the pairs this module returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from reconcile.errors import IdentityConflict
from reconcile.model import ActualState, DesiredState, DesiredUser, User, is_email, norm
from reconcile.records import quick_init


@quick_init
@dataclass(frozen=True, slots=True)
class Match:
    desired: DesiredUser
    user: User


def match_users(desired: DesiredState, actual: ActualState) -> tuple[list[Match], list[str]]:
    """Pair desired users with accounts: exact username / account id first, then email (SPEC §4).

    Returns the matches and the normalised keys of desired users with no account. Raises
    IdentityConflict listing every email that names two accounts and every account that two
    desired users name.
    """
    by_name: dict[str, list[User]] = {}
    by_email: dict[str, list[User]] = {}
    for user in actual.users.values():
        if user.unsynced:
            continue  # unsynced entries are matched by userKey only, never to desired users
        for key in (user.username, user.account_id):
            if key:
                _index(by_name, key.strip().lower(), user)  # norm(), inlined: 100,000 users
        if user.email:
            _index(by_email, user.email.strip().lower(), user)

    problems: list[str] = []
    matches: list[Match] = []
    missing: list[str] = []
    claimed: dict[str, DesiredUser] = {}
    for key in sorted(desired.users):
        want = desired.users[key]
        # Exact username / account id first (SPEC §4), whatever the key looks like: Confluence DC
        # usernames are often email addresses, and DC before 9.3 reveals no email to fall back on.
        names = want.identity.names()
        found = _lookup(by_name, [k for k in (key, *names) if k]) if names or not key else by_name.get(key, [])
        if len(found) > 1:
            refs = ", ".join(f"{u.label} ({u.ref})" for u in found)
            problems.append(f"{want.key}: its keys name {len(found)} accounts: {refs}")
            continue
        if not found:
            emails = [k for k in (key, want.identity.email and norm(want.identity.email)) if k and is_email(k)]
            found = _lookup(by_email, emails)
            if len(found) > 1:
                refs = ", ".join(f"{u.label} ({u.ref})" for u in found)
                problems.append(f"{want.key}: the email matches {len(found)} accounts: {refs}")
                continue
        if not found:
            missing.append(key)
            continue
        user = found[0]
        other = claimed.get(user.ref)
        if other is not None:
            problems.append(f"{other.key} and {want.key} both name the account {user.label} ({user.ref})")
            continue
        claimed[user.ref] = want
        matches.append(Match(want, user))
    if problems:
        raise IdentityConflict(
            "cannot match desired users to accounts unambiguously:\n"
            + "\n".join(f"  {p}" for p in problems),
            hint="write these users by username (Confluence DC) or account id (Cloud) instead of email",
        )
    return matches, missing


def known_by_email_only(want: DesiredUser) -> bool:
    """A desired user with an email and no username / account id: found only where emails show."""
    return is_email(want.key) and not want.identity.names()


def _index(index: dict[str, list[User]], key: str, user: User) -> None:
    """File `user` under `key` once (a username equal to the account id names it once)."""
    held = index.get(key)
    if held is None:
        index[key] = [user]
    elif all(user.ref != u.ref for u in held):
        held.append(user)


def _lookup(index: Mapping[str, list[User]], keys: Iterable[str]) -> list[User]:
    """The distinct accounts any of the keys names."""
    found: list[User] = []
    for key in keys:
        for user in index.get(key, ()):
            if all(user.ref != f.ref for f in found):
                found.append(user)
    return found
