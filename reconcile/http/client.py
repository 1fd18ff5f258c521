"""`HttpClient`: an `httpx.AsyncClient` on `RetryTransport` over `Lanes`, with the caller's auth, headers,
error classes and rate-limit header names. Every HTTP source and target talks through one.
"""

from __future__ import annotations

import functools
import re
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

import httpx

from reconcile.http.errors import ErrorKinds, safe_url
from reconcile.http.pacing import Backoff, Clock, RateGate, RateHeaders
from reconcile.http.transport import FIRST, IDEMPOTENT, Lanes, RetryPolicy, RetryTransport
from reconcile.settings import HttpSettings


@functools.lru_cache(maxsize=8)
def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The verifying TLS context for a CA bundle (None: httpx's default bundle), one per process for every lane of
    every client: loading a bundle costs ~20 ms of CPU, and a run builds a client per source and target."""
    return ssl.create_default_context(cafile=ca_file) if ca_file else httpx.create_ssl_context()


class HttpClient:
    """Requests to one API: `request` retries and paces as `RetryTransport` says, at most
    `settings.concurrency` at a time; refusals are returned, and `raise_for`/`error_for` (errors.py)
    turn them into the caller's error class. Transport failures raise it directly."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: httpx.Auth | None,
        settings: HttpSettings,
        errors: ErrorKinds,
        headers: Mapping[str, str] | None = None,
        rate_headers: RateHeaders | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff: Backoff | None = None,
        clock: Clock | None = None,
        permanent: Callable[[httpx.Response], bool] | None = None,
        throttled: Callable[[httpx.Response], bool] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._prefix = self.base_url + "/"
        self.settings = settings
        self.errors = errors
        self.backoff = backoff or Backoff()
        self.clock = clock or Clock()
        lanes = max(1, settings.concurrency)
        self.gate = RateGate(self.backoff, settings.concurrency, self.clock, rate_headers)
        if transport is not None:
            inner = Lanes.shared(lanes, transport)
        else:
            verify: Callable[[], ssl.SSLContext] | Literal[False] = False
            if settings.verify_tls:
                verify = functools.partial(tls_context, settings.ca_file)
            inner = Lanes.network(lanes, self.base_url, verify)
        policy = RetryPolicy(retries=settings.max_retries, permanent=permanent, throttled=throttled)
        self.transport = RetryTransport(inner, errors=errors, policy=policy, gate=self.gate,
                                        backoff=self.backoff, clock=self.clock)
        self._client = _Client(
            base_url=self.base_url,
            auth=auth,
            headers={"Accept": "application/json", "User-Agent": "reconcile", **(headers or {})},
            timeout=httpx.Timeout(settings.timeout),
            transport=self.transport,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    @property
    def requests(self) -> int:
        """Requests sent, retries included."""
        return self.transport.requests

    @property
    def reached(self) -> bool:
        """Whether the server has answered at least once."""
        return self.transport.reached

    @property
    def cookies(self) -> httpx.Cookies:
        """The session cookies the server set (never logged)."""
        return self._client.cookies

    def url(self, path: str) -> str:
        """The absolute URL of `path` (appended to the base URL, as httpx does), masked."""
        if path.startswith(("http://", "https://")):
            return safe_url(path)
        return safe_url(f"{self.base_url}/{path.lstrip('/')}")

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        session_only: bool = False,
        on_sent: Callable[[], None] | None = None,
        first: bool = False,
    ) -> httpx.Response:
        """Send one request (retried as `RetryTransport` says) and return the final response.

        `idempotent` overrides the method's default (a search sent as POST is safe to repeat).
        `session_only` sends no Authorization header: the session cookie alone authenticates (admin
        pages that tie a re-authenticated session to its cookie).
        `on_sent` is called once the request is written to the connection (httpcore's trace; a transport in
        process never calls it): a cursor chain may then work on the page it has while this one travels.
        `first`: a cursor chain's next page, which takes the next free lane before other waiting requests.
        """
        extensions: dict[str, Any] | None = {IDEMPOTENT: idempotent} if idempotent is not None else None
        if first:
            extensions = {**(extensions or {}), FIRST: True}
        if on_sent is not None:
            extensions = {**(extensions or {}), "trace": _written(on_sent)}
        options: dict[str, Any] = {"auth": None} if session_only else {}
        response = await self._client.request(method.upper(), self._url(path, params), json=json, data=data,
                                              headers=headers, extensions=extensions, **options)
        # The body is read: a plain stream of it in place of httpx's, which refers back to the response. That
        # cycle (response, request, headers, body) outlived each page until a full collection of the heap.
        response.stream = httpx.ByteStream(response.content)
        return response

    def _url(self, path: str, params: Mapping[str, Any] | None) -> httpx.URL:
        """The URL httpx would build from the base URL, `path` and `params` (params replace the path's
        query, as `httpx.URL(url, params=...)` does), parsed once: httpx's own merging re-parses it
        four more times, character by character: ~12% of a 100,000-user plan's CPU."""
        full = path if path.startswith(("http://", "https://")) else self._prefix + path.lstrip("/")
        if params is not None:
            full = full.partition("?")[0]
            if params:
                full = f"{full}?{_query(params)}"
        return httpx.URL(full)


def _written(on_sent: Callable[[], None]) -> Callable[[str, dict[str, Any]], Awaitable[None]]:
    """An httpcore `trace` callback that calls `on_sent` when the request (headers and body) is written."""

    async def trace(event: str, info: dict[str, Any]) -> None:
        if event.endswith(".send_request_body.complete"):
            on_sent()

    return trace


_PLAIN = re.compile(r"[A-Za-z0-9._~-]*")  # RFC 3986 unreserved: what percent-encoding leaves as it is


def _query(params: Mapping[str, Any]) -> str:
    """`str(httpx.QueryParams(params))`, without its per-character quoting when every name and value is a plain
    word or number (the paging parameters of every read), which is most of the cost of building a page's URL."""
    parts = []
    for key, value in params.items():
        # An int, not a bool (httpx writes `true`) nor an int subclass (its own str()).
        text = str(value) if type(value) is int else value
        if type(text) is not str or not _PLAIN.fullmatch(key) or not _PLAIN.fullmatch(text):
            return str(httpx.QueryParams(params))
        parts.append(f"{key}={text}")
    return "&".join(parts)


class _SessionCookies(httpx.Cookies):
    """The client's cookie jar: a response that sets no cookie is not handed to `http.cookiejar`, which wraps it
    and its request in urllib objects just to find nothing (~15% of the client's CPU per request)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


class _Client(httpx.AsyncClient):
    """An `httpx.AsyncClient` whose cookie jar is a `_SessionCookies` (httpx reads it through this property)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._session = _SessionCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._session

    @cookies.setter
    def cookies(self, cookies: Any) -> None:  # httpx's CookieTypes
        self._session = _SessionCookies(cookies)
