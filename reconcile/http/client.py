"""The one place httpx is configured: auth, timeouts, retries with backoff, rate-limit pacing, errors.

Both HTTP targets (Confluence DC, Atlassian Cloud) talk through `HttpClient`; `raise_for` turns a
refused response into a `TargetError("METHOD url -> status: what to do")`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
from collections.abc import Callable, Generator, Mapping
from http.cookiejar import CookieJar
from typing import Any, NoReturn
from urllib.parse import parse_qsl, urlencode

import httpx

from reconcile.errors import AuthError, TargetError
from reconcile.settings import HttpSettings, Secret
from reconcile.targets.pacing import Backoff, Clock, RateGate, seconds_until

__all__ = ["Backoff", "Clock", "HttpClient", "RateGate", "basic", "bearer", "error_for", "fail", "raise_for",
           "request_id", "safe_url", "seconds_until"]

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})  # 500: only idempotent, not `permanent`
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
SECRET_PARAMS = ("token", "password", "secret", "api_key", "apikey", "atl_token", "os_password")
REQUEST_ID_HEADERS = ("x-arequestid", "x-request-id", "atl-traceid", "x-b3-traceid")


class BearerAuth(httpx.Auth):
    """`Authorization: Bearer <token>` (Confluence DC personal access token, Cloud API key)."""

    def __init__(self, secret: Secret) -> None:
        self._secret = secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._secret.reveal()}"
        yield request

    def __repr__(self) -> str:
        return f"BearerAuth({self._secret!r})"


def bearer(secret: Secret) -> httpx.Auth:
    return BearerAuth(secret)


def basic(user: str, secret: Secret) -> httpx.Auth:
    return httpx.BasicAuth(user, secret.reveal())


def safe_url(url: httpx.URL | str) -> str:
    """The URL for messages and logs: credentials in the userinfo or query are masked."""
    u = httpx.URL(str(url))
    if u.userinfo:
        u = u.copy_with(username=None, password=None)
    if u.query:
        pairs = parse_qsl(u.query.decode(), keep_blank_values=True)
        masked = [(k, "***" if any(s in k.lower() for s in SECRET_PARAMS) else v) for k, v in pairs]
        u = u.copy_with(query=urlencode(masked, safe="*,").encode())
    return str(u)


def request_id(response: httpx.Response) -> str | None:
    """The server's id for this request (`X-AREQUESTID` on Confluence DC), for the audit log."""
    for name in REQUEST_ID_HEADERS:
        value = response.headers.get(name)
        if value:
            return str(value)
    return None


def _server_message(response: httpx.Response) -> str:
    """The server's own explanation, short, in its words (never a Python repr): the JSON error fields
    of Confluence DC (`message`), the Cloud APIs (`errors[].title`/`detail`, `errorMessage`), Jira-style
    `errorMessages` / `errors: {field: message}` and problem+json (`title`, `detail`); else the text."""
    try:
        body = response.json()
    except ValueError:
        text = " ".join(response.text.split())
        return text[:200]
    texts = _error_texts(body, top=True)
    return "; ".join(dict.fromkeys(texts))[:300]  # once each, in order


def _error_texts(value: Any, *, top: bool = False) -> list[str]:
    if isinstance(value, str):
        return [" ".join(value.split())] if value.strip() else []
    if isinstance(value, list):
        return [t for item in value for t in _error_texts(item)]
    if not isinstance(value, dict):
        return []
    said = [t for key in ("message", "errorMessage") for t in _error_texts(value.get(key))]
    title, detail = _error_texts(value.get("title")), _error_texts(value.get("detail"))
    said += [f"{title[0]}: {detail[0]}"] if title and detail and title != detail else title or detail
    if said:
        return said
    if top:  # the lists of messages and of per-field messages
        return [t for key in ("errorMessages", "errors") for t in _error_texts(value.get(key))]
    # {"field": "message"} (Jira-style `errors`)
    return [f"{k}: {t}" for k, v in value.items() if isinstance(v, str) for t in _error_texts(v)]


def error_for(response: httpx.Response, what_to_do: str) -> TargetError:
    """The error for a refused response: `METHOD url -> status: server says; what to do`."""
    req = response.request
    detail = _server_message(response)
    rid = request_id(response)
    head = f"{req.method} {safe_url(req.url)} -> {response.status_code}"
    if rid:
        head += f" (request id {rid})"
    message = f"{head}: {detail}" if detail else head
    if response.status_code == 401:
        return AuthError(message, status=401, hint=what_to_do)
    if response.status_code == 429:
        what_to_do = f"{what_to_do} (rate limited: lower `concurrency` or raise the server's limit)"
    return TargetError(message, status=response.status_code, hint=what_to_do)


