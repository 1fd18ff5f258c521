"""The shared HTTP client at its edge: retries, Retry-After, shared backoff, no blind POST retry,
pacing, error messages and secret masking, against httpx.MockTransport servers written inline.
Time is a fake clock: nothing sleeps for real."""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import time
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx
import pytest

from reconcile.errors import AuthError, TargetError
from reconcile.http import Backoff, HttpClient, basic, bearer, safe_url, seconds_until
from reconcile.settings import HttpSettings, Secret
from reconcile.targets import atlassian
from reconcile.targets.atlassian import Flavor, raise_for
from tests.support.fake_clock import FakeClock
from tests.support.net import free_port

TOKEN = Secret("pat-SUPER-SECRET-1234", "${CONFLUENCE_TOKEN}")
T = TypeVar("T")
FAST = Backoff(base=0.01, cap=0.05, max_wait=2.0)

Handler = Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]


def client(handler: Handler, *, flavor: Flavor = "dc", retries: int = 4, concurrency: int = 4,
           backoff: Backoff = FAST, auth: httpx.Auth | None = None, fake: FakeClock | None = None) -> HttpClient:
    return atlassian.client(
        "http://dc.test/confluence",
        auth=auth if auth is not None else bearer(TOKEN),
        settings=HttpSettings(timeout=5, concurrency=concurrency, max_retries=retries),
        flavor=flavor,
        transport=httpx.MockTransport(handler),
        backoff=backoff,
        clock=(fake or FakeClock()).clock(),
    )


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def test_dc_requests_carry_xsrf_accept_and_bearer_headers() -> None:
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    async def go() -> None:
        dc = client(handler)
        await dc.request("GET", "/rest/api/user/current")
        await dc.aclose()
        cloud = client(handler, flavor="cloud")
        await cloud.request("GET", "/admin/v2/orgs")
        await cloud.aclose()

    run(go())
    dc_req, cloud_req = seen
    assert str(dc_req.url) == "http://dc.test/confluence/rest/api/user/current"
    assert dc_req.headers["X-Atlassian-Token"] == "no-check"
    assert dc_req.headers["Accept"] == "application/json"
    assert dc_req.headers["Authorization"] == "Bearer pat-SUPER-SECRET-1234"
    assert "X-Atlassian-Token" not in cloud_req.headers
    assert cloud_req.headers["Accept"] == "application/json"


def test_a_response_is_freed_once_its_caller_drops_it_not_by_a_full_collection() -> None:
    # httpx's stream of a response refers back to the response: a cycle that kept each page's body (and its
    # request and headers) until a full collection, which a 100,000-user read pauses
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"values": list(range(100))})

    async def go() -> weakref.ref[httpx.Response]:
        dc = client(handler)
        response = await dc.request("GET", "/rest/api/group")
        assert response.json() == {"values": list(range(100))} and response.content == await response.aread()
        gone = weakref.ref(response)
        await dc.aclose()
        return gone

    enabled = gc.isenabled()
    gc.disable()  # freed by its reference count alone
    try:
        assert run(go())() is None
    finally:
        if enabled:
            gc.enable()


def test_basic_auth_header() -> None:
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    async def go() -> None:
        c = client(handler, auth=basic("admin", Secret("hunter2", "${PW}")))
        await c.request("GET", "/rest/api/user/current")
        await c.aclose()

    run(go())
    assert seen[0].headers["Authorization"] == "Basic YWRtaW46aHVudGVyMg=="


def test_429_storm_is_retried_honouring_retry_after() -> None:
    arrivals: list[float] = []
    fake = FakeClock(overlapping=True)

    async def handler(request: httpx.Request) -> httpx.Response:
        arrivals.append(fake.monotonic())
        if len(arrivals) <= 3:
            return httpx.Response(429, headers={"Retry-After": "0.2"},
                                  json={"message": "Rate limit exceeded."})
        return httpx.Response(200, json={"ok": True})

    async def go() -> httpx.Response:
        c = client(handler, fake=fake)
        try:
            return await c.request("GET", "/rest/api/group")
        finally:
            await c.aclose()

    response = run(go())
    assert response.status_code == 200
    assert len(arrivals) == 4
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert all(gap >= 0.2 for gap in gaps), gaps


