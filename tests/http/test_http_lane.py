"""`Lane`, the HTTP/1.1 connection every network lane uses, against a scripted server on a loopback socket.

Each server below writes the exact bytes a real server may send (split anywhere, chunked, closed early),
so framing, keep-alive, reconnection and every failure are checked on the wire, not against a mock.
TLS through a lane: tests/http/test_http_tls.py (a real uvicorn server with a self-signed certificate).
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest

from reconcile.http import transport as transport_module
from reconcile.http.client import tls_context
from reconcile.http.lane import Lane
from reconcile.http.transport import FIRST, Lanes

_default_tls = functools.partial(tls_context, None)
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Server"], Awaitable[None]]


@dataclass
class Server:
    """A loopback server running `handler` once per connection; `requests` holds each request's head and body."""

    handler: Handler
    connections: int = 0
    requests: list[tuple[bytes, bytes]] = field(default_factory=list)
    url: str = ""

    async def read_request(self, reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        body = await reader.readexactly(length) if length else b""
        if b"transfer-encoding: chunked" in head.lower():
            body = await reader.readuntil(b"0\r\n\r\n")
        self.requests.append((head, body))
        return head, body


async def _serve(handler: Handler, scenario: Callable[[Server], Awaitable[None]]) -> Server:
    server = Server(handler)

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.connections += 1
        try:
            await handler(reader, writer, server)
        finally:
            writer.close()

    listening = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    server.url = f"http://127.0.0.1:{port}"
    async with listening:
        await scenario(server)
    return server


def run(handler: Handler, scenario: Callable[[Server], Awaitable[None]]) -> Server:
    return asyncio.run(_serve(handler, scenario))


def answer(body: bytes, *headers: bytes, status: bytes = b"200 OK") -> bytes:
    head = b"".join(h + b"\r\n" for h in (b"HTTP/1.1 " + status, b"Content-Length: %d" % len(body), *headers))
    return head + b"\r\n" + body


async def keep_answering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
    """Answer every request on the connection with its own number, one byte per write for the first."""
    while await server.read_request(reader) is not None:
        data = answer(b'{"n": %d}' % len(server.requests), b"Content-Type: application/json")
        if len(server.requests) == 1:
            for i in range(len(data)):  # headers and body split at every byte
                writer.write(data[i:i + 1])
                await writer.drain()
        else:
            writer.write(data)


def client(server: Server, **kwargs: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, transport=Lane(_default_tls), **kwargs)  # type: ignore[arg-type]


def test_requests_share_one_connection_and_answers_split_at_every_byte_are_whole() -> None:
    seen: list[object] = []

    async def scenario(server: Server) -> None:
        async with client(server) as http:
            for _ in range(3):
                response = await http.get("/rest/api/group", params={"start": 0}, headers={"X-Test": "yes"})
                seen.append((response.status_code, response.json(), response.headers["content-type"]))

    server = run(keep_answering, scenario)
    assert seen == [(200, {"n": 1}, "application/json"), (200, {"n": 2}, "application/json"),
                    (200, {"n": 3}, "application/json")]
    assert server.connections == 1
    head = server.requests[0][0]
    assert head.startswith(b"GET /rest/api/group?start=0 HTTP/1.1\r\n")
    assert b"\r\nhost: 127.0.0.1:" in head.lower() and b"\r\nx-test: yes\r\n" in head.lower()


def test_the_written_trace_event_comes_after_the_request_is_written_and_before_its_answer() -> None:
    events: list[tuple[str, int]] = []

    async def scenario(server: Server) -> None:
        async def trace(event: str, info: dict[str, object]) -> None:
            events.append((event, len(server.requests)))  # the server has not read it yet: 0 answered

        async with client(server) as http:
            response = await http.get("/", extensions={"trace": trace})
            events.append(("answered", len(server.requests)))
            assert response.status_code == 200

    run(keep_answering, scenario)
    assert events == [("http11.send_request_body.complete", 0), ("answered", 1)]


def test_a_chunked_gzip_answer_is_reassembled_and_decoded_as_httpx_would() -> None:
    payload = b'{"results": [' + b",".join(b'{"n": %d}' % i for i in range(500)) + b"]}"
    packed = gzip.compress(payload)

    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n")
        for i in range(0, len(packed), 100):
            part = packed[i:i + 100]
            writer.write(b"%x\r\n%s\r\n" % (len(part), part))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await reader.read()  # keep the connection until the client is done

    got: list[bytes] = []

    async def scenario(server: Server) -> None:
        async with client(server) as http:
            got.append((await http.get("/big")).content)

    run(chunked, scenario)
    assert got == [payload]


def test_a_post_body_is_sent_as_its_length_says_and_a_stream_of_unknown_length_as_chunks() -> None:
    async def scenario(server: Server) -> None:
        async with client(server) as http:
            await http.post("/json", json={"name": "team-a"})

            async def parts() -> object:
                yield b"abc"
                yield b"def"

            await http.post("/stream", content=parts())  # type: ignore[arg-type]

    server = run(keep_answering, scenario)
    (json_head, json_body), (stream_head, stream_body) = server.requests
    assert json_body == b'{"name":"team-a"}' and b"content-length: 17" in json_head.lower()
    assert b"transfer-encoding: chunked" in stream_head.lower() and stream_body == b"6\r\nabcdef\r\n0\r\n\r\n"


def test_connection_close_and_a_server_closing_an_idle_connection_mean_a_new_connection() -> None:
    closed = asyncio.Event()

    async def close_after_each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        await server.read_request(reader)
        writer.write(answer(b"ok", *([b"Connection: close"] if len(server.requests) == 1 else [])))
        await writer.drain()
        writer.close()  # the first says so; the others are dropped idle without a word
        await writer.wait_closed()
        closed.set()

    statuses: list[int] = []

    async def scenario(server: Server) -> None:
        lane = Lane(_default_tls)
        async with httpx.AsyncClient(base_url=server.url, transport=lane) as http:
            for _ in range(3):
                closed.clear()
                statuses.append((await http.get("/")).status_code)
                await closed.wait()  # closed on the server; the lane sees it before reusing the connection

    server = run(close_after_each, scenario)
    assert statuses == [200, 200, 200] and server.connections == 3


def test_an_interim_100_continue_is_skipped_and_a_body_may_end_with_the_connection() -> None:
    async def interim(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nConnection: close\r\n\r\nuntil the end")

    got: list[tuple[int, bytes]] = []

    async def scenario(server: Server) -> None:
        async with client(server) as http:
            response = await http.post("/", content=b"x")
            got.append((response.status_code, response.content))

    run(interim, scenario)
    assert got == [(201, b"until the end")]


@pytest.mark.parametrize(("sent", "error", "words"), [
    (b"", httpx.RemoteProtocolError, "Server disconnected without sending a response."),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", httpx.RemoteProtocolError, "without sending complete"),
    (b"SSH-2.0-OpenSSH\r\n\r\n", httpx.RemoteProtocolError, "malformed HTTP response"),
])
def test_a_broken_answer_is_an_httpx_transport_error_and_the_next_request_reconnects(
        sent: bytes, error: type[Exception], words: str) -> None:
    async def broken_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        await server.read_request(reader)
        if len(server.requests) == 1:
            writer.write(sent)
            return  # and close
        writer.write(answer(b"fine"))
        await reader.read()

    outcome: list[object] = []

    async def scenario(server: Server) -> None:
        async with client(server) as http:
            with pytest.raises(error) as caught:
                await http.get("/")
            outcome.append(str(caught.value))
            outcome.append((await http.get("/")).content)

    server = run(broken_first, scenario)
    assert words in str(outcome[0]) and outcome[1] == b"fine" and server.connections == 2


def test_no_byte_within_the_read_timeout_is_a_read_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        await server.read_request(reader)
        await reader.read()  # never answers

    async def scenario(server: Server) -> None:
        async with client(server, timeout=httpx.Timeout(5.0, read=0.05)) as http:
            with pytest.raises(httpx.ReadTimeout):
                await http.get("/")

    assert run(silent, scenario).connections == 1


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent() -> None:
    async def scenario(server: Server) -> None:
        async with client(server) as http:
            with pytest.raises(httpx.LocalProtocolError, match=r"(?i)authorization.*line break"):
                await http.get("/", headers={"Authorization": "Bearer t0ken\r\nX-Injected: yes"})
            assert (await http.get("/")).status_code == 200  # the lane is still usable

    server = run(keep_answering, scenario)
    assert len(server.requests) == 1 and b"x-injected" not in server.requests[0][0].lower()


def test_a_tls_context_is_made_only_for_an_https_origin_and_an_unusable_one_is_a_connect_error() -> None:
    made: list[str] = []

    def unusable() -> ssl.SSLContext:
        made.append("tls")
        raise ssl.SSLError("unusable CA bundle")

    async def plain(server: Server) -> None:
        async with httpx.AsyncClient(base_url=server.url, transport=Lane(unusable)) as http:
            assert (await http.get("/")).status_code == 200  # plain http: no bundle is loaded

    run(keep_answering, plain)
    assert made == []

    async def secure() -> None:
        with pytest.raises(httpx.ConnectError) as caught:
            await Lane(unusable).handle_async_request(httpx.Request("GET", "https://127.0.0.1:9/"))
        assert isinstance(caught.value.__cause__, ssl.SSLError)  # so RetryTransport names it a TLS failure

    asyncio.run(secure())
    assert made == ["tls"]


def test_nothing_listening_is_a_connect_error_caused_by_the_refusal() -> None:
    async def scenario() -> None:
        lane = Lane(_default_tls)
        with pytest.raises(httpx.ConnectError) as caught:
            await lane.handle_async_request(httpx.Request("GET", "http://127.0.0.1:9/"))
        assert isinstance(caught.value.__cause__, ConnectionRefusedError)

    asyncio.run(scenario())


def test_a_request_waiting_for_a_lane_takes_it_before_the_answer_that_freed_it_is_handled() -> None:
    events: list[tuple[str, str]] = []

    async def scenario() -> None:
        release, first_answered = asyncio.Event(), asyncio.Event()

        async def handler(request: httpx.Request) -> httpx.Response:
            events.append(("sent", request.url.path))
            await (release if request.url.path == "/a" else first_answered).wait()
            return httpx.Response(200)

        lanes = Lanes.shared(1, httpx.MockTransport(handler))

        async def call(path: str) -> None:
            await lanes.handle_async_request(httpx.Request("GET", "http://lanes.example.com" + path))
            events.append(("answered", path))
            first_answered.set()

        first = asyncio.ensure_future(call("/a"))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(call("/b"))  # waits: the one lane is taken
        await asyncio.sleep(0)
        release.set()
        await asyncio.gather(first, second)

    asyncio.run(scenario())
    # the lane is busy again while /a's answer is handled, not idle until its caller is done with it
    assert events == [("sent", "/a"), ("sent", "/b"), ("answered", "/a"), ("answered", "/b")]


def test_a_chains_next_page_takes_the_next_lane_before_requests_that_waited_longer() -> None:
    sent: list[str] = []

    async def scenario() -> None:
        release = asyncio.Event()

        async def handler(request: httpx.Request) -> httpx.Response:
            sent.append(request.url.path)
            if request.url.path == "/busy":
                await release.wait()
            return httpx.Response(200)

        lanes = Lanes.shared(1, httpx.MockTransport(handler))

        def call(path: str, **extensions: object) -> asyncio.Future[httpx.Response]:
            return asyncio.ensure_future(lanes.handle_async_request(
                httpx.Request("GET", "http://lanes.example.com" + path, extensions=extensions)))

        calls = [call("/busy")]
        await asyncio.sleep(0)
        calls += [call("/member-1"), call("/member-2"), call("/chain", **{FIRST: True})]
        await asyncio.sleep(0)
        release.set()
        await asyncio.gather(*calls)

    asyncio.run(scenario())
    assert sent == ["/busy", "/chain", "/member-1", "/member-2"]


def test_a_request_cancelled_while_it_waits_leaves_no_lane_taken() -> None:
    async def scenario(cancel_after_handover: bool) -> list[str]:
        sent: list[str] = []
        release = asyncio.Event()
        waiting: list[asyncio.Future[httpx.Response]] = []

        async def handler(request: httpx.Request) -> httpx.Response:
            sent.append(request.url.path)
            if request.url.path == "/busy":
                await release.wait()
                if cancel_after_handover:  # runs once the lane is handed to the waiter, before it resumes
                    asyncio.get_running_loop().call_soon(waiting[0].cancel)
            return httpx.Response(200)

        lanes = Lanes.shared(1, httpx.MockTransport(handler))

        def call(path: str) -> asyncio.Future[httpx.Response]:
            return asyncio.ensure_future(lanes.handle_async_request(httpx.Request("GET", "http://l.example" + path)))

        busy = call("/busy")
        await asyncio.sleep(0)
        waiting.append(call("/cancelled"))
        await asyncio.sleep(0)
        if not cancel_after_handover:
            waiting[0].cancel()
            await asyncio.sleep(0)
        release.set()
        await busy
        with pytest.raises(asyncio.CancelledError):
            await waiting[0]
        await asyncio.wait_for(call("/after"), 1)  # the one lane is free again
        return sent

    assert asyncio.run(scenario(False)) == ["/busy", "/after"]
    assert asyncio.run(scenario(True)) == ["/busy", "/after"]


def test_network_lanes_are_ours_unless_a_proxy_is_set_or_httpx_is_patched(monkeypatch: pytest.MonkeyPatch) -> None:
    def kind() -> type[object]:
        lanes = Lanes.network(2, "https://confluence.example.com", _default_tls)
        return type(lanes._lanes[0])

    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.delenv("ALL_PROXY", raising=False)
    monkeypatch.delenv("all_proxy", raising=False)
    assert kind() is Lane
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.com:3128")
    assert kind() is httpx.AsyncHTTPTransport  # httpx speaks to proxies
    monkeypatch.delenv("HTTPS_PROXY")

    original = httpx.AsyncHTTPTransport.handle_async_request

    async def recorded(self: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
        return await original(self, request)

    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", recorded)  # as VCR.py does
    assert transport_module._httpx_patched() and kind() is httpx.AsyncHTTPTransport
    assert Lanes.network(1, "https://x.example.com", False)._lanes[0].__class__ is httpx.AsyncHTTPTransport
    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", original)
    lanes = Lanes.network(1, "https://x.example.com", lambda: pytest.fail("a TLS context made before a connection"))
    assert type(lanes._lanes[0]) is Lane  # the context is made at the first https connection, not here
