"""Retries and pacing as an httpx transport, wrapped around the real (or an in-process ASGI) transport.

`RetryTransport` retries transient failures only and paces by the rate-limit headers; `Lanes` bounds
how many requests are in flight, each on its own single-connection transport.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import httpx

from reconcile.http.errors import ErrorKinds, failure, is_tls, safe_url, tls_failed, transport_error, unreachable
from reconcile.http.lane import Lane
from reconcile.http.pacing import Backoff, Clock, RateGate

log = logging.getLogger("reconcile.http")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})  # 500: only idempotent, not `permanent`
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
IDEMPOTENT = "reconcile.idempotent"  # request extension: True/False overrides the method's default
FIRST = "reconcile.first"  # request extension: True takes the next free lane before other waiting requests


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Which answers are worth another try. `permanent`: a 500 the server would repeat (never
    retried); `throttled`: a refusal that means "slow down" though it is not a 429 (paced like one)."""

    retries: int = 4
    statuses: frozenset[int] = RETRY_STATUSES
    permanent: Callable[[httpx.Response], bool] | None = None
    throttled: Callable[[httpx.Response], bool] | None = None


class RetryTransport(httpx.AsyncBaseTransport):
    """Sends each request through `inner`, retrying transient failures with backoff and jitter.

    Retried: 429/500/502/503/504 and dropped connections or timeouts of idempotent requests,
    honouring `Retry-After` and the rate-limit reset. A request that is not idempotent (POST, PATCH,
    or the `IDEMPOTENT` extension set False) is retried only when it cannot have reached the server or
    was refused by the rate limiter; otherwise the last response is returned (or the transport error
    raised) so that the caller can re-read the state. Until the server has answered once, a refused
    connection or an unknown host is reported at once: nothing listens there, and retrying would
    only make the user wait. Each retry is logged at WARNING (`retrying GET <url> (2/4) after 503`).
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, *, errors: ErrorKinds, policy: RetryPolicy,
                 gate: RateGate, backoff: Backoff, clock: Clock) -> None:
        self.inner = inner
        self.errors = errors
        self.policy = policy
        self.gate = gate
        self.backoff = backoff
        self.clock = clock
        self.requests = 0  # requests sent, retries included
        self.reached = False  # whether the server has answered at least once

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        method = request.method
        idempotent = request.extensions.get(IDEMPOTENT)
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        attempt, retries = 0, self.policy.retries
        url = _SafeUrl(request.url)
        while True:
            await self.gate.wait()
            started = self.clock.monotonic()
            try:
                self.requests += 1
                response = await self.inner.handle_async_request(request)
            except httpx.TransportError as exc:
                log.debug("%s %s -> %s in %.0f ms", method, url, type(exc).__name__,
                          (self.clock.monotonic() - started) * 1000)
                if is_tls(exc):
                    raise tls_failed(method, str(url), exc, self.errors) from exc
                not_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
                if not self.reached and isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                    raise unreachable(method, str(url), exc, self.errors) from exc
                local = isinstance(exc, httpx.LocalProtocolError)  # a request we refuse to send: never better later
                if attempt < retries and (idempotent or not_sent) and not local:
                    delay = self.backoff.delay(attempt)
                    attempt += 1
                    log.warning("retrying %s %s (%d/%d) after %s", method, url, attempt, retries, failure(exc))
                    await self.clock.sleep(delay)
                    continue
                raise transport_error(method, str(url), exc, idempotent=idempotent, not_sent=not_sent,
                                      kinds=self.errors) from exc
            self.reached = True
            response.request = request
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s %s -> %d in %.0f ms", method, url, response.status_code,
                          (self.clock.monotonic() - started) * 1000)
            self.gate.observe(response.headers, response.status_code, started)
            if attempt >= retries:
                return response
            throttled = await self._throttled(response)
            status = response.status_code
            if status not in self.policy.statuses and not throttled:
                return response
            if not idempotent and not throttled:
                return response  # it may have been processed: the caller re-reads
            if status == 500 and self.policy.permanent is not None:
                await response.aread()
                if self.policy.permanent(response):
                    return response
            wait = self._wait(response, attempt, throttled)
            if throttled or status == 503:
                self.gate.pause(wait)  # everybody waits, not just this worker
            attempt += 1
            log.warning("retrying %s %s (%d/%d) after %d", method, url, attempt, retries, status)
            await response.aread()
            if not (throttled or status == 503):
                await self.clock.sleep(wait)

    async def _throttled(self, response: httpx.Response) -> bool:
        """Whether the server refused for its rate limit: a 429, or what `policy.throttled` recognises."""
        if response.status_code == 429:
            return True
        if self.policy.throttled is None or not response.is_error:
            return False
        await response.aread()
        return self.policy.throttled(response)

    def _wait(self, response: httpx.Response, attempt: int, throttled: bool) -> float:
        """How long to wait before retrying `response`: its Retry-After, else its rate-limit reset
        (throttled), else our own schedule. Never 0 when throttled (a hot loop), never above `max_wait`."""
        wait = self.gate.retry_after(response.headers)
        if wait is None and throttled:
            wait = self.gate.reset_in(response.headers)
        if wait is None or (wait <= 0 and throttled):
            return min(self.backoff.delay(attempt), self.backoff.max_wait)
        return min(max(wait, 0.0), self.backoff.max_wait) * self.backoff.rng.uniform(1.0, self.backoff.jitter[1])


class _SafeUrl:
    """`safe_url` of a request's URL, computed only when a line is logged or an error raised: parsing
    it again for every request cost ~7% of a 100,000-user read's CPU, for lines rarely written."""

    __slots__ = ("_text", "_url")

    def __init__(self, url: httpx.URL) -> None:
        self._url = url
        self._text: str | None = None

    def __str__(self) -> str:
        if self._text is None:
            self._text = safe_url(self._url)
        return self._text


