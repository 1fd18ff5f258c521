"""The client builds each request's URL itself, parsed once: the same URL httpx's own base-URL and
params merging would send, and `safe_url` runs only when a line is logged or an error raised."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from reconcile.errors import TargetError
from reconcile.http import HttpClient
from reconcile.http.errors import ErrorKinds, safe_url
from reconcile.settings import HttpSettings

BASE = "http://dc.test/confluence"
CASES: list[tuple[str, dict[str, Any] | None]] = [
    ("/rest/api/user/list", {"expand": "status", "start": 1000, "limit": 1000}),
    ("rest/api/group/team%2F1/member", {"start": 0}),
    ("/rest/api/group/a b/member", None),
    ("/rest/api/user?key=abc", None),
    ("/rest/api/user?key=abc", {"username": "ä ö+&="}),
    ("/rest/api/user?key=abc", {}),
    ("/admin/x", {"flag": True, "none": None, "many": ["a", "b"]}),
    ("http://other.test/next?cursor=x", None),
    ("https://other.test/next?cursor=x", {"cursor": "y"}),
]


def _sent(path: str, params: dict[str, Any] | None) -> str:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    async def go() -> None:
        client = HttpClient(BASE, auth=None, settings=HttpSettings(), errors=ErrorKinds(error=TargetError),
                            transport=httpx.MockTransport(handler))
        await client.request("GET", path, params=params)
        await client.aclose()

    asyncio.run(go())
    return str(seen[0].url)


@pytest.mark.parametrize(("path", "params"), CASES)
def test_the_url_sent_is_the_one_httpx_would_build(path: str, params: dict[str, Any] | None) -> None:
    expected = httpx.AsyncClient(base_url=BASE).build_request("GET", path, params=params).url
    assert _sent(path, params) == str(expected)


def test_safe_url_runs_only_for_a_logged_line(monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    def counting(url: httpx.URL | str) -> str:
        calls.append(str(url))
        return safe_url(url)

    monkeypatch.setattr("reconcile.http.transport.safe_url", counting)
    caplog.set_level(logging.INFO, logger="reconcile.http")
    _sent("/rest/api/user/list", {"start": 0})
    assert calls == []  # nothing logged: nothing masked
    caplog.set_level(logging.DEBUG, logger="reconcile.http")
    _sent("/rest/api/user/list", {"start": 0, "token": "s3cret"})
    assert len(calls) == 1
    assert "s3cret" not in caplog.text and "/rest/api/user/list?start=0&token=***" in caplog.text
