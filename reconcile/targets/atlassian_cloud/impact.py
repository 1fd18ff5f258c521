"""The pre-delete impact reads of a Confluence Cloud site (policy.delete_guard), through `target.site`: v2 spaces
with their owner fields, v2 space permissions (account ids), v1 CQL `creator`. Every refusal is an unknown fact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconcile.errors import TargetError
from reconcile.http import HttpClient, all_of
from reconcile.impact import Impact
from reconcile.model import User
from reconcile.policies import GuardCondition

SPACES = "/wiki/api/v2/spaces"
SEARCH = "/wiki/rest/api/search"
PAGE = 250  # the v2 maximum
MAX_PAGES = 10_000  # a cursor that never ends is a server fault, not a reason to loop forever


@dataclass(frozen=True, slots=True)
class _Space:
    id: str
    key: str
    personal: bool
    owner: str | None  # spaceOwnerId, else authorId (who created it)


class _Unknown(Exception):
    """A read that was refused or answered in an unexpected shape: the why of an unknown fact."""


async def _pages(client: HttpClient, path: str) -> list[Mapping[str, Any]]:
    """Every `results` item of a v2 cursor-paged list, following `_links.next` (relative to the site)."""
    items: list[Mapping[str, Any]] = []
    url: str | None = path
    params: dict[str, Any] | None = {"limit": PAGE}
    seen: set[str] = set()
    while url is not None:
        if url in seen or len(seen) >= MAX_PAGES:
            raise _Unknown(f"GET {client.url(path)}: the cursor repeats")
        seen.add(url)
        response = await client.request("GET", url, params=params)
        if not response.is_success:
            raise _Unknown(f"GET {client.url(url.split('?', 1)[0])} -> {response.status_code}")
        body = response.json()
        results = body.get("results") if isinstance(body, Mapping) else None
        if not isinstance(results, list):
            raise _Unknown(f"GET {client.url(path)}: the answer has no results list")
        items += [r for r in results if isinstance(r, Mapping)]
        nxt = (body.get("_links") or {}).get("next")
        url, params = (str(nxt), None) if nxt else (None, None)
    return items


def _space(item: Mapping[str, Any]) -> _Space | None:
    if not item.get("id") or not item.get("key"):
        return None
    owner = item.get("spaceOwnerId") or item.get("authorId")
    return _Space(str(item["id"]), str(item["key"]), item.get("type") == "personal", str(owner) if owner else None)


async def read_impacts(client: HttpClient | None, users: Sequence[User]) -> dict[str, Impact]:
    """The footprint of each user (by account id): one read of the space list, one of each non-personal
    space's permissions (they name users by account id, so no per-user read), one CQL count per user."""
    if client is None:
        why = "target.site is not configured: Confluence Cloud is read through the site's REST API"
        return {user.ref: Impact.unread(why) for user in users}
    try:
        spaces: list[_Space] = [s for s in map(_space, await _pages(client, SPACES)) if s is not None]
        spaces_why = ""
    except (_Unknown, TargetError) as exc:
        spaces, spaces_why = [], str(exc).splitlines()[0]
    sole, admins_why = ({}, spaces_why) if spaces_why else await _sole_admins(client, spaces)
    counts = await all_of(*(_content(client, u) for u in users))
    out: dict[str, Impact] = {}
    for user, (content, content_why) in zip(users, counts, strict=True):
        unknown: dict[GuardCondition, str] = {}
        if spaces_why:
            unknown[GuardCondition.PERSONAL_SPACE] = spaces_why
        if admins_why:
            unknown[GuardCondition.SOLE_SPACE_ADMIN] = admins_why
        if content_why:
            unknown[GuardCondition.CONTENT_CREATED] = content_why
        personal = next((s.key for s in spaces if s.personal and s.owner == user.ref), None)
        mine = tuple(key for key, admin in sole.items() if admin == user.ref)
        out[user.ref] = Impact(personal_space=personal, sole_admin_of=mine, content=content, unknown=unknown)
    return out


async def _sole_admins(client: HttpClient, spaces: list[_Space]) -> tuple[dict[str, str], str]:
    """Space key -> account id of the non-personal spaces with exactly one direct user `administer` grant
    (a group or role grant never makes anyone the only administrator); or why unknown."""
    shared = sorted((s for s in spaces if not s.personal), key=lambda s: s.key)

    async def admins(space: _Space) -> set[str] | str:
        try:
            grants = await _pages(client, f"{SPACES}/{space.id}/permissions")
        except (_Unknown, TargetError) as exc:
            return str(exc).splitlines()[0]
        return {str(g["principal"]["id"]) for g in grants if _administer(g)}

    found = await all_of(*(admins(s) for s in shared))
    problems = [f for f in found if isinstance(f, str)]
    if problems:
        return {}, problems[0]
    return {s.key: next(iter(who)) for s, who in zip(shared, found, strict=True)
            if not isinstance(who, str) and len(who) == 1}, ""


def _administer(grant: Mapping[str, Any]) -> bool:
    principal, operation = grant.get("principal") or {}, grant.get("operation") or {}
    return (principal.get("type") == "user" and bool(principal.get("id"))
            and operation.get("key") == "administer" and operation.get("targetType") in (None, "space"))


async def _content(client: HttpClient, user: User) -> tuple[int, str]:
    """Pages and blog posts the account created, archived spaces included (CQL `creator`, the total of a
    one-result page); or why unknown. Counts what the site credentials may see."""
    account = user.ref.replace("\\", "\\\\").replace('"', '\\"')  # an id cannot end the CQL string
    params = {"cql": f'creator = "{account}" and type in (page, blogpost)', "limit": 1,
              "includeArchivedSpaces": "true"}
    try:
        response = await client.request("GET", SEARCH, params=params)
    except TargetError as exc:
        return 0, str(exc).splitlines()[0]
    if not response.is_success:
        return 0, f"GET {client.url(SEARCH)} -> {response.status_code}"
    body = response.json()
    total = body.get("totalSize") if isinstance(body, Mapping) else None
    if not isinstance(total, int) or isinstance(total, bool):
        return 0, f"GET {client.url(SEARCH)}: the answer gives no totalSize"
    return total, ""
