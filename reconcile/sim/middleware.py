"""The ASGI middleware in front of every simulated API: latency, rate limiting, faults, the log.

`/_sim/*` bypasses all of it. A "connection reset" raises `ConnectionReset`, a subclass of
`httpx.RemoteProtocolError`: in-process (httpx.ASGITransport) the client sees exactly that error;
under uvicorn the response has already started, so the connection is dropped mid-body and the client
sees a RemoteProtocolError/ReadError of its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx

from reconcile.sim.context import CLOUD, DC, ENTRA, GOOGLE, OKTA, SCIM, SIM, SimContext, api_of
from reconcile.sim.control import TokenBucket
from reconcile.sim.google_workspace.errors import google_error_body
from reconcile.sim.jsonbody import dumps
from reconcile.sim.okta.auth import okta_error_body

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


class ConnectionReset(httpx.RemoteProtocolError):
    """A simulated dropped connection."""


@dataclass(frozen=True, slots=True)
class Seen:
    """One request as the log records it."""

    method: str
    path: str
    status: int | None
    body: bytes
    scope: Scope
    api: str


class SimMiddleware:
    def __init__(self, app: ASGIApp, ctx: SimContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        api = api_of(path)
        if api == SIM:
            await self.app(scope, receive, send)
            return
        ctx = self.ctx
        ctx.log.counts[api] = ctx.log.counts.get(api, 0) + 1
        ctx.log.in_flight += 1
        ctx.log.in_flight_by_api[api] = ctx.log.in_flight_by_api.get(api, 0) + 1
        ctx.log.max_in_flight = max(ctx.log.max_in_flight, ctx.log.in_flight)
        try:
            await self._handle(scope, receive, send, api)
        finally:
            ctx.log.in_flight -= 1
            ctx.log.in_flight_by_api[api] -= 1

    async def _handle(self, scope: Scope, receive: Receive, send: Send, api: str) -> None:
        ctx = self.ctx
        settings = ctx.settings
        method: str = scope["method"]
        path: str = scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        full_path = f"{path}?{query}" if query else path
        mutating = method not in READ_METHODS

        body = b""
        if mutating:
            body, complete = await _read_body(receive)
            if not complete:  # a real server never dispatches half a request: nothing happens
                self._record(Seen(method, full_path, None, body, scope, api),
                             "client disconnected before the body was complete", fault=True)
                return
            receive = _replay(body, receive)

        if settings.latency_ms > 0:
            await asyncio.sleep(settings.latency_ms / 1000.0)

        extra_headers: list[tuple[bytes, bytes]] = _request_id_headers(api, ctx)
        bucket: TokenBucket | None = None
        if settings.rate_limit is not None and api in (DC, CLOUD, ENTRA):  # Okta and Google limit in their own ways
            credential = _credential(scope)
            bucket = ctx.buckets.get((api, credential))
            if bucket is None:
                bucket = ctx.buckets[(api, credential)] = TokenBucket(settings.rate_limit, ctx.clock())
            allowed = bucket.take(ctx.clock())
            if not allowed:
                retry = bucket.retry_after()
                limited = _rate_headers(api, bucket, retry, limited=True, ctx=ctx)
                await _too_many(send, api, limited + extra_headers)
                self._record(Seen(method, full_path, 429, body, scope, api), "rate-limited", fault=True)
                return
            extra_headers += _rate_headers(api, bucket, bucket.retry_after(), limited=False, ctx=ctx)

        faults = settings.faults
        if faults.any() and path.startswith(faults.paths):
            ctx.requests_seen += 1
            if ctx.burst_left == 0 and faults.burst_429_every and ctx.requests_seen % faults.burst_429_every == 0:
                ctx.burst_left = faults.burst_429_length
            if ctx.burst_left > 0:
                ctx.burst_left -= 1
                headers = list(extra_headers)
                if faults.retry_after_header:
                    headers.append((b"retry-after", str(faults.burst_retry_after).encode()))
                    if api == CLOUD:
                        headers += _cloud_reset(faults.burst_retry_after, ctx)
                await _too_many(send, api, headers)
                self._record(Seen(method, full_path, 429, body, scope, api), "429 burst", fault=True)
                return
            if ctx.rng.random() < faults.error_rate:
                status = ctx.rng.choice(faults.error_statuses)
                await _json(send, status, server_error_body(path, status), extra_headers)
                self._record(Seen(method, full_path, status, body, scope, api), "injected 5xx", fault=True)
                return
            if ctx.rng.random() < faults.reset_rate:
                after = ctx.rng.random() < 0.5
                if after:
                    status_box: list[int] = []
                    await self.app(scope, receive, _swallow(status_box))
                    seen = Seen(method, full_path, status_box[0] if status_box else None, body, scope, api)
                    self._record(seen, "reset after processing", fault=True)
                else:
                    self._record(Seen(method, full_path, None, body, scope, api), "reset before processing",
                                 fault=True)
                await _reset(send)
                return

        status_box = []

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box.append(message["status"])
                headers = list(message.get("headers", []))
                if settings.faults.json_charset:  # what DC (and some Cloud gateways) really send
                    headers = [(k, b"application/json;charset=UTF-8")
                               if k == b"content-type" and v == b"application/json" else (k, v)
                               for k, v in headers]
                message["headers"] = headers + extra_headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
        if mutating:
            seen = Seen(method, full_path, status_box[0] if status_box else None, body, scope, api)
            self._record(seen, "", fault=False)

    def _record(self, seen: Seen, note: str, *, fault: bool) -> None:
        """Mutating requests are logged; so is every request a fault or the rate limit answered."""
        if seen.method in READ_METHODS and not fault:
            return
        self.ctx.log.add(seen.method, seen.path, seen.status, body=_decode(seen.body, seen.scope), api=seen.api,
                         kind="fault" if fault else "request", note=note)


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The request body, and whether it arrived whole (False: the client disconnected first)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replay(body: bytes, original: Receive) -> Receive:
    """Hand the already-read body to the app once, then the server's own messages (disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await original()

    return receive


