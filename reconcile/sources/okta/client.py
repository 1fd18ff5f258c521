"""Reading an Okta org: GETs through the shared HttpClient (SSWS or OAuth `private_key_jwt`), Okta's
`X-Rate-Limit-*` pacing, `Link: rel="next"` paging followed verbatim, and every failure as one
SourceError naming the source, the request and what to do. A source never writes: there is no other verb.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Mapping
from dataclasses import replace
from typing import Any, TypeVar

import httpx
import msgspec

from reconcile.errors import SourceError
from reconcile.http import (
    Backoff,
    Clock,
    ErrorKinds,
    HttpClient,
    OAuthToken,
    PrivateKeyJwt,
    RateHeaders,
    SigningKey,
    error_for,
    safe_url,
    ssws,
)
from reconcile.sources.okta.settings import OktaSourceSettings

log = logging.getLogger(__name__)

TOKEN_PATH = "/oauth2/v1/token"
# Okta's reset is epoch seconds on Okta's clock: read it against the answer's Date, not ours (as the SDKs do).
RATE_HEADERS = RateHeaders(remaining="x-rate-limit-remaining", reset="x-rate-limit-reset", reset_from_date=True)
Json = dict[str, Any]
T = TypeVar("T")


class OktaClient:
    """GET-only access to one Okta org; `pages(path, params)` yields each page's items."""

    def __init__(self, config: OktaSourceSettings, *, transport: httpx.AsyncBaseTransport | None = None,
                 backoff: Backoff | None = None, clock: Clock | None = None) -> None:
        self.config = config
        self.chains = 0  # user lists being read: their next page's request goes before other answers' work
        self.where = f"source '{config.name}' (okta)"
        self.setting = f"sources.{config.name}"
        settings = replace(config.http, concurrency=config.concurrency)
        kinds = ErrorKinds(error=self._error, url_setting=f"{self.setting}.url",
                           request_ids=("x-okta-request-id",))
        options: dict[str, Any] = {"settings": settings, "rate_headers": RATE_HEADERS, "transport": transport,
                                   "backoff": backoff, "clock": clock}
        self._token_client: HttpClient | None = None
        auth: httpx.Auth | None = None
        if config.token is not None:
            auth = ssws(config.token)
        elif config.client_id and config.private_key is not None:
            token_kinds = replace(kinds, error=self._token_error)
            self._token_client = HttpClient(config.url, auth=None, errors=token_kinds, **options)
            grant = PrivateKeyJwt(config.client_id, SigningKey(config.private_key, "RS256", config.key_id))
            auth = OAuthToken(f"{config.url}{TOKEN_PATH}", grant, client=self._token_client,
                              scope=" ".join(config.scopes))
        self.oauth = self._token_client is not None
        self.http = HttpClient(config.url, auth=auth, errors=kinds, **options)

    async def aclose(self) -> None:
        await self.http.aclose()
        if self._token_client is not None:
            await self._token_client.aclose()

    @property
    def requests(self) -> int:
        return self.http.requests + (self._token_client.requests if self._token_client else 0)

    def _error(self, message: str, *, status: int | None = None, hint: str | None = None) -> Exception:
        return SourceError(f"{self.where}: {message}", hint=hint)

    def _token_error(self, message: str, *, status: int | None = None, hint: str | None = None) -> Exception:
        auth = f"{self.setting}.auth"
        return SourceError(f"{self.where}: {message}", hint=(
            f"check {auth}.client_id, {auth}.private_key (its public key must be registered on the service app, "
            f"{auth}.key_id naming it), the scopes granted on the app's Okta API Scopes tab, and that DPoP is "
            "not required" if status in (400, 401) else hint))

    def hint(self, status: int, what: str) -> str:
        """What to do about a refused read; `what` names the setting the request came from."""
        if status == 401:
            if self.oauth:
                return (f"Okta refused the service app's access token; check {self.setting}.auth.client_id and "
                        "that the app is still active")
            return (f"check {self.setting}.auth.token: an Okta API token (sent as SSWS) that is wrong, revoked, or "
                    "unused for 30 days (then Okta revokes it); create one under Security > API > Tokens")
        if status == 403:
            if self.oauth:
                return (f"grant the service app the scopes {', '.join(self.config.scopes)} (Okta API Scopes tab; "
                        f"also list them in {self.setting}.auth.scopes) and a read-only admin role")
            return "the API token's admin lacks permission to read users and groups; use a read-only admin's token"
        if status == 400:
            return f"Okta rejected {what}; fix the expression (Okta's filter/search syntax, quoted values)"
        if status == 404:
            return "the group disappeared while it was read (deleted or renamed in Okta); run again"
        if status == 429:
            return f"Okta's rate limit: lower {self.setting}.concurrency, or raise the app's rate limit in Okta"
        return "Okta (or something in between) failed; try again later"

    async def get(self, path: str, params: Mapping[str, str] | None, what: str,
                  sent: asyncio.Event | None = None, first: bool = False) -> httpx.Response:
        """One GET; the answer must be Okta's JSON and a success, else a SourceError. `sent` is set once the
        request is written (`HttpClient.request`'s `on_sent`); `first`: a chain's, ahead of waiting requests."""
        response = await self.http.request("GET", path, params=params,
                                           on_sent=sent.set if sent is not None else None, first=first)
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if not kind.endswith("json"):
            await response.aread()
            raise SourceError(
                f"{self.where}: GET {safe_url(response.request.url)} -> {response.status_code}: the answer is "
                f"{kind or 'without a content type'}, not Okta's JSON (a proxy or login page answered?)",
                hint=f"check {self.setting}.url (the org URL, e.g. https://acme.okta.com) and any proxy in between")
        if response.is_error:
            raise error_for(response, self.hint(response.status_code, what), self.http.errors)
        return response

    async def pages(self, path: str, params: Mapping[str, str] | None, what: str,
                    decoder: msgspec.json.Decoder[list[T]], chain: bool = False) -> AsyncGenerator[list[T], None]:
        """Every page of a list, decoded by `decoder` (typed: only the fields read are kept), following
        `Link: <…>; rel="next"` verbatim until there is none.

        The next page is requested as soon as its link is known (from the headers), before this page is
        decoded and used: a chain of pages then costs its latency per page, not latency plus our CPU. At most
        one request of the chain is in flight; a failure (or the caller stopping, or a cancel) cancels it,
        so callers close this generator (`contextlib.aclosing`) to stop the request at once.

        `chain`: the read's longest path (a user list). While one runs, another list's answer waits two turns
        of the loop before it is decoded: a chain's next request, started as a task when its answer came in
        the same bunch, is then written first, not after every other answer of the bunch is handled."""
        seen: set[str] = set()
        following: asyncio.Future[httpx.Response] | None = None
        self.chains += chain
        try:
            response = await self.get(path, params, what, first=chain)
            while True:
                if self.chains and not chain:
                    await asyncio.sleep(0)
                    await asyncio.sleep(0)
                try:
                    url: str | None = self._next(response, seen)
                    stray: SourceError | None = None
                except SourceError as exc:  # raised after this page is decoded, in the order it always was
                    url, stray = None, exc
                if url is not None:  # the next link carries the query
                    sent = asyncio.Event()
                    following = asyncio.ensure_future(self.get(url, None, what, sent, first=chain))
                    await _sent_or_done(sent, following)  # on its way before this page is decoded
                yield self._decode(response, decoder, what)
                if stray is not None:
                    raise stray
                if following is None:
                    return
                response = await following
                following = None
        finally:
            self.chains -= chain
            if following is not None:  # not awaited: the caller stopped, or this page failed
                following.cancel()
                await asyncio.gather(following, return_exceptions=True)

    def _decode(self, response: httpx.Response, decoder: msgspec.json.Decoder[list[T]], what: str) -> list[T]:
        try:
            return decoder.decode(response.content)
        except msgspec.ValidationError:
            raise SourceError(f"{self.where}: GET {safe_url(response.request.url)} -> {response.status_code}: "
                              "expected a list of Okta objects", hint=f"check {self.setting}.url") from None
        except msgspec.DecodeError:
            raise SourceError(f"{self.where}: GET {safe_url(response.request.url)} -> {response.status_code}: "
                              "the answer is not valid JSON", hint=self.hint(0, what)) from None

    def _next(self, response: httpx.Response, seen: set[str]) -> str | None:
        link = response.links.get("next", {}).get("url")
        if not link:
            return None
        if not link.startswith(self.config.url + "/"):  # the token must not travel to another host
            raise SourceError(f"{self.where}: GET {safe_url(response.request.url)}: the next page's link "
                              f"{safe_url(link)} is outside "
                              f"{self.config.url}", hint=f"check {self.setting}.url: use the org URL Okta "
                              "itself names in its links")
        if link in seen:
            raise SourceError(f"{self.where}: GET {safe_url(response.request.url)}: the next page's link repeats "
                              "an earlier one",
                              hint="Okta's paging went round in a circle; run again later")
        seen.add(link)
        return link


async def _sent_or_done(sent: asyncio.Event, request: asyncio.Future[httpx.Response]) -> None:
    """Wait until `request` is written to its connection, or over (in-process transports say nothing)."""
    signal = asyncio.ensure_future(sent.wait())
    try:
        await asyncio.wait((signal, request), return_when=asyncio.FIRST_COMPLETED)
    finally:
        signal.cancel()
