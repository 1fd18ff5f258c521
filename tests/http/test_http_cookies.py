"""The client's cookie jar: session cookies are kept and sent back (the DC admin pages' websudo session), and a
response that sets no cookie costs no `http.cookiejar` work (it wrapped every response in urllib objects)."""

from __future__ import annotations

import asyncio
import http.cookiejar

import httpx
import pytest

from reconcile.errors import TargetError
from reconcile.http import HttpClient
from reconcile.http.errors import ErrorKinds
from reconcile.settings import HttpSettings


def test_a_set_cookie_is_kept_and_sent_back_and_other_responses_skip_the_cookie_jar(
        monkeypatch: pytest.MonkeyPatch) -> None:
    extracted: list[str] = []
    original = http.cookiejar.CookieJar.extract_cookies

    def counting(jar: http.cookiejar.CookieJar, response: object, request: object) -> None:
        extracted.append("x")
        original(jar, response, request)  # type: ignore[arg-type]

    monkeypatch.setattr(http.cookiejar.CookieJar, "extract_cookies", counting)
    cookies_seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        cookies_seen.append(request.headers.get("cookie"))
        if request.url.path == "/login":
            return httpx.Response(200, headers={"set-cookie": "JSESSIONID=abc; Path=/; HttpOnly"})
        return httpx.Response(200, json={})

    async def go() -> HttpClient:
        client = HttpClient("http://dc.test", auth=None, settings=HttpSettings(),
                            errors=ErrorKinds(error=TargetError), transport=httpx.MockTransport(handler))
        for _ in range(3):
            await client.request("GET", "/rest/api/user/list", params={"start": 0})
        assert extracted == []  # no Set-Cookie: the jar never saw these responses
        await client.request("GET", "/login")
        await client.request("GET", "/rest/api/user/list")
        await client.aclose()
        return client

    client = asyncio.run(go())
    assert extracted == ["x"]
    assert cookies_seen == [None, None, None, None, "JSESSIONID=abc"]
    assert "JSESSIONID" in client.cookies


def test_cookies_assigned_to_the_client_keep_the_skip() -> None:
    client = HttpClient("http://dc.test", auth=None, settings=HttpSettings(), errors=ErrorKinds(error=TargetError),
                        transport=httpx.MockTransport(lambda request: httpx.Response(200)))
    client._client.cookies = {"a": "b"}
    assert type(client.cookies) is type(client._client.cookies) and client.cookies["a"] == "b"
    assert type(client.cookies).__name__ == "_SessionCookies"
    asyncio.run(client.aclose())
