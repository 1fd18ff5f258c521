"""Reads from the Organizations API: directories, cursor-paginated user and group searches.

Owns pagination (opaque `links.next` cursors, limit 100, a guard against a cursor repeating) and
the single-object re-reads the writer uses to decide what a failed or ambiguous write did.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import msgspec

from reconcile.errors import TargetError
from reconcile.http import HttpClient
from reconcile.targets.atlassian import error_for, fail
from reconcile.targets.atlassian_cloud.account import Account, CloudGroup
from reconcile.targets.atlassian_cloud.items import USER_PAGE, UserItem, item_of

log = logging.getLogger(__name__)
T = TypeVar("T")

PAGE = 100
USER_EXPAND = ["groups", "productAccess", "platformRoles"]
READ_HINT = "check target.org_id and that the organization API key is valid and has no scopes"


class OrgReader:
    def __init__(self, http: HttpClient, org_id: str) -> None:
        self.http = http
        self.org = f"/admin/v2/orgs/{org_id}"

    async def directories(self) -> dict[str, str]:
        """Directory id -> name, every directory the API key may manage."""
        out: dict[str, str] = {}
        params: dict[str, Any] = {"limit": PAGE}
        seen: set[str] = set()
        while True:
            response = await self.http.request("GET", f"{self.org}/directories", params=params)
            if response.status_code != 200:
                fail(response, READ_HINT)
            body = _json(response)
            for item in body.get("data") or []:
                out[str(item["directoryId"])] = str(item.get("name") or item["directoryId"])
            links = body.get("links")
            nxt = links.get("next") if isinstance(links, Mapping) else None
            cursor = _next_cursor(nxt, seen, self.http.url(f"{self.org}/directories"))
            if cursor is None:
                return out
            params = {"limit": PAGE, "cursor": cursor}

    def pages(self, what: str, directory: str, query: Mapping[str, Any]) -> AsyncIterator[list[Any]]:
        """Each page of `POST …/directories/{directory}/{what}/search` (what: users | groups), as JSON items."""
        return self._search(what, directory, query, _json_page)

    def users(self, directory: str, query: Mapping[str, Any],
              on_sent: Callable[[], None] | None = None) -> AsyncIterator[list[UserItem]]:
        """Each page of `users/search`, decoded into typed items (`items.py`) without a dict per user;
        `on_sent` is called as each request is written (`HttpClient.request`)."""
        return self._search("users", directory, query, _user_page, on_sent)

    async def _search(self, what: str, directory: str, query: Mapping[str, Any],
                      read: Callable[[Any], tuple[list[T], object]],
                      on_sent: Callable[[], None] | None = None) -> AsyncIterator[list[T]]:
        """The cursor chain of one search: `read` turns an answer into its items and `links.next`."""
        path = f"{self.org}/directories/{directory}/{what}/search"
        where = self.http.url(path)  # for the repeated-cursor error: once, not per page
        body: dict[str, Any] = {**query, "limit": PAGE}
        seen: set[str] = set()
        while True:
            response = await self.http.request("POST", path, json=body, idempotent=True, on_sent=on_sent)
            if response.status_code != 200:
                fail(response, READ_HINT)
            items, nxt = read(response)
            yield items
            cursor = _next_cursor(nxt, seen, where)
            if cursor is None:
                return
            body = {**query, "limit": PAGE, "cursor": cursor}

    async def account(self, account_id: str, directory: str) -> Account | None:
        """A fresh read of one account in `directory` (`-`: all), or None when it is not there."""
        query = {"accountIds": [account_id], "expand": USER_EXPAND}
        found: Account | None = None
        async for page in self.users(directory, query):
            for item in page:
                if item.account_id == account_id:
                    acct = Account.from_item(item, directory)
                    found = acct if found is None else found.merge(acct)
        return found

    async def group(self, name: str, directory: str) -> list[CloudGroup]:
        """Groups named `name` (case-insensitively) in `directory` (`-`: all)."""
        out = []
        async for page in self.pages("groups", directory, {"groupNames": [name]}):
            out += [CloudGroup.from_json(g, directory) for g in page if str(g["name"]).lower() == name.lower()]
        return out


def _json_page(response: Any) -> tuple[list[Any], object]:
    data = _json(response)
    links = data.get("links")
    return list(data.get("data") or []), links.get("next") if isinstance(links, Mapping) else None


def _user_page(response: Any) -> tuple[list[UserItem], object]:
    try:
        page = USER_PAGE.decode(response.content)
    except msgspec.DecodeError:  # not the usual shape: the generic reading decides, as before
        items, nxt = _json_page(response)
        return [item_of(item) for item in items], nxt
    return page.data or [], page.links.next if page.links else None


def _json(response: Any) -> dict[str, Any]:
    try:
        # msgspec: several times faster than json on 100-user pages; anything it refuses (not UTF-8,
        # NaN, ...) is left to httpx's reading, which decides as before
        body = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        body = None
    try:
        body = response.json() if body is None else body
    except ValueError:
        raise error_for(response, "the server did not answer with JSON: is target.url the admin API "
                        "(https://api.atlassian.com)?") from None
    if not isinstance(body, dict):
        raise error_for(response, "unexpected response shape: is target.url the admin API?")
    return body


def _next_cursor(nxt: object, seen: set[str], where: str) -> str | None:
    """The cursor of the next page (`links.next`), or None on the last; raises if the server repeats itself."""
    if not nxt:
        return None
    cursor = str(nxt)
    if cursor.startswith(("http://", "https://")):  # a link rather than a bare cursor
        cursor = parse_qs(urlsplit(cursor).query).get("cursor", [cursor])[0]
    if cursor in seen:
        raise TargetError(
            f"POST {where}: the server returned the cursor {cursor!r} twice; stopped reading to avoid "
            "an endless loop (the listing would be incomplete)",
            hint="retry later; if it persists, report it to Atlassian support with this cursor",
        )
    seen.add(cursor)
    return cursor
