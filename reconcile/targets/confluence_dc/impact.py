"""The pre-delete impact reads of Confluence DC (policy.delete_guard): personal spaces, sole direct space
administrators, content created. Every refusal becomes an `unknown` fact with the request that failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from reconcile.errors import TargetError
from reconcile.http import HttpClient, all_of
from reconcile.impact import Impact
from reconcile.model import User, norm
from reconcile.policies import GuardCondition
from reconcile.targets.confluence_dc.read import collect

SPACES = "/rest/api/space"
SEARCH = "/rest/api/search"
ADMINISTER = "administer"


@dataclass(frozen=True, slots=True)
class _Space:
    key: str
    personal: bool
    creator: str | None  # userKey, with expand=creator


def _space(item: Any) -> _Space | None:
    if not isinstance(item, Mapping) or not item.get("key"):
        return None
    creator = item.get("creator")
    key = creator.get("userKey") if isinstance(creator, Mapping) else None
    return _Space(str(item["key"]), item.get("type") == "personal", str(key) if key else None)


def _refused(client: HttpClient, method: str, path: str, status: int) -> str:
    return f"{method} {client.url(path)} -> {status}"


async def read_impacts(client: HttpClient, users: Sequence[User], *, live_usernames: Iterable[str],
                       display_names: Iterable[str] = ()) -> dict[str, Impact]:
    """The footprint of each user, by ref: one read of the space list, one of each global space's
    permissions, one per-user permission read where a space has a single direct administrator, and
    one CQL count per user."""
    try:
        spaces: list[_Space] | None = await collect(client, SPACES, _space, params={"expand": "creator"})
        spaces_why = ""
    except TargetError as exc:
        spaces, spaces_why = None, str(exc).splitlines()[0]
    single, admins_why = await _single_admin_spaces(client, spaces) if spaces is not None else ([], spaces_why)
    shared = frozenset(live_usernames)
    names = frozenset(display_names)
    counts = await all_of(*(_content(client, u, shared) for u in users))
    out: dict[str, Impact] = {}
    for user, (content, content_why) in zip(users, counts, strict=True):
        unknown: dict[GuardCondition, str] = {}
        personal = None
        if spaces is None:
            unknown[GuardCondition.PERSONAL_SPACE] = spaces_why
        else:
            personal = _personal(spaces, user)
        sole: tuple[str, ...] = ()
        if admins_why:
            unknown[GuardCondition.SOLE_SPACE_ADMIN] = admins_why
        else:
            sole, why = await _sole_admin_of(client, single, user, names)
            if why:
                unknown[GuardCondition.SOLE_SPACE_ADMIN] = why
        if content_why:
            unknown[GuardCondition.CONTENT_CREATED] = content_why
        out[user.ref] = Impact(personal_space=personal, sole_admin_of=sole, content=content, unknown=unknown)
    return out


def _personal(spaces: list[_Space], user: User) -> str | None:
    """The personal space this user created (by userKey; by the `~username` key when no creator is given:
    after a rename the key may no longer match, the creator does)."""
    mine = [s.key for s in spaces if s.personal and s.creator == user.ref]
    if not mine and user.username:
        mine = [s.key for s in spaces if s.personal and s.creator is None and norm(s.key) == f"~{user.username}"]
    return mine[0] if mine else None


async def _single_admin_spaces(client: HttpClient, spaces: list[_Space]
                               ) -> tuple[list[tuple[str, str | None]], str]:
    """(key, the administrator's display name) of the non-personal spaces with exactly one direct user
    `administer` grant; or why unknown.

    The space permission list names users by display name only (no userKey, as documented), so whether
    that one administrator is a given user is asked of the per-user route afterwards, only for the
    candidates whose display name matches (display names are not unique: the name only narrows).
    """
    shared = [s.key for s in spaces if not s.personal]

    async def direct_admins(key: str) -> list[str | None] | str:
        path = f"{SPACES}/{quote(key, safe='')}/permissions"
        response = await client.request("GET", path)
        if not response.is_success:
            return _refused(client, "GET", path, response.status_code)
        grants = response.json()
        if not isinstance(grants, list):
            return f"GET {client.url(path)}: not a list of permissions"
        return [_shown(g) for g in grants if _grant(g) == ("user", ADMINISTER)]

    found = await all_of(*(direct_admins(k) for k in shared))
    problems = [f for f in found if isinstance(f, str)]
    if problems:
        return [], problems[0]
    return [(k, names[0]) for k, names in zip(shared, found, strict=True)
            if not isinstance(names, str) and len(names) == 1], ""


def _grant(item: Any) -> tuple[str, str] | None:
    if not isinstance(item, Mapping):
        return None
    subject, operation = item.get("subject") or {}, item.get("operation") or {}
    if operation.get("targetType") not in (None, "space"):
        return None
    return str(subject.get("type")), str(operation.get("operationKey"))


def _shown(item: Mapping[str, Any]) -> str | None:
    name = (item.get("subject") or {}).get("displayName")
    return str(name) if name else None


async def _sole_admin_of(client: HttpClient, single: list[tuple[str, str | None]], user: User,
                         known: frozenset[str]) -> tuple[tuple[str, ...], str]:
    # Skipped only when the one grant shows the display name of another user the site lists: a name in
    # another format, or none, is asked (the safe direction: a missed sole admin would be deleted).
    asked = [k for k, shown in single
             if shown is None or user.display_name is None or shown == user.display_name or shown not in known]

    async def administers(key: str) -> bool | str:
        path = f"{SPACES}/{quote(key, safe='')}/permissions/user/{quote(user.ref, safe='')}"
        response = await client.request("GET", path)
        if not response.is_success:
            return _refused(client, "GET", path, response.status_code)
        grants = response.json()
        return isinstance(grants, list) and any(_grant(g) == ("user", ADMINISTER) for g in grants)

    found = await all_of(*(administers(k) for k in asked))
    problems = [f for f in found if isinstance(f, str)]
    if problems:
        return (), problems[0]
    return tuple(k for k, yes in zip(asked, found, strict=True) if yes is True), ""


async def _content(client: HttpClient, user: User, live: frozenset[str]) -> tuple[int, str]:
    """Pages and blog posts the user created (CQL `creator`, `limit=1`, the answer's total); or why unknown."""
    if not user.username:
        return 0, "no username to search by"
    if user.unsynced and user.username in live:
        return 0, f"the username {user.username!r} also names a live user, whose content CQL would count"
    quoted = user.username.replace("\\", "\\\\").replace('"', '\\"')  # a name cannot end the CQL string
    cql = f'creator = "{quoted}" and type in (page, blogpost)'
    response = await client.request("GET", SEARCH, params={"cql": cql, "limit": 1})
    if not response.is_success:
        return 0, _refused(client, "GET", SEARCH, response.status_code)
    body = response.json()
    total = body.get("totalSize", body.get("totalCount")) if isinstance(body, Mapping) else None
    if not isinstance(total, int):
        return 0, f"GET {client.url(SEARCH)}: the answer gives no totalSize"
    return total, ""
