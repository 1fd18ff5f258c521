"""The one place httpx is configured: auth, timeouts, retries with backoff, rate-limit pacing, errors.

Both HTTP targets (Confluence DC, Atlassian Cloud) talk through `HttpClient`; `raise_for` turns a
refused response into a `TargetError("METHOD url -> status: what to do")`.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import ssl
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.cookiejar import CookieJar
from typing import Any, NoReturn
from urllib.parse import parse_qsl, urlencode

import httpx

from reconcile.errors import AuthError, TargetError
from reconcile.settings import HttpSettings, Secret

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})  # 500: only idempotent, not `permanent`
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
SECRET_PARAMS = ("token", "password", "secret", "api_key", "apikey", "atl_token", "os_password")
REQUEST_ID_HEADERS = ("x-arequestid", "x-request-id", "atl-traceid", "x-b3-traceid")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Retry timing. Atlassian's guidance: a few retries, doubling delays capped at 30 s, jitter."""

    base: float = 0.5  # first delay without a Retry-After, seconds
    cap: float = 30.0  # longest computed delay
    max_wait: float = 60.0  # clamp for a server-sent Retry-After / reset (seen: 9223372036854775807)
    jitter: tuple[float, float] = (0.7, 1.3)  # multiplier range
    pace_below: int = 0  # pace when X-RateLimit-Remaining <= this; 0: 2 x concurrency

    def delay(self, attempt: int) -> float:
        """The jittered exponential delay before retry number `attempt` (0-based)."""
        return float(min(self.cap, self.base * 2**attempt) * random.uniform(*self.jitter))


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


def seconds_until(value: str | None) -> float | None:
    """A Retry-After (seconds or HTTP date) or X-RateLimit-Reset (ISO 8601, epoch) as seconds from now."""
    if not value:
        return None
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if number > 1e9 and number < 1e11:  # an epoch timestamp
            return number - time.time()
        return number
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp() - time.time()


class RateGate:
    """Shared by every caller of one client: a pause all workers honour, and proactive pacing.

    A 429 seen by one worker moves `resume_at` forward for all of them; while the server reports
    few remaining tokens, requests are spaced at the server's refill rate instead of bursting.
    """

    def __init__(self, backoff: Backoff, concurrency: int) -> None:
        self.backoff = backoff
        self.pace_below = backoff.pace_below or max(2, 2 * concurrency)
        self.resume_at = 0.0  # monotonic time before which nobody sends
        self.spacing = 0.0  # seconds between requests while pacing (0: not pacing)
        self.next_slot = 0.0
        self.pauses = 0  # how many times a 429/503 paused everyone (for tests and logs)

    async def wait(self) -> None:
        """Return when this caller may send: after any shared pause, in its pacing slot."""
        while True:
            now = time.monotonic()
            if self.resume_at > now:
                await asyncio.sleep(self.resume_at - now)
                continue
            if not self.spacing:
                return
            slot = max(now, self.next_slot)
            self.next_slot = slot + self.spacing  # reserve it: concurrent callers queue behind
            if slot > now:
                await asyncio.sleep(slot - now)
            if self.resume_at <= time.monotonic():
                return

    def pause(self, seconds: float) -> None:
        seconds = min(max(seconds, 0.0), self.backoff.max_wait)
        until = time.monotonic() + seconds
        if until > self.resume_at:
            self.resume_at = until
            self.pauses += 1

    def observe(self, headers: httpx.Headers) -> None:
        """Adjust pacing from `X-RateLimit-*` (DC: FillRate/Interval-Seconds; Cloud: Reset)."""
        remaining = _int(headers.get("x-ratelimit-remaining"))
        if remaining is None:
            return
        if remaining > self.pace_below:
            self.spacing = 0.0
            return
        fill = _int(headers.get("x-ratelimit-fillrate"))
        interval = _float(headers.get("x-ratelimit-interval-seconds"))
        if fill and interval:
            spacing = interval / fill
        else:
            reset = seconds_until(headers.get("x-ratelimit-reset"))
            if reset is None or reset <= 0:
                return
            spacing = min(reset, self.backoff.max_wait) / max(remaining, 1)
            if remaining == 0:
                self.pause(reset)
        if spacing != self.spacing:
            log.debug("pacing: %d requests left, one request every %.3f s", remaining, spacing)
        self.spacing = min(spacing, self.backoff.max_wait)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class HttpClient:
    """An `httpx.AsyncClient` with the behaviour every Atlassian API needs.

    `request` retries 429/500/502/503/504 and connection failures of idempotent requests with
    exponential backoff and jitter, honouring `Retry-After`; a request that is not idempotent
    (POST, PATCH, or `idempotent=False`) is retried only when it cannot have reached the server
    (connect errors) or was refused by the rate limiter (429); otherwise the last response is
    returned (or the transport error raised) so that the caller can re-read the state.
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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.settings = settings
        self.flavor = flavor
        self.backoff = backoff or Backoff()
        self.permanent = permanent  # a refusal the server would repeat (DC: read-only directory)
        self.gate = RateGate(self.backoff, settings.concurrency)
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
        while True:
            await self.gate.wait()
            started = time.monotonic()
            try:
                async with self._slots:
                    lane = self._free.pop()  # the semaphore guarantees one is free
                    try:
                        self.requests += 1
                        if session_only:
                            response = await lane.request(
                                method, path, params=params, json=json, data=data, headers=headers, auth=None
                            )
                        else:
                            response = await lane.request(
                                method, path, params=params, json=json, data=data, headers=headers
                            )
                    finally:
                        self._free.append(lane)
            except httpx.TransportError as exc:
                elapsed = (time.monotonic() - started) * 1000
                url = self.url(path)
                log.debug("%s %s -> %s in %.0f ms", method, url, type(exc).__name__, elapsed)
                if _is_tls(exc):
                    raise TargetError(
                        f"{method} {url} -> TLS verification failed: {exc}",
                        hint="check the URL, or set the CA bundle that signed the server's certificate",
                    ) from exc
                not_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
                if attempt < self.settings.max_retries and (idempotent or not_sent):
                    delay = self.backoff.delay(attempt)
                    log.info("%s %s failed (%s); retry %d in %.1f s", method, url,
                             type(exc).__name__, attempt + 1, delay)
                    attempt += 1
                    await asyncio.sleep(delay)
                    continue
                raise _transport_error(method, url, exc, idempotent, not_sent) from exc
            if log.isEnabledFor(logging.DEBUG):
                elapsed = (time.monotonic() - started) * 1000
                log.debug("%s %s -> %d in %.0f ms", method, safe_url(response.request.url),
                          response.status_code, elapsed)
            self.gate.observe(response.headers)
            status = response.status_code
            if status not in RETRY_STATUSES or attempt >= self.settings.max_retries:
                return response
            if not idempotent and status != 429:
                return response  # it may have been processed: the caller re-reads
            if status == 500 and self.permanent is not None:
                await response.aread()
                if self.permanent(response):
                    return response
            wait = seconds_until(response.headers.get("retry-after"))
            if wait is None or (wait <= 0 and status == 429):
                wait = self.backoff.delay(attempt)
            else:
                wait = min(wait, self.backoff.max_wait) * random.uniform(1.0, self.backoff.jitter[1])
            if status in (429, 503):
                self.gate.pause(wait)  # everybody waits, not just this worker
            log.info("%s %s -> %d; retry %d in %.1f s", method, safe_url(response.request.url),
                     status, attempt + 1, wait)
            await response.aread()
            attempt += 1
            if status not in (429, 503):
                await asyncio.sleep(min(wait, self.backoff.max_wait))


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