def raise_for(response: httpx.Response, what_to_do: str) -> None:
    """Raise `error_for(response, what_to_do)` when the response is an error (4xx/5xx)."""
    if response.is_error:
        raise error_for(response, what_to_do)


def fail(response: httpx.Response, what_to_do: str) -> NoReturn:
    """Raise for a response the caller did not expect, whatever its status."""
    raise error_for(response, what_to_do)


class HttpClient:
    """An `httpx.AsyncClient` with the behaviour every Atlassian API needs.

    `request` retries transient failures with exponential backoff and jitter, honouring
    `Retry-After`: 429/500/502/503/504 and dropped connections or timeouts of idempotent requests. A
    request that is not idempotent (POST, PATCH, or `idempotent=False`) is retried only when it
    cannot have reached the server or was refused by the rate limiter (429); otherwise the last
    response is returned (or the transport error raised) so that the caller can re-read the state.
    Until the server has answered once, a refused connection or an unknown host is reported at
    once: nothing listens there, and retrying would only make the user wait. Each retry is logged
    at WARNING (`retrying GET <url> (2/4) after 503`).
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: httpx.Auth | None,
        settings: HttpSettings,
        flavor: str,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff: Backoff | None = None,
        permanent: Callable[[httpx.Response], bool] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.settings = settings
        self.flavor = flavor
        self.backoff = backoff or Backoff()
        self.clock = clock or Clock()
        self.permanent = permanent  # a refusal the server would repeat (DC: read-only directory)
        self.gate = RateGate(self.backoff, settings.concurrency, self.clock)
        lanes = max(1, settings.concurrency)
        self._slots = asyncio.Semaphore(lanes)
        headers = {"Accept": "application/json", "User-Agent": "reconcile"}
        if flavor == "dc":
            headers["X-Atlassian-Token"] = "no-check"
        verify: ssl.SSLContext | bool = False
        if settings.verify_tls:  # one context for every lane: loading the CA bundle is not free
            verify = (ssl.create_default_context(cafile=settings.ca_file) if settings.ca_file
                      else httpx.create_ssl_context())
        # One single-connection client per concurrent request ("lane") rather than one pool of N
        # connections: httpcore re-checks every pooled connection on each request, which made the
        # pool the largest CPU cost of a 100,000-user fetch (measured: half the CPU, half the wall).
        # The lanes share one cookie jar, so a session (websudo) holds whichever lane is used.
        self._jar = CookieJar()
        self._lanes = [
            httpx.AsyncClient(
                base_url=self.base_url,
                auth=auth,
                headers=headers,
                cookies=self._jar,
                timeout=httpx.Timeout(settings.timeout),
                verify=verify,
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                transport=transport,
                follow_redirects=False,
            )
            for _ in range(lanes)
        ]
        self._free = list(self._lanes)
        self.requests = 0  # requests sent, retries included
        self.reached = False  # whether the server has answered at least once

    async def aclose(self) -> None:
        for lane in self._lanes:
            await lane.aclose()

    @property
    def cookies(self) -> httpx.Cookies:
        """The session cookies the server set (never logged)."""
        return httpx.Cookies(self._jar)

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
    ) -> httpx.Response:
        """Send one request (retrying as the class docstring says) and return the final response.

        `session_only` sends no Authorization header: the session cookie alone authenticates (the
        Confluence admin pages after websudo, which tie websudo to the session).
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        attempt = 0
        retries = self.settings.max_retries
        while True:
            await self.gate.wait()
            started = self.clock.monotonic()
            try:
                response = await self._send(method, path, params=params, json=json, data=data,
                                            headers=headers, session_only=session_only)
            except httpx.TransportError as exc:
                url = self.url(path)
                log.debug("%s %s -> %s in %.0f ms", method, url, type(exc).__name__,
                          (self.clock.monotonic() - started) * 1000)
                if _is_tls(exc):
                    raise TargetError(
                        f"{method} {url} -> TLS verification failed: {exc}",
                        hint="check the URL, or set the CA bundle that signed the server's certificate",
                    ) from exc
                not_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
                if not self.reached and isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                    raise _unreachable(method, url, exc) from exc
                if attempt < retries and (idempotent or not_sent):
                    delay = self.backoff.delay(attempt)
                    attempt += 1
                    log.warning("retrying %s %s (%d/%d) after %s", method, url, attempt, retries,
                                _failure(exc))
                    await self.clock.sleep(delay)
                    continue
                raise _transport_error(method, url, exc, idempotent, not_sent) from exc
            self.reached = True
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s %s -> %d in %.0f ms", method, safe_url(response.request.url),
                          response.status_code, (self.clock.monotonic() - started) * 1000)
            self.gate.observe(response.headers)
            status = response.status_code
            if status not in RETRY_STATUSES or attempt >= retries:
                return response
            if not idempotent and status != 429:
                return response  # it may have been processed: the caller re-reads
            if status == 500 and self.permanent is not None:
                await response.aread()
                if self.permanent(response):
                    return response
            wait = self._wait(response, attempt)
            if status in (429, 503):
                self.gate.pause(wait)  # everybody waits, not just this worker
            attempt += 1
            log.warning("retrying %s %s (%d/%d) after %d", method, safe_url(response.request.url),
                        attempt, retries, status)
            await response.aread()
            if status not in (429, 503):
                await self.clock.sleep(wait)

    def _wait(self, response: httpx.Response, attempt: int) -> float:
        """How long to wait before retrying `response`: its Retry-After, else its rate-limit reset
        (429), else our own schedule. Never 0 after a 429 (a hot loop), never above `max_wait`."""
        wait = seconds_until(response.headers.get("retry-after"), self.clock.wall())
        if wait is None and response.status_code == 429:
            wait = self.gate.reset_in(response.headers)
        if wait is None or (wait <= 0 and response.status_code == 429):
            return min(self.backoff.delay(attempt), self.backoff.max_wait)
        return min(max(wait, 0.0), self.backoff.max_wait) * self.backoff.rng.uniform(1.0, self.backoff.jitter[1])

    async def _send(self, method: str, path: str, *, session_only: bool, **kwargs: Any) -> httpx.Response:
        async with self._slots:
            lane = self._free.pop()  # the semaphore guarantees one is free
            try:
                self.requests += 1
                if session_only:
                    return await lane.request(method, path, auth=None, **kwargs)
                return await lane.request(method, path, **kwargs)
            finally:
                self._free.append(lane)


