"""Identity matching (SPEC §4): which account each desired user names, or why that is ambiguous.

Pure; the planner (reconcile/diff.py) plans only for the pairs this module returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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
    by_name, by_email = _Index(), _Index()
    names, emails = by_name.one.setdefault, by_email.one.setdefault  # filed inline: 100,000 accounts
    for account in actual.users.values():
        if account.unsynced:
            continue  # unsynced entries are matched by userKey only, never to desired users
        # norm(), inlined: a key already normal files the account's own string, not a copy of it (the
        # copies of 100,000 usernames and emails were the diff's peak, issue 15)
        if (u := account.username) and names(u if (k := u.strip().lower()) == u else k, account) is not account:
            by_name.share(norm(u), account)
        if (a := account.account_id) and names(a if (k := a.strip().lower()) == a else k, account) is not account:
            by_name.share(norm(a), account)
        if (e := account.email) and emails(e if (k := e.strip().lower()) == e else k, account) is not account:
            by_email.share(norm(e), account)

    problems: list[str] = []
    matches: list[Match] = []
    missing: list[str] = []
    claimed: dict[str, DesiredUser] = {}
    users = desired.users
    keys = sorted(users)
    one_email = by_email.one.get
    shared_names, shared_emails = by_name.shared, by_email.shared
    # Exact username / account id first (SPEC §4), whatever the key looks like: Confluence DC
    # usernames are often email addresses, and DC before 9.3 reveals no email to fall back on.
    named = map(by_name.one.get, keys)  # the usual case, the key as the only name: looked up in C
    for key, by_key in zip(keys, named, strict=True):
        want = users[key]
        ident = want.identity
        user: User | None = by_key
        if ident.username is None and ident.account_id is None:
            found: Sequence[User] = shared_names.get(key, ()) if shared_names and key else ()
            if found or not key:
                user = None  # shared: reported below; an empty key names nobody
        elif (((n := ident.username) is None or n == key or norm(n) == key)
              and ((n := ident.account_id) is None or n == key or norm(n) == key)):
            # the usual case of an export (its `User id` is the key): the key is the only name
            found = by_name.find(key) if key else ()
            user = found[0] if len(found) == 1 else None
        else:
            found = by_name.find_any([k for k in (key, *ident.names()) if k])
            user = found[0] if len(found) == 1 else None
        if len(found) > 1:
            problems.append(f"{want.key}: its keys name {len(found)} accounts: {_refs(found)}")
            continue
        if user is None:
            if ident.email is None:
                email = "@" in key  # is_email(), inlined
                found = shared_emails.get(key, ()) if shared_emails and email else ()
                user = one_email(key) if email and not found else None
            else:
                found = by_email.find_any([k for k in (key, norm(ident.email)) if k and is_email(k)])
                user = found[0] if len(found) == 1 else None
            if len(found) > 1:
                problems.append(f"{want.key}: the email matches {len(found)} accounts: {_refs(found)}")
                continue
        if user is None:
            missing.append(key)
            continue
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


def _refs(found: Sequence[User]) -> str:
    return ", ".join(f"{u.label} ({u.ref})" for u in found)


def known_by_email_only(want: DesiredUser) -> bool:
    """A desired user with an email and no username / account id: found only where emails show."""
    return is_email(want.key) and not want.identity.names()


_NONE: tuple[User, ...] = ()


class _Index:
    """Normalised key -> the distinct accounts it names. Most keys name one account, so those are kept
    bare (`one`) and only shared keys get a tuple (`shared`): no list per key of 100,000 users."""

    __slots__ = ("one", "shared")

    def __init__(self) -> None:
        self.one: dict[str, User] = {}
        self.shared: dict[str, tuple[User, ...]] = {}

    def share(self, key: str, user: User) -> None:
        """File `user` under `key`, which `one` holds an account for already (once per account: a
        username equal to the account id names it once)."""
        those = self.shared.get(key) or (self.one[key],)
        if all(user.ref != u.ref for u in those):
            self.shared[key] = (*those, user)

    def find(self, key: str) -> Sequence[User]:
        """The accounts `key` names."""
        user = self.one.get(key)
        if user is None:
            return _NONE
        return self.shared.get(key) or (user,)

    def find_any(self, keys: Iterable[str]) -> Sequence[User]:
        """The distinct accounts any of the keys names."""
        found: list[User] = []
        for key in keys:
            for user in self.find(key):
                if all(user.ref != f.ref for f in found):
                    found.append(user)
        return found
