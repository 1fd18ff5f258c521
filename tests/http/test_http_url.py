"""The client builds each request's URL itself, parsed once: the same URL httpx's own base-URL and
params merging would send, and `safe_url` runs only when a line is logged or an error raised."""

from __future__ import annotations

import asyncio
import enum
import logging
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconcile.errors import TargetError
from reconcile.http import HttpClient
from reconcile.http.errors import ErrorKinds, safe_url
from reconcile.settings import HttpSettings
from tests.support.examples import examples

BASE = "http://dc.test/confluence"


class Level(enum.IntEnum):
    HIGH = 3  # str() is "Level.HIGH": httpx's own rendering, not the number
CASES: list[tuple[str, dict[str, Any] | None]] = [
    ("/rest/api/user/list", {"expand": "status", "start": 1000, "limit": 1000}),
    ("rest/api/group/team%2F1/member", {"start": 0}),
    ("/rest/api/group/a b/member", None),
    ("/rest/api/user?key=abc", None),
    ("/rest/api/user?key=abc", {"username": "ä ö+&="}),
    ("/rest/api/user?key=abc", {}),
    ("/admin/x", {"flag": True, "none": None, "many": ["a", "b"]}),
    ("/admin/x", {"start": -1, "empty": "", "v": "1.5~x_y-z", "f": 1.5, "off": False}),
    ("/admin/x", {"level": Level.HIGH, "plain": "abc"}),
    ("/admin/x", {"a b": "c", "pct": "50%25", "slash": "a/b"}),
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


REFERENCE = httpx.AsyncClient(base_url=BASE, transport=httpx.MockTransport(lambda request: httpx.Response(200)))
VALUES = st.one_of(st.text(max_size=8), st.integers(), st.booleans(), st.none(), st.sampled_from(["100", "a.b", "%2F"]))


@settings(max_examples=examples(150), deadline=None)
@given(st.dictionaries(st.text(max_size=6), VALUES, max_size=4))
def test_any_params_give_the_url_httpx_would_build(params: dict[str, Any]) -> None:
    expected = REFERENCE.build_request("GET", "/rest/api/x", params=params).url
    assert _sent("/rest/api/x", params) == str(expected)


def test_plain_paging_params_skip_httpx_query_quoting(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[object] = []

    class Counting(httpx.QueryParams):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            built.append(args)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr("reconcile.http.client.httpx.QueryParams", Counting)
    assert _sent("/rest/api/user/list", {"expand": "status", "limit": 100, "start": 12300}).endswith(
        "/rest/api/user/list?expand=status&limit=100&start=12300")
    assert built == []  # the page's URL was written directly
    assert _sent("/rest/api/user", {"username": "a b"}).endswith("/rest/api/user?username=a+b")
    assert len(built) == 1  # anything else: httpx's own encoding
