"""Paged REST reads of Confluence DC: the current user, users with status, groups, members, active users.

Pages follow `_links.next` and advance `start` by the returned `size` (servers cap `limit` silently);
later pages are fetched a window at a time, concurrently, and re-fetched when a cap changes mid-way.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from reconcile.errors import AuthError, TargetError
from reconcile.http import HttpClient, all_of
from reconcile.model import Status, norm, parse_instant
from reconcile.targets.atlassian import fail, raise_for

log = logging.getLogger(__name__)

T = TypeVar("T")
_READ = httpx.ByteStream(b"")  # a page's stream once its body is read
PAGE_LIMIT = 1000  # asked for; servers cap it silently (group members: 200)

_ACTIVE = frozenset({"active", "enabled"})
_DISABLED = frozenset({"deactivated", "disabled", "inactive", "deactivate", "unsynced"})


# Person and ActiveUser are msgspec records, not dataclasses: a 100,000-user read builds 200,000 of them for the
# moment `ConfluenceDcTarget._state` joins them, and a Struct is built in C (a quick_init dataclass sets each
# field from Python) and, holding only strings, times and flags, is left untracked by the cyclic collector.
class Person(msgspec.Struct, frozen=True, gc=False):
    """A DC user object (`/rest/api/user/list`, group members, `/user/current`)."""

    user_key: str
    username: str  # lower-cased
    display_name: str | None = None
    status: Status | None = None  # None when the server did not expand it
    unsynced: bool = False  # status "Unsynced" (no longer in its directory)

    @staticmethod
    def parse(item: Any) -> Person | None:
        if not isinstance(item, dict):
            return None
        key = item.get("userKey")
        username = item.get("username")
        if not key or not username or item.get("type") == "anonymous":
            return None
        raw = item.get("status")
        if raw is None:  # the common case for group members: no status expansion
            return Person(str(key), norm(str(username)), item.get("displayName"))
        unsynced = isinstance(raw, str) and raw.strip().lower() == "unsynced"
        return Person(str(key), norm(str(username)), item.get("displayName"), _status(raw), unsynced)


class ActiveUser(msgspec.Struct, frozen=True, gc=False):
    """An entry of the 9.3+ `/rest/api/admin/users/list/active?expand=lastLogin`."""

    user_key: str
    email: str | None
    last_login: datetime | None  # None: never logged in (or not said)
    login_known: bool = True  # False: the entry has no `lastLogin` at all (a server ignoring the expansion)

    @staticmethod
    def parse(item: Any) -> ActiveUser | None:
        if not isinstance(item, Mapping) or not item.get("userKey"):
            return None
        email = item.get("email")
        return ActiveUser(str(item["userKey"]), str(email) if email else None, _instant(item.get("lastLogin")),
                          "lastLogin" in item)


_STATUS_WORDS = {"Active": Status.ACTIVE, "Deactivated": Status.DISABLED}  # what DC sends


def _status(value: Any) -> Status | None:
    known = _STATUS_WORDS.get(value) if isinstance(value, str) else None
    if known is not None:
        return known
    if isinstance(value, Mapping):
        value = value.get("value") or value.get("name") or value.get("status")
    if value is None or value == "":
        return None
    text = str(value).strip().lower()
    if text in _ACTIVE:
        return Status.ACTIVE
    if text in _DISABLED:
        return Status.DISABLED
    raise TargetError(
        f"Confluence reported a user status {value!r} this tool does not know",
        hint="report it (with your Confluence version); nothing was changed",
    )


def _instant(value: Any) -> datetime | None:
    """A lastLogin as an aware datetime: DC sends epoch milliseconds or a date string."""
    if isinstance(value, Mapping):
        return _instant(value.get("date") or value.get("value"))
    return parse_instant(value)




# Typed page shapes, decoded by msgspec straight from the bytes: only the fields read are built, and
# fields absent from a shape are skipped unparsed. A page that does not fit (an odd type anywhere) is
# decoded again the generic way and parsed by the dict parsers above, which decide as before.
# `gc=False`: the decoded items hold only strings and numbers, so they can be in no cycle; untracked, the
# 500,000 items of a 100,000-user read are no work for the young collections that run during the fetch.
class _UserItem(msgspec.Struct, gc=False):
    userKey: str | None = None
    username: str | None = None
    displayName: str | None = None
    type: str | None = None
    status: str | None = None


class _MemberItem(msgspec.Struct, gc=False):
    userKey: str | None = None
    type: str | None = None


class _ActiveItem(msgspec.Struct, gc=False):
    userKey: str | None = None
    email: str | None = None
    lastLogin: int | str | msgspec.UnsetType | None = msgspec.UNSET


class _Links(msgspec.Struct, gc=False):
    next: Any = None


def _page_type(item: type[Any]) -> type[Any]:
    return msgspec.defstruct(f"_{item.__name__}Page", [
        ("results", list[item]),  # type: ignore[valid-type]
        ("size", int | None, None),
        ("links", _Links | None, msgspec.field(default=None, name="_links")),
    ], gc=False)


def _persons(items: list[_UserItem]) -> list[Person]:
    # One loop per page, not a call per item: 100,000 users. Status words DC sends are looked up
    # first; anything else goes through `_status`, which decides (or raises) as the dict parser does.
    out: list[Person] = []
    add, intern, words = out.append, sys.intern, _STATUS_WORDS
    for item in items:
        key, name, raw = item.userKey, item.username, item.status
        if not key or not name or item.type == "anonymous":
            continue
        if raw is None:
            add(Person(intern(key), norm(name), item.displayName))
        elif (known := words.get(raw)) is not None:  # "Active" / "Deactivated": not "unsynced"
            add(Person(intern(key), norm(name), item.displayName, known))
        else:
            add(Person(intern(key), norm(name), item.displayName, _status(raw),
                       raw.strip().lower() == "unsynced"))
    return out


def _members(items: list[_MemberItem]) -> list[str]:
    # interned: the same userKey object as its user's, not one more string per membership (400,000)
    intern = sys.intern
    return [intern(key) for item in items if (key := item.userKey) and item.type != "anonymous"]


def _actives(items: list[_ActiveItem]) -> list[ActiveUser]:
    unset = msgspec.UNSET
    # typed: lastLogin is text, a number or null, never the mapping `_instant` also unwraps
    # and mostly epoch milliseconds: converted here, as `parse_instant` would, without its call and checks
    stamp, utc = datetime.fromtimestamp, UTC
    return [ActiveUser(key, item.email or None, None, False) if (login := item.lastLogin) is unset
            else ActiveUser(key, item.email or None,
                            stamp(login / 1000, utc) if type(login) is int else parse_instant(login))
            for item in items if (key := item.userKey)]


@dataclass(frozen=True, slots=True)
class Typed(Generic[T]):
    """A page shape and how its typed items become Ts (items that are no T skipped)."""

    decoder: msgspec.json.Decoder[Any]
    convert: Callable[[list[Any]], list[T]]

    @staticmethod
    def of(item: type[Any], convert: Callable[[list[Any]], list[T]]) -> Typed[T]:
        return Typed(msgspec.json.Decoder(_page_type(item)), convert)


PERSONS = Typed.of(_UserItem, _persons)
MEMBERS = Typed.of(_MemberItem, _members)
ACTIVE = Typed.of(_ActiveItem, _actives)


@dataclass(frozen=True, slots=True)
class _Page(Generic[T]):
    items: list[T]  # parsed already: no raw page is kept
    seen: int  # items on the page, parsed or skipped
    size: int
    more: bool
    error: TargetError | None = None  # raised when the page's turn comes, as if parsed then


async def _page(client: HttpClient, path: str, params: Mapping[str, Any], start: int, *,
                parse: Callable[[Any], T | None], typed: Typed[T] | None) -> _Page[T]:
    response = await client.request("GET", path, params={**params, "start": start, "limit": PAGE_LIMIT})
    # Read already: unbinding the stream breaks httpx's response <-> stream cycle, so the page's body goes
    # when the response does, not at the next full collection (paused during the fetch).
    response.stream = _READ
    raise_for(response, "the account needs Confluence system administrator permission to list users "
                        "and group members; check target.auth")
    if typed is not None:
        try:
            page = typed.decoder.decode(response.content)
        except msgspec.MsgspecError:
            pass  # not the usual shape: the generic reading below decides
        else:
            results = page.results
            size = page.size if page.size is not None else len(results)
            more = page.links is not None and bool(page.links.next) and size > 0
            try:
                return _Page(typed.convert(results), len(results), size, more)
            except TargetError as exc:
                return _Page([], len(results), size, more, exc)
    body = response.json()
    results = body.get("results") if isinstance(body, Mapping) else None
    if not isinstance(results, list):
        fail(response, "the server did not answer with a Confluence page of results; check target.url")
    size = body.get("size")
    size = int(size) if isinstance(size, int | float) else len(results)
    links = body.get("_links") or {}
    return _parsed(results, parse, size, bool(links.get("next")) and size > 0)


def _parsed(results: list[Any], parse: Callable[[Any], T | None], size: int, more: bool) -> _Page[T]:
    try:
        items = [item for item in map(parse, results) if item is not None]
    except TargetError as exc:
        return _Page([], len(results), size, more, exc)
    return _Page(items, len(results), size, more)


async def collect(
    client: HttpClient,
    path: str,
    parse: Callable[[Any], T | None],
    *,
    params: Mapping[str, Any] | None = None,
    window: int = 1,
    on_page: Callable[[int], None] | None = None,
    typed: Typed[T] | None = None,
    ramp: bool = False,
) -> list[T]:
    """Every item of a paged collection, in order.

    The first page reveals the server's real page size; after it, `window` pages are requested at
    once at offsets spaced by that size. A page shorter than that size with more to come (a changed
    cap) restarts the window right after it, so no item is skipped. `typed`: decode pages with that
    shape (`parse` still reads any page that does not fit it). `ramp`: the window starts at one page and
    doubles up to `window`, for collections usually one or two pages long (group members), so that a
    short one costs no speculative requests past its end and a long one still gets the full window.
    """
    params = dict(params or {})
    out: list[T] = []
    seen = 0

    def take(page: _Page[T]) -> None:
        # parsed page by page: the raw JSON of 100,000 users is ~10x the size of what is kept
        nonlocal seen
        if page.error is not None:
            raise page.error
        seen += page.seen
        out.extend(page.items)
        if on_page:
            on_page(seen)

    first = await _page(client, path, params, 0, parse=parse, typed=typed)
    take(first)
    step, start, more = first.size, first.size, first.more
    width = 1 if ramp else max(1, window)
    while more:
        starts = [start + i * step for i in range(width)]
        width = min(max(1, window), width * 2)
        pages = await all_of(*(_page(client, path, params, s, parse=parse, typed=typed) for s in starts))
        for offset, page in zip(starts, pages, strict=True):
            take(page)
            if not page.more:
                more = False
                break
            if page.size != step:  # the cap changed: continue right after this page
                step, start = page.size, offset + page.size
                break
        else:
            start = starts[-1] + step
    return out


async def current_user(client: HttpClient, *, token: bool) -> Person:
    """Who the credentials belong to; anonymous means a bad personal access token (SPEC §6)."""
    response = await client.request("GET", "/rest/api/user/current")
    if response.status_code == 401:
        what = ("the personal access token was refused; create a new one and set it in target.auth.token"
                if token else "wrong username or password in target.auth")
        raise AuthError(f"GET {client.url('/rest/api/user/current')} -> 401: {what}", status=401,
                        hint="check the credentials; nothing was changed")
    if response.status_code == 403:
        raise AuthError(f"GET {client.url('/rest/api/user/current')} -> 403: the account may not use "
                        "Confluence", status=403, hint="use a system administrator's credentials")
    raise_for(response, "check target.url points at Confluence (with its context path, e.g. /confluence)")
    person = Person.parse(response.json())
    if person is None:
        why = ("the personal access token is unknown, expired or revoked: Confluence DC runs requests "
               "with a bad token as the anonymous user instead of refusing them"
               if token else "the server did not accept the credentials")
        raise AuthError(f"GET {client.url('/rest/api/user/current')} -> 200 as anonymous: {why}",
                        hint="create a new personal access token for a system administrator and set it "
                             "in target.auth.token")
    return person


async def list_users(client: HttpClient, window: int, on_page: Callable[[int], None] | None = None
                     ) -> list[Person]:
    return await collect(client, "/rest/api/user/list", Person.parse, params={"expand": "status"},
                         window=window, on_page=on_page, typed=PERSONS)


def _group_name(item: Any) -> str | None:
    if isinstance(item, Mapping) and item.get("name"):
        return norm(str(item["name"]))
    return None


async def list_groups(client: HttpClient, window: int) -> list[str]:
    return await collect(client, "/rest/api/group", _group_name, window=window)


def _member_key(item: Any) -> str | None:
    key = item.get("userKey") if isinstance(item, dict) else None
    return str(key) if key and item.get("type") != "anonymous" else None


async def list_member_keys(client: HttpClient, group: str, window: int = 1) -> list[str]:
    """The userKeys of a group's members (the cheapest parse: 400,000 memberships add up). A large
    group's pages are read up to `window` at a time: one page after another, the 500 pages of a
    100,000-member group would be a chain of 500 round trips, longer than all the other reads."""
    return await collect(client, f"/rest/api/group/{quote(group, safe='')}/member", _member_key,
                         window=window, typed=MEMBERS, ramp=True)


async def list_active(client: HttpClient, window: int) -> list[ActiveUser] | None:
    """Emails and last logins (9.3+); None when the server predates the endpoint (404)."""
    path = "/rest/api/admin/users/list/active"
    probe = await client.request("GET", path, params={"expand": "lastLogin", "start": 0, "limit": 1})
    if probe.status_code == 404:
        log.info("%s -> 404: Confluence before 9.3 reveals no emails or last logins; "
                 "desired users keyed by email match only when a source supplies their username",
                 client.url(path))
        return None
    raise_for(probe, "the account needs Confluence system administrator permission")
    return await collect(client, path, ActiveUser.parse, params={"expand": "lastLogin"}, window=window,
                         typed=ACTIVE)


async def username_of(client: HttpClient, user_key: str) -> str | None:
    """The username of a userKey now (`GET /rest/api/user?key=`); None when the user is gone."""
    response = await client.request("GET", "/rest/api/user", params={"key": user_key})
    if response.status_code == 404:
        return None
    raise_for(response, "the account needs Confluence system administrator permission")
    person = Person.parse(response.json())
    if person is None or person.username == norm(user_key):
        return None  # a deleted user's mapping survives as an anonymised alias named by its key
    return person.username


async def person_by_key(client: HttpClient, user_key: str) -> Person | None:
    """One user by userKey (`GET /rest/api/user?key=`); None when gone or anonymised."""
    response = await client.request("GET", "/rest/api/user", params={"key": user_key, "expand": "status"})
    if response.status_code == 404:
        return None
    raise_for(response, "the account needs Confluence system administrator permission")
    person = Person.parse(response.json())
    if person is None or person.username == norm(user_key):
        return None
    return person


async def user_key_of(client: HttpClient, username: str) -> str | None:
    """The userKey a username resolves to now (live user first); None when none does."""
    response = await client.request("GET", "/rest/api/user", params={"username": username})
    if response.status_code == 404:
        return None
    raise_for(response, "the account needs Confluence system administrator permission")
    person = Person.parse(response.json())
    return person.user_key if person else None
