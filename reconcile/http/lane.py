"""One keep-alive HTTP/1.1 connection as an httpx transport: asyncio's protocol and the httptools parser.

httpcore + h11 + anyio cost ~0.5 ms of CPU per request, a fifth of a 100,000-user plan's CPU; this path
serves a lane (one request at a time, see `Lanes`) for a fraction of that. Whole bodies are read before
the response is returned: every caller reads them anyway. Proxies are left to httpx's own transport.
"""

from __future__ import annotations

import asyncio
import select
import ssl
from collections.abc import Callable
from typing import Any, cast

import httptools
import httpx

KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection is reused for, as httpx's default Limits
_DEFAULT_PORTS = {"http": 80, "https": 443}


class _Connection(asyncio.Protocol):
    """The socket of a lane and the response being parsed on it (at most one at a time)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = loop.time()
        self._waiter: asyncio.Future[None] | None = None
        self._parser: Any = None
        self._head = False  # a HEAD: the answer ends with its headers
        self._received = False  # any byte of the current answer
        self._headers_done = False
        self._keep = False  # whether the connection may carry the next request
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.last_data = 0.0
        self._timer: asyncio.TimerHandle | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of asyncio's

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # bytes nobody asked for: the connection can no longer be trusted
            return
        self._received = True
        self.last_data = self.loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed HTTP response: {exc}"))
            self.close()

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is None or self._waiter.done():
            return
        if exc is not None:
            self._fail(httpx.ReadError(str(exc) or type(exc).__name__), exc)
        elif self._headers_done and not self._framed():
            self._finish()  # a body delimited by the end of the connection
        elif self._received:
            self._fail(httpx.RemoteProtocolError("peer closed connection without sending complete message body"))
        else:
            self._fail(httpx.RemoteProtocolError("Server disconnected without sending a response."))

    # httptools callbacks

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._headers_done = True
        if self._head:
            self._finish()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:  # an interim answer: the real one follows on this parser
            self._clear()
            return
        self._keep = bool(self._parser.should_keep_alive())  # asked here: after the message it says no
        self._finish()

    # one exchange

    def begin(self, head: bool, timeout: float | None) -> asyncio.Future[None]:
        """Expect an answer; it fails with ReadTimeout when no byte came for `timeout` seconds."""
        self._head = head
        self._parser = httptools.HttpResponseParser(self)
        self._clear()
        self._waiter = self.loop.create_future()
        self.last_data = self.loop.time()
        if timeout is not None:
            self._timer = self.loop.call_later(timeout, self._check, timeout)
        return self._waiter

    def status_code(self) -> int:
        return int(self._parser.get_status_code())

    def keep_alive(self) -> bool:
        return self._keep and not self.closed and not self._head

    def dropped(self) -> bool:
        """Whether the idle connection can be read: the server closed it (or sent what nobody asked for),
        though the loop has not run to say so yet (a server restarted between two requests). httpcore checks
        the same before reusing a connection."""
        sock = self.transport.get_extra_info("socket") if self.transport is not None else None
        if sock is None:
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def close(self) -> None:
        self.closed = True
        self._parser = None  # it refers back to this object: no cycle left for the collector
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        self._parser = None
        if self.transport is not None:
            self.transport.abort()

    def _check(self, timeout: float) -> None:
        left = self.last_data + timeout - self.loop.time()
        if left > 0:  # bytes came meanwhile: the timeout counts from the last of them, as httpx's does
            self._timer = self.loop.call_later(left, self._check, timeout)
        else:
            self._fail(httpx.ReadTimeout("timed out waiting for the server's answer"))

    def _clear(self) -> None:
        self._received = self._headers_done = self._keep = False
        self.reason = b""
        self.headers = []
        self.body = []

    def _framed(self) -> bool:
        names = {name.lower() for name, _ in self.headers}
        return b"content-length" in names or b"transfer-encoding" in names

    def _finish(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        self._disarm()

    def _fail(self, error: httpx.TransportError, cause: BaseException | None = None) -> None:
        error.__cause__ = cause
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)
        self._disarm()

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class Lane(httpx.AsyncBaseTransport):
    """Requests one after another on one connection, reconnecting when it is closed, stale or for another
    origin. Errors are httpx's (ConnectError, ConnectTimeout, ReadTimeout, ReadError, RemoteProtocolError),
    each with the underlying OS or TLS error as its cause, so retries and messages work as with httpcore.
    """

    def __init__(self, tls: Callable[[], ssl.SSLContext]) -> None:
        self._tls = tls  # called for an https origin only: loading a CA bundle costs ~25 ms
        self._conn: _Connection | None = None
        self._origin: tuple[str, str, int] | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin = (url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme, 80))
        timeouts = request.extensions.get("timeout", {})
        sent = _head(request) + _framed(request, await request.aread())
        conn = await self._connection(origin, timeouts.get("connect"))
        waiter = conn.begin(request.method == "HEAD", timeouts.get("read"))
        try:
            assert conn.transport is not None
            conn.transport.write(sent)
            trace = request.extensions.get("trace")
            if trace is not None:  # httpcore's event for "written"; the one callers use (HttpClient's on_sent)
                await trace("http11.send_request_body.complete", {"request": request})
            await waiter
        except BaseException:
            conn.abort()  # a half-read answer (or a cancelled request) leaves the connection unusable
            self._conn = None
            raise
        body, conn.body = b"".join(conn.body), []
        response = httpx.Response(conn.status_code(), headers=conn.headers, stream=httpx.ByteStream(body),
                                  extensions={"http_version": b"HTTP/1.1", "reason_phrase": conn.reason})
        if conn.keep_alive():
            conn.idle_since = conn.loop.time()
        else:
            conn.close()
            self._conn = None
        return response

    async def _connection(self, origin: tuple[str, str, int], timeout: float | None) -> _Connection:
        conn = self._conn
        if conn is not None and (conn.closed or origin != self._origin
                                 or conn.loop.time() - conn.idle_since > KEEPALIVE_EXPIRY or conn.dropped()):
            conn.close()
            conn = self._conn = None
        if conn is not None:
            return conn
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        conn = _Connection(loop)
        try:
            tls = self._tls() if scheme == "https" else None  # an unreadable bundle is a TLS failure, below
            async with asyncio.timeout(timeout):
                await loop.create_connection(lambda: conn, host, port, ssl=tls,
                                             server_hostname=host if tls is not None else None)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from exc
        except OSError as exc:  # refused, unknown host, TLS verification (ssl.SSLError is an OSError)
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        self._conn, self._origin = conn, origin
        return conn

    async def aclose(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _head(request: httpx.Request) -> bytes:
    target = request.url.raw_path
    lines = [request.method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
    for name, value in request.headers.raw:
        if b"\n" in value or b"\r" in value or b"\0" in value or b":" in name or b"\n" in name:
            # what h11 refuses too: a line break in a header (a token file's stray newline) would end the
            # header early and let what follows be read as headers of its own
            raise httpx.LocalProtocolError(f"the {name.decode('latin-1')!r} header has a line break or NUL: "
                                           "not sent")
        lines += (name, b": ", value, b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


def _framed(request: httpx.Request, body: bytes) -> bytes:
    """The body as the headers frame it: one chunk and the last for `Transfer-Encoding: chunked`."""
    if request.headers.get("transfer-encoding", "").lower() == "chunked":
        return (f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    return body