def _swallow(status_box: list[int]) -> Send:
    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            status_box.append(message["status"])

    return send


def _decode(body: bytes, scope: Scope) -> Any:
    if not body:
        return None
    headers = dict(scope.get("headers", []))
    content_type = headers.get(b"content-type", b"").decode("latin-1")
    text = body.decode("utf-8", "replace")
    if "json" in content_type:
        try:
            return json.loads(text)
        except ValueError:
            return text
    if "x-www-form-urlencoded" in content_type:
        return {k: v[0] if len(v) == 1 else v for k, v in parse_qs(text, keep_blank_values=True).items()}
    return text


def _credential(scope: Scope) -> str:
    """Rate-limit buckets are per credential (Authorization header or session cookie)."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            return str(hash(value))
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            return str(hash(value))
    return "anonymous"


def _request_id_headers(api: str, ctx: SimContext) -> list[tuple[bytes, bytes]]:
    number = ctx.log.counts.get(api, 0)
    if api == DC:
        return [(b"x-arequestid", f"{number}x{ctx.settings.seed}x1".encode())]
    if api == OKTA:
        return [(b"x-okta-request-id", f"sim{ctx.settings.seed:04x}{number:012x}".encode())]
    if api == ENTRA:  # Graph's request-id is a GUID
        return [(b"request-id", f"{ctx.settings.seed:08x}-0000-4000-8000-{number:012x}".encode())]
    if api in (GOOGLE, SCIM):
        return []
    return [(b"atl-traceid", f"{ctx.settings.seed:08x}{number:016x}".encode())]


def _cloud_reset(seconds: int, ctx: SimContext) -> list[tuple[bytes, bytes]]:
    """Cloud's `X-RateLimit-Reset` (ISO 8601 UTC), with the seconds zeroed when the settings ask."""
    at = datetime.fromtimestamp(ctx.wall(), UTC) + timedelta(seconds=seconds)
    shape = "%Y-%m-%dT%H:%M:00Z" if ctx.settings.faults.reset_precision == "minutes" else "%Y-%m-%dT%H:%M:%SZ"
    return [(b"x-ratelimit-reset", at.strftime(shape).encode())]