def test_absurd_retry_after_is_clamped() -> None:
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return httpx.Response(429, headers={"Retry-After": "9223372036854775807"})
        return httpx.Response(200, json={})

    fake = FakeClock()

    async def go() -> float:
        c = client(handler, backoff=Backoff(base=0.01, cap=0.05, max_wait=0.1), fake=fake)
        started = fake.monotonic()
        await c.request("GET", "/rest/api/group")
        await c.aclose()
        return fake.monotonic() - started

    assert run(go()) < 1.0
    assert calls == 2


def test_after_exhausting_retries_the_last_response_is_returned() -> None:
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(503, text="Service Unavailable")

    async def go() -> httpx.Response:
        c = client(handler, retries=2)
        try:
            return await c.request("GET", "/rest/api/group")
        finally:
            await c.aclose()

    response = run(go())
    assert response.status_code == 503
    assert calls == 3  # the first try and two retries
    with pytest.raises(TargetError, match=r"GET http://dc.test/confluence/rest/api/group -> 503"):
        raise_for(response, "try again later")


def test_a_429_seen_by_one_worker_pauses_every_worker() -> None:
    arrivals: list[tuple[str, float]] = []
    fake = FakeClock(overlapping=True)
    refused = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        arrivals.append((request.url.path, fake.monotonic()))
        if request.url.path.endswith("/first") and len(arrivals) == 1:
            refused.set()
            return httpx.Response(429, headers={"Retry-After": "0.3"})
        return httpx.Response(200, json={})

    async def go() -> None:
        c = client(handler, concurrency=4, fake=fake)

        async def late() -> None:
            await refused.wait()  # starts after the 429 was seen, before its pause is over
            await c.request("GET", "/second")

        await asyncio.gather(c.request("GET", "/first"), late())
        assert c.gate.pauses == 1
        await c.aclose()

    run(go())
    first_429 = arrivals[0][1]
    second = next(t for path, t in arrivals if path.endswith("/second"))
    assert second - first_429 >= 0.3, "the second worker did not wait for the shared pause"


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_post_that_may_have_been_processed_is_not_retried(status: int) -> None:
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(status)

    async def go() -> httpx.Response:
        c = client(handler)
        try:
            return await c.request("POST", "/admin/v2/orgs/o/directories/-/groups/g/memberships",
                                   json={"account_id": "a"})
        finally:
            await c.aclose()

    assert run(go()).status_code == status
    assert calls == 1


def test_a_post_whose_connection_dropped_after_sending_raises_without_retry() -> None:
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)

    async def go() -> None:
        c = client(handler)
        try:
            await c.request("POST", "/users/a/manage/lifecycle/disable")
        finally:
            await c.aclose()

    with pytest.raises(TargetError) as info:
        run(go())
    assert calls == 1
    url = "http://dc.test/confluence/users/a/manage/lifecycle/disable"
    assert f"POST {url} -> the server closed" in str(info.value)
    assert "may or may not have been made" in str(info.value)


def test_a_post_that_never_connected_is_retried_and_so_is_a_get_after_a_reset() -> None:
    calls: dict[str, int] = {"POST": 0, "GET": 0}

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/warm"):  # the server has answered once: a refusal now is transient
            return httpx.Response(200, json={})
        calls[request.method] += 1
        if calls[request.method] == 1:
            if request.method == "POST":
                raise httpx.ConnectError("connection refused", request=request)
            raise httpx.ReadError("connection reset by peer", request=request)
        return httpx.Response(200, json={})

    async def go() -> None:
        c = client(handler)
        await c.request("GET", "/warm")
        assert (await c.request("POST", "/x")).status_code == 200
        assert (await c.request("GET", "/y")).status_code == 200
        await c.aclose()

    run(go())
    assert calls == {"POST": 2, "GET": 2}