def _failure(exc: httpx.TransportError) -> str:
    """A transport failure in a few words, for the retry log line."""
    return {
        httpx.ConnectError: "a refused connection",
        httpx.ConnectTimeout: "a connect timeout",
        httpx.ReadTimeout: "a read timeout",
        httpx.WriteTimeout: "a write timeout",
        httpx.PoolTimeout: "a pool timeout",
        httpx.RemoteProtocolError: "a dropped connection",
        httpx.ReadError: "a connection reset",
    }.get(type(exc), type(exc).__name__)


def _unreachable(method: str, url: str, exc: httpx.TransportError) -> TargetError:
    """Nothing answered the first request: say what (refused, unknown host, timeout) and what to do."""
    host = httpx.URL(url).host
    port = httpx.URL(url).port
    where = f"{host}:{port}" if port else host
    causes = list(_chain(exc))
    if any(isinstance(c, socket.gaierror) for c in causes):
        what = f"unknown host {host!r}"
        hint = "check target.url (spelling, DNS, proxy)"
    elif isinstance(exc, httpx.ConnectTimeout):
        what = f"no answer from {where} within the timeout"
        hint = "check target.url, and that the server is reachable from here (firewall, VPN, proxy)"
    else:
        what = f"connection refused: nothing listens on {where}"
        hint = "check target.url, and that the server is running"
    if _loopback(host):
        hint = "is the simulator running? start it with `reconcile sim`, or " + hint
    return TargetError(f"{method} {url} -> could not connect: {what}", hint=hint)


def _chain(exc: BaseException) -> Generator[BaseException, None, None]:
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return
        yield seen
        seen = seen.__cause__ or seen.__context__


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _is_tls(exc: BaseException) -> bool:
    """Whether a transport error is a TLS failure (retrying would not help)."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _transport_error(
    method: str, url: str, exc: httpx.TransportError, idempotent: bool, not_sent: bool
) -> TargetError:
    what = {
        httpx.ConnectError: "could not connect",
        httpx.ConnectTimeout: "timed out connecting",
        httpx.ReadTimeout: "timed out waiting for the response",
        httpx.WriteTimeout: "timed out sending the request",
        httpx.PoolTimeout: "timed out waiting for a free connection",
        httpx.RemoteProtocolError: "the server closed the connection",
        httpx.ReadError: "the connection failed while reading",
    }.get(type(exc), "the request failed")
    detail = str(exc) or type(exc).__name__
    if not_sent:
        hint = "check the URL, that the server is running and reachable (DNS, firewall, proxy)"
    elif idempotent:
        hint = "the server is failing or overloaded; try again later or lower `concurrency`"
    else:
        hint = "the change may or may not have been made; re-run plan to see the current state"
    return TargetError(f"{method} {url} -> {what}: {detail}", hint=hint)