class Lanes(httpx.AsyncBaseTransport):
    """At most `count` requests in flight, each on a free lane (a transport of its own).

    One single-connection transport per concurrent request rather than one pool of N connections:
    httpcore re-checks every pooled connection on each request, which made the pool the largest CPU
    cost of a 100,000-user fetch (measured: half the CPU, half the wall). A given transport (tests:
    MockTransport, ASGITransport) is shared by every lane. A request waiting for a lane takes the one an
    answer frees before that answer is handled: the lane is not idle while its last caller decodes. A
    cursor chain's next page (`FIRST`) waits behind no other request: the chain is a read's longest path.
    """

    def __init__(self, count: int, make: Callable[[], httpx.AsyncBaseTransport]) -> None:
        self._lanes = [make() for _ in range(count)]
        self._free = list(self._lanes)
        # requests waiting for a lane, in order: a cursor chain's (`FIRST`) before every other
        self._first: deque[asyncio.Future[httpx.AsyncBaseTransport]] = deque()
        self._others: deque[asyncio.Future[httpx.AsyncBaseTransport]] = deque()

    @classmethod
    def network(cls, count: int, url: str, verify: Callable[[], ssl.SSLContext] | Literal[False]) -> Lanes:
        """Lanes of our own HTTP/1.1 connections (`Lane`); httpx's through a proxy, when not verifying, or
        when something has patched httpx's transport to see every request (VCR.py's cassettes). `verify`
        gives the TLS context when one is needed (never for plain http)."""
        proxy = env_proxy(httpx.URL(url))
        if proxy is None and verify is not False and not _httpx_patched():
            return cls(count, lambda: Lane(verify))
        return cls(count, lambda: httpx.AsyncHTTPTransport(
            verify=verify() if verify is not False else False, proxy=proxy,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1)))

    @classmethod
    def shared(cls, count: int, transport: httpx.AsyncBaseTransport) -> Lanes:
        return cls(count, lambda: transport)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._free:
            lane = self._free.pop()
        else:
            waiter = asyncio.get_running_loop().create_future()
            waiting = self._first if request.extensions.get(FIRST) else self._others
            waiting.append(waiter)
            try:
                lane = await waiter
            except BaseException:  # cancelled while waiting: a lane handed over meanwhile goes to the next
                if waiter.done() and not waiter.cancelled():
                    self._release(waiter.result())
                elif waiter in waiting:
                    waiting.remove(waiter)
                raise
        try:
            response = await lane.handle_async_request(request)
        finally:
            handed = self._release(lane)
        if handed:  # the waiting request takes the lane before this answer is handled: it is not idle meanwhile
            await asyncio.sleep(0)
        return response

    def _release(self, lane: httpx.AsyncBaseTransport) -> bool:
        """Hand `lane` to the first waiting request (a chain's first), else free it; whether one took it."""
        for waiting in (self._first, self._others):
            while waiting:
                waiter = waiting.popleft()
                if not waiter.done():
                    waiter.set_result(lane)
                    return True
        self._free.append(lane)
        return False

    async def aclose(self) -> None:
        for lane in {id(lane): lane for lane in self._lanes}.values():  # a shared transport once
            await lane.aclose()


_HTTPX_SEND = httpx.AsyncHTTPTransport.handle_async_request  # as imported, before any test patches it


def _httpx_patched() -> bool:
    send = httpx.AsyncHTTPTransport.handle_async_request
    return send is not _HTTPX_SEND or hasattr(send, "__wrapped__")


def env_proxy(url: httpx.URL) -> str | None:
    """The proxy the environment names for `url` (`HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`), as httpx's
    own client would use: a transport given explicitly does not read the environment itself."""
    proxies = urllib.request.getproxies_environment()
    if not proxies or urllib.request.proxy_bypass(url.host):
        return None
    return proxies.get(url.scheme) or proxies.get("all")