def _rate_headers(api: str, bucket: TokenBucket, retry: int, *, limited: bool,
                  ctx: SimContext) -> list[tuple[bytes, bytes]]:
    if api == ENTRA:  # Graph announces nothing until it throttles, then only Retry-After
        return [(b"retry-after", str(retry).encode())] if limited else []
    limit = bucket.limit
    headers = [
        (b"x-ratelimit-limit", str(limit.max).encode()),
        (b"x-ratelimit-remaining", str(bucket.remaining).encode()),
    ]
    with_retry = ctx.settings.faults.retry_after_header
    if api == DC:
        headers += [
            (b"x-ratelimit-interval-seconds", str(limit.interval_seconds).encode()),
            (b"x-ratelimit-fillrate", str(limit.fill_rate).encode()),
        ]
        if with_retry or not limited:
            headers.append((b"retry-after", str(retry).encode()))
    else:
        headers += _cloud_reset(retry, ctx)
        if limited and with_retry:
            headers.append((b"retry-after", str(retry).encode()))
    return headers


async def _json(send: Send, status: int, payload: Any, headers: list[tuple[bytes, bytes]]) -> None:
    data = dumps(payload)
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                    *headers],
    })
    await send({"type": "http.response.body", "body": data})


def server_error_body(path: str, status: int) -> dict[str, Any]:
    """An injected 5xx in the error model of the API the path belongs to."""
    message = "Simulated server error"
    if api_of(path) == OKTA:
        return okta_error_body("E0000009", "Internal Server Error", "oaesimulated")
    if api_of(path) == GOOGLE:
        return google_error_body(status, message, "backendError")
    if api_of(path) == SCIM:  # RFC 7644 §3.12
        return {"schemas": [SCIM_ERROR], "status": str(status), "detail": message}
    if api_of(path) == ENTRA:  # Graph: {"error": {"code", "message"}}
        return {"error": {"code": "serviceNotAvailable" if status == 503 else "generalException", "message": message}}
    if path.startswith(("/rest/api/2/", "/rest/api/3/")):  # Jira: ErrorCollection
        return {"errorMessages": [message], "errors": {}}
    if path.startswith(("/admin/v1/", "/admin/v2/")):  # Organizations: errors[]
        return {"errors": [{"status": str(status), "code": "INTERNAL_SERVER_ERROR", "title": message}]}
    if path.startswith("/users/"):  # user management
        return {"key": "internalServerError", "message": message}
    return {"statusCode": status, "message": message}  # Confluence DC RestError


async def _too_many(send: Send, api: str, headers: list[tuple[bytes, bytes]]) -> None:
    if api == DC:
        payload: dict[str, Any] = {"message": "Rate limit exceeded."}
    elif api == OKTA:
        payload = okta_error_body("E0000047", "API call exceeded rate limit due to too many requests.", "oaesimulated")
    elif api == GOOGLE:
        payload = google_error_body(429, "Rate Limit Exceeded", "rateLimitExceeded")
    elif api == ENTRA:
        payload = {"error": {"code": "TooManyRequests", "message": "Too many requests."}}
    elif api == SCIM:
        payload = {"schemas": [SCIM_ERROR], "status": "429", "detail": "Too many requests"}
    else:
        payload = {"code": 429, "message": "Too many requests. Please retry after the Retry-After period."}
    await _json(send, 429, payload, headers)


async def _reset(send: Send) -> None:
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
    })
    await send({"type": "http.response.body", "body": b'{"results": [', "more_body": True})
    log.debug("simulated connection reset")
    raise ConnectionReset("simulated connection reset (peer closed connection)")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