def test_a_429_on_a_post_is_retried_because_the_limiter_refused_it() -> None:
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return httpx.Response(429, headers={"Retry-After": "0"})
        return httpx.Response(201, json={})

    async def go() -> httpx.Response:
        c = client(handler)
        try:
            return await c.request("POST", "/x", json={})
        finally:
            await c.aclose()

    assert run(go()).status_code == 201
    assert calls == 2


def test_error_messages_say_method_url_status_server_message_and_what_to_do() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/current"):
            return httpx.Response(401, headers={"X-AREQUESTID": "req-77"}, text="Unauthorized")
        return httpx.Response(404, json={"statusCode": 404,
                                         "message": "No User exists for the provided username"})

    async def go() -> tuple[httpx.Response, httpx.Response]:
        c = client(handler)
        try:
            return (await c.request("GET", "/rest/api/user/current"),
                    await c.request("PUT", "/rest/api/admin/user/bob/disable"))
        finally:
            await c.aclose()

    unauthorized, missing = run(go())
    with pytest.raises(AuthError) as auth:
        raise_for(unauthorized, "check target.auth.username and password")
    assert str(auth.value) == (
        "GET http://dc.test/confluence/rest/api/user/current -> 401 (request id req-77): Unauthorized\n"
        "  → check target.auth.username and password"
    )
    with pytest.raises(TargetError) as err:
        raise_for(missing, "re-run plan")
    assert err.value.status == 404
    url = "http://dc.test/confluence/rest/api/admin/user/bob/disable"
    assert f"PUT {url} -> 404: No User exists" in str(err.value)
    raise_for(httpx.Response(204, request=missing.request), "unused")  # success raises nothing


def test_secrets_never_reach_logs_reprs_or_messages(caplog: pytest.LogCaptureFixture) -> None:
    password = Secret("pw-VERY-SECRET-9", "${PW}")

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"message": "boom"})

    async def go() -> httpx.Response:
        c = client(handler, retries=0, auth=basic("admin", password))
        try:
            return await c.request("POST", "/doauthenticate.action",
                                   params={"os_password": password.reveal(), "page": "1"},
                                   data={"password": password.reveal()})
        finally:
            await c.aclose()

    with caplog.at_level(logging.DEBUG, logger="reconcile"):
        response = run(go())
    with pytest.raises(TargetError) as err:
        raise_for(response, "retry later")
    text = caplog.text + str(err.value) + repr(bearer(TOKEN)) + repr(TOKEN) + str(TOKEN)
    assert "POST http://dc.test/confluence/doauthenticate.action?os_password=***&page=1 -> 500" in caplog.text
    for secret in (password.reveal(), TOKEN.reveal(), "YWRtaW46"):
        assert secret not in text
    assert safe_url("https://u:p@h.test/x?atl_token=abc&start=0") == "https://h.test/x?atl_token=***&start=0"


def test_connection_refused_names_the_url_and_what_to_check() -> None:
    port = free_port()

    async def go() -> None:
        c = atlassian.client(f"http://127.0.0.1:{port}", auth=None, settings=HttpSettings(max_retries=1),
                             flavor="dc", backoff=FAST, clock=FakeClock().clock())
        try:
            await c.request("GET", "/rest/api/user/current")
        finally:
            await c.aclose()

    with pytest.raises(TargetError) as err:
        run(go())
    message = str(err.value)
    assert f"GET http://127.0.0.1:{port}/rest/api/user/current -> could not connect" in message
    assert "server is running" in message


def test_low_remaining_tokens_pace_requests_at_the_dc_fill_rate() -> None:
    arrivals: list[float] = []
    fake = FakeClock(overlapping=True)

    async def handler(request: httpx.Request) -> httpx.Response:
        arrivals.append(fake.monotonic())
        return httpx.Response(200, json={}, headers={
            "X-RateLimit-Remaining": "1", "X-RateLimit-FillRate": "20",
            "X-RateLimit-Interval-Seconds": "1", "Retry-After": "0"})

    async def go() -> None:
        c = client(handler, concurrency=4, fake=fake)
        await asyncio.gather(*(c.request("GET", f"/p/{i}") for i in range(8)))
        await c.aclose()

    run(go())
    # the first request learns the rate; the following seven arrive ~50 ms apart
    assert arrivals[-1] - arrivals[1] >= 6 * 0.05 * 0.9


