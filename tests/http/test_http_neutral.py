"""reconcile/http/ is vendor-neutral: the caller's error class and words, rate-limit headers described by
the caller (Okta's `X-Rate-Limit-*` against the server's `Date`), a "slow down" refusal that is not a
429 (Google's 403 `userRateLimitExceeded`), and no Atlassian word in the package."""

from __future__ import annotations

import asyncio
import email.utils
import re
from pathlib import Path

import httpx
import pytest

import reconcile.http
from reconcile.errors import SourceError
from reconcile.http import Backoff, ErrorKinds, HttpClient, RateHeaders, error_for
from reconcile.settings import HttpSettings
from tests.support.fake_clock import FakeClock
from tests.support.net import free_port

OKTA = RateHeaders(remaining="x-rate-limit-remaining", reset="x-rate-limit-reset", reset_from_date=True)


def source_error(message: str, *, status: int | None = None, hint: str | None = None) -> Exception:
    return SourceError(message, hint=hint)


SOURCE = ErrorKinds(error=source_error, url_setting="source.url", request_ids=("x-okta-request-id",))


def client(handler: httpx.MockTransport | None, fake: FakeClock, *, url: str = "http://idp.test",
           rate_headers: RateHeaders | None = None, throttled: bool = False, retries: int = 3) -> HttpClient:
    def google_throttled(response: httpx.Response) -> bool:
        reasons = [e.get("reason") for e in response.json().get("error", {}).get("errors", [])]
        return response.status_code == 403 and bool({"userRateLimitExceeded", "quotaExceeded"} & set(reasons))

    return HttpClient(url, auth=None, settings=HttpSettings(max_retries=retries), errors=SOURCE,
                      rate_headers=rate_headers, transport=handler, clock=fake.clock(),
                      backoff=Backoff(base=0.5, cap=4.0), throttled=google_throttled if throttled else None)


def test_a_source_raises_its_own_error_class_in_the_method_url_status_form() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, headers={"X-Okta-Request-Id": "r-1"},
                              json={"errorCode": "E0000006", "errorSummary": "You do not have permission"})

    async def go() -> httpx.Response:
        c = client(httpx.MockTransport(handler), FakeClock())
        try:
            return await c.request("GET", "/api/v1/groups", params={"q": "eng"})
        finally:
            await c.aclose()

    error = error_for(asyncio.run(go()), "grant the app okta.groups.read", SOURCE)
    assert isinstance(error, SourceError)
    assert str(error) == ("GET http://idp.test/api/v1/groups?q=eng -> 403 (request id r-1): You do not have "
                          "permission\n  → grant the app okta.groups.read")


def test_nothing_listening_names_the_callers_setting() -> None:
    port = free_port()
    fake = FakeClock()

    async def go() -> None:
        c = client(None, fake, url=f"http://127.0.0.1:{port}")
        try:
            await c.request("GET", "/scim/v2/Users")
        finally:
            await c.aclose()

    with pytest.raises(SourceError) as err:
        asyncio.run(go())
    assert "could not connect" in str(err.value) and "check source.url" in str(err.value)
    assert fake.sleeps == []


def test_okta_style_reset_is_read_against_the_servers_date_not_our_clock() -> None:
    fake = FakeClock()
    server_now = fake.wall() - 3600.0  # the server's clock is an hour behind ours
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        headers = {"Date": email.utils.formatdate(server_now, usegmt=True),
                   "X-Rate-Limit-Limit": "600", "X-Rate-Limit-Remaining": "0",
                   "X-Rate-Limit-Reset": str(int(server_now) + 7)}
        if calls == 1:
            return httpx.Response(429, headers=headers, json={"errorCode": "E0000047"})
        return httpx.Response(200, headers={**headers, "X-Rate-Limit-Remaining": "599"}, json=[])

    async def go() -> int:
        c = client(httpx.MockTransport(handler), fake, rate_headers=OKTA)
        try:
            return (await c.request("GET", "/api/v1/users")).status_code
        finally:
            await c.aclose()

    assert asyncio.run(go()) == 200 and calls == 2
    waited = sum(fake.sleeps)
    assert 7.0 <= waited <= 7.0 * 1.3 * 2, fake.sleeps  # the reset, 7 s on the server's clock: not 0, not 3607


def test_a_throttling_403_is_retried_like_a_429_and_a_permission_403_is_not() -> None:
    fake = FakeClock()
    calls: dict[str, int] = {}

    async def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        calls[path] = calls.get(path, 0) + 1
        if path.endswith("/users") and calls[path] == 1:
            return httpx.Response(403, json={"error": {"code": 403, "message": "Rate Limit Exceeded",
                                                       "errors": [{"reason": "userRateLimitExceeded"}]}})
        if path.endswith("/groups"):
            return httpx.Response(403, json={"error": {"code": 403, "message": "Not Authorized to access this "
                                                       "resource/api", "errors": [{"reason": "forbidden"}]}})
        return httpx.Response(200, json={})

    async def go() -> tuple[int, httpx.Response, int]:
        c = client(httpx.MockTransport(handler), fake, throttled=True)
        try:
            users = await c.request("GET", "/admin/directory/v1/users")
            groups = await c.request("GET", "/admin/directory/v1/groups")
            return users.status_code, groups, c.gate.pauses
        finally:
            await c.aclose()

    users, groups, pauses = asyncio.run(go())
    assert users == 200 and pauses == 1 and calls["/admin/directory/v1/users"] == 2
    assert groups.status_code == 403 and calls["/admin/directory/v1/groups"] == 1
    assert str(error_for(groups, "grant the role", SOURCE)).startswith(
        "GET http://idp.test/admin/directory/v1/groups -> 403: Not Authorized to access this resource/api")


def test_the_http_package_has_no_vendor_words() -> None:
    package = Path(reconcile.http.__file__).parent
    pattern = re.compile(r"atlassian|confluence|jira|arequestid|atl_token|os_password|flavor", re.IGNORECASE)
    hits = [f"{p.name}:{n}" for p in sorted(package.glob("*.py"))
            for n, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []
