"""The admin UI pages for "unsynced from directory" entries: a websudo session, the list, the delete form.

No REST API lists these entries or deletes one by userKey, so this is the one place that speaks the
admin UI: `GET /admin/users/showallunsyncedusers.action`, `POST /doauthenticate.action` (websudo),
`POST /admin/users/removeunsynceduser-confirm.action` (`userKey`, `atl_token`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

import httpx

from reconcile.errors import AuthError
from reconcile.http import HttpClient
from reconcile.model import norm
from reconcile.settings import Secret
from reconcile.targets.atlassian import fail

log = logging.getLogger(__name__)

LIST_PATH = "/admin/users/showallunsyncedusers.action"
DELETE_PATH = "/admin/users/removeunsynceduser-confirm.action"
WEBSUDO_PATH = "/doauthenticate.action"

_KEY = re.compile(r"userKey=([0-9A-Za-z]{8,64})")
_TASKS = (
    re.compile(r"taskId=([\w.:-]+)"),
    re.compile(r"""data-task-id=['"]([^'"]+)"""),
    re.compile(r"""name=['"]taskId['"][^>]*value=['"]([^'"]+)"""),
    re.compile(r"/rest/api/longtask/([\w.:-]+)"),
)


@dataclass(frozen=True, slots=True)
class UnsyncedEntry:
    user_key: str
    username: str  # lower-cased
    display_name: str | None = None


@dataclass(slots=True)
class _Row:
    key: str | None = None
    cells: list[tuple[str, str]] = field(default_factory=list)  # (class attribute, text)


class _Scraper(HTMLParser):
    """Rows of the unsynced users table (each names a userKey) and the page's XSRF token."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[_Row] = []
        self.token: str | None = None
        self.next_page: str | None = None
        self._row: _Row | None = None
        self._cell: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "meta" and a.get("name") in ("atlassian-token", "ajs-atl-token"):
            self.token = self.token or a.get("content")
        elif tag == "input" and a.get("name") == "atl_token":
            self.token = self.token or a.get("value")
        elif tag == "tr":
            self._row = _Row()
        elif tag in ("td", "th") and self._row is not None:
            self._cell = (a.get("class", ""), [])
        if self._row is not None:
            for name in ("href", "value", "data-user-key", "data-userkey"):
                value = a.get(name, "")
                match = _KEY.search(value)
                if match:
                    self._row.key = match.group(1)
                elif name.startswith("data-") and value:
                    self._row.key = value
            if tag == "input" and a.get("name") == "userKey" and a.get("value"):
                self._row.key = a["value"]
        if tag == "a" and "next" in (a.get("class", "") + a.get("rel", "")).lower() and a.get("href"):
            self.next_page = a["href"]

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.cells.append((self._cell[0], " ".join("".join(self._cell[1]).split())))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row.key:
                self.rows.append(self._row)
            self._row = None

    def entries(self) -> list[UnsyncedEntry]:
        out = []
        for row in self.rows:
            assert row.key is not None
            username = _cell(row, "username") or (row.cells[0][1] if row.cells else "")
            name = _cell(row, "fullname") or _cell(row, "full-name") or _cell(row, "displayname")
            if username:
                out.append(UnsyncedEntry(row.key, norm(username), name or None))
        return out


def _cell(row: _Row, cls: str) -> str | None:
    for classes, text in row.cells:
        if cls in classes.lower().split():
            return text
    return None


def _wants_websudo(response: httpx.Response) -> bool:
    location = response.headers.get("location", "")
    if response.is_redirect and "authenticate.action" in location:
        return True
    return response.status_code in (401, 403) and "websudo" in response.text.lower()


class AdminPages:
    """A browser-like session on the admin UI. `password` (Basic auth) lets it enter websudo."""

    def __init__(self, client: HttpClient, *, password: Secret | None) -> None:
        self.client = client
        self.password = password
        self.available: bool | None = None  # None: not tried yet
        self.token: str | None = None
        self.reason = ""

    def _has_session(self) -> bool:
        """Once the server gave a session, admin pages go by the cookie alone (websudo is per session)."""
        return "JSESSIONID" in self.client.cookies

    async def _websudo(self, destination: str) -> bool:
        if self.password is None:
            self.reason = ("the admin pages need a secure administrator session (websudo), which a "
                           "personal access token cannot open")
            return False
        response = await self.client.request(
            "POST", WEBSUDO_PATH, idempotent=True, session_only=self._has_session(),
            data={"password": self.password.reveal(), "authenticate": "Confirm", "destination": destination},
        )
        # Success is a redirect to the destination; a wrong password shows the form again.
        if not response.is_redirect or "authenticate.action" in response.headers.get("location", ""):
            raise AuthError(
                f"POST {self.client.url(WEBSUDO_PATH)} -> {response.status_code}: the password did not "
                "open a secure administrator session (websudo)",
                status=response.status_code,
                hint="check target.auth.password, or disable secure administrator sessions",
            )
        return True

    async def get(self, path: str) -> httpx.Response | None:
        """GET an admin page, entering websudo once if needed; None when websudo is impossible."""
        response = await self.client.request("GET", path, session_only=self._has_session())
        if _wants_websudo(response):
            if not await self._websudo(path):
                self.available = False
                return None
            response = await self.client.request("GET", path, session_only=self._has_session())
            if _wants_websudo(response):
                fail(response, "the server still asks for websudo; disable secure administrator sessions")
        if response.is_redirect and "login.action" in response.headers.get("location", ""):
            self.reason = "the server sent the admin page to the login form: the credentials are not " \
                          "accepted for the admin UI"
            self.available = False
            return None
        if response.is_error or response.is_redirect:
            fail(response, "the account needs Confluence system administrator permission")
        self.available = True
        return response

    async def entries(self) -> list[UnsyncedEntry] | None:
        """Every unsynced entry, following the page's "next" links; None when unavailable."""
        found: dict[str, UnsyncedEntry] = {}
        path: str | None = LIST_PATH
        seen: set[str] = set()
        while path and path not in seen:
            seen.add(path)
            response = await self.get(path)
            if response is None:
                return None
            scraper = _Scraper()
            scraper.feed(response.text)
            self.token = scraper.token or self.token
            for entry in scraper.entries():
                found.setdefault(entry.user_key, entry)
            path = scraper.next_page
        return list(found.values())

    async def delete(self, user_key: str) -> tuple[httpx.Response, str | None]:
        """Submit the delete form for one entry; returns the response and the long task id, if any."""
        if self.token is None:
            await self.entries()
        if self.token is None:
            raise AuthError(f"GET {self.client.url(LIST_PATH)}: no atl_token on the page",
                            hint="the page did not load as an administrator; check target.auth")
        form = {"userKey": user_key, "atl_token": self.token, "confirm": "Delete"}
        response = await self.client.request("POST", DELETE_PATH, idempotent=False,
                                             session_only=self._has_session(), data=form)
        if _wants_websudo(response):  # the 10-minute websudo window closed: nothing was done yet
            if not await self._websudo(LIST_PATH):
                fail(response, self.reason)
            await self.entries()  # a new session comes with a new atl_token
            form["atl_token"] = self.token or ""
            response = await self.client.request("POST", DELETE_PATH, idempotent=False,
                                                 session_only=self._has_session(), data=form)
        where = response.headers.get("location", "") + " " + (response.text if not response.is_redirect else "")
        for pattern in _TASKS:
            match = pattern.search(where)
            if match:
                return response, match.group(1)
        return response, None