def test_plenty_of_remaining_tokens_do_not_slow_anything_down() -> None:
    arrivals: list[float] = []
    fake = FakeClock(overlapping=True)

    async def handler(request: httpx.Request) -> httpx.Response:
        arrivals.append(fake.monotonic())
        return httpx.Response(200, json={}, headers={
            "X-RateLimit-Remaining": "500", "X-RateLimit-FillRate": "1", "X-RateLimit-Interval-Seconds": "1"})

    async def go() -> None:
        c = client(handler, fake=fake)
        await asyncio.gather(*(c.request("GET", f"/p/{i}") for i in range(20)))
        await c.aclose()

    run(go())
    assert arrivals[-1] - arrivals[0] < 0.5


def test_cloud_reset_header_with_nothing_remaining_pauses_until_the_reset() -> None:
    arrivals: list[float] = []
    fake = FakeClock(overlapping=True)

    async def handler(request: httpx.Request) -> httpx.Response:
        arrivals.append(fake.monotonic())
        reset = fake.wall() + 0.4
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(reset)) + f".{int(reset % 1 * 1000):03d}Z"
        headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": stamp}
        return httpx.Response(200, json={}, headers=headers)

    async def go() -> None:
        c = client(handler, flavor="cloud", fake=fake)
        await c.request("GET", "/a")
        await c.request("GET", "/b")
        await c.aclose()

    run(go())
    assert arrivals[1] - arrivals[0] >= 0.3


def test_500_is_retried_for_idempotent_requests_unless_the_refusal_is_permanent() -> None:
    calls: dict[str, int] = {}

    async def handler(request: httpx.Request) -> httpx.Response:
        calls[request.url.path] = calls.get(request.url.path, 0) + 1
        if request.url.path.startswith("/flaky") and calls[request.url.path] == 1:
            return httpx.Response(500, text="Internal Server Error")
        if request.url.path.endswith("/readonly"):
            return httpx.Response(500, json={"message": "Group <g> is read-only and cannot be updated"})
        return httpx.Response(204)

    def permanent(response: httpx.Response) -> bool:
        return "read-only" in response.text

    async def go() -> tuple[int, int, int]:
        c = atlassian.client("http://dc.test", auth=None, settings=HttpSettings(max_retries=3), flavor="dc",
                             transport=httpx.MockTransport(handler), backoff=FAST, permanent=permanent,
                             clock=FakeClock().clock())
        try:
            return ((await c.request("PUT", "/flaky")).status_code,
                    (await c.request("PUT", "/readonly")).status_code,
                    (await c.request("POST", "/flaky-post")).status_code)
        finally:
            await c.aclose()

    assert run(go()) == (204, 500, 500)  # the POST may have been processed: not retried
    assert calls == {"/flaky": 2, "/readonly": 1, "/flaky-post": 1}


@pytest.mark.parametrize(("value", "low", "high"), [
    ("5", 5, 5),
    ("0", 0, 0),
    ("Thu, 01 Jan 2099 00:00:00 GMT", 1e9, 3e9),  # HTTP date
    ("2099-01-01T00:00Z", 1e9, 3e9),  # Jira's minute precision
    ("2099-01-01T00:00:00.000Z", 1e9, 3e9),
    ("2099-01-01T00:00+0000", 1e9, 3e9),
])
def test_retry_after_and_reset_headers_in_every_format_atlassian_sends(value: str, low: float, high: float) -> None:
    seconds = seconds_until(value, FakeClock().wall())
    assert seconds is not None and low <= seconds <= high


def test_an_epoch_reset_is_seconds_from_now_and_junk_is_ignored() -> None:
    now = FakeClock().wall()
    seconds = seconds_until(str(int(now) + 30), now)
    assert seconds is not None and 25 <= seconds <= 31
    assert seconds_until("soon") is None and seconds_until(None) is None
