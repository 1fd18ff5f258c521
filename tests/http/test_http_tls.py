"""TLS at the HTTP edge: an untrusted certificate is a clear TargetError; `ca_file` makes it trusted.

A real uvicorn server with a throwaway self-signed certificate (openssl) on a loopback port.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from reconcile.errors import TargetError
from reconcile.http import Backoff
from reconcile.http.client import tls_context
from reconcile.settings import HttpSettings
from reconcile.targets import atlassian
from tests.support.fake_clock import FakeClock
from tests.support.net import free_port


async def current(request: Request) -> JSONResponse:
    return JSONResponse({"type": "known", "username": "admin", "userKey": "k"})


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")], check=True, capture_output=True)
    port = free_port()
    app = Starlette(routes=[Route("/rest/api/user/current", current)])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                           ssl_keyfile=str(d / "key.pem"), ssl_certfile=str(d / "cert.pem")))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the TLS test server did not start"
        time.sleep(0.02)
    yield f"https://127.0.0.1:{port}", d / "cert.pem"
    server.should_exit = True
    thread.join(10)


async def _get(url: str, settings: HttpSettings, fake: FakeClock | None = None) -> int:
    client = atlassian.client(url, auth=None, settings=settings, flavor="dc", backoff=Backoff(base=0.01, cap=0.02),
                              clock=(fake or FakeClock()).clock())
    try:
        return (await client.request("GET", "/rest/api/user/current")).status_code
    finally:
        await client.aclose()


def test_an_untrusted_certificate_is_refused_at_once_with_what_to_do(tls_server: tuple[str, Path]) -> None:
    url, _ = tls_server
    fake = FakeClock()
    with pytest.raises(TargetError) as err:
        asyncio.run(_get(url, HttpSettings(max_retries=4), fake))
    message = str(err.value)
    assert f"GET {url}/rest/api/user/current -> TLS verification failed" in message
    assert "CA bundle" in message
    assert fake.sleeps == []  # not retried: a certificate does not fix itself


def test_ca_file_trusts_the_server_certificate(tls_server: tuple[str, Path]) -> None:
    url, cert = tls_server
    assert asyncio.run(_get(url, HttpSettings(ca_file=str(cert)))) == 200


def test_a_bundle_is_loaded_once_per_process_and_trusts_only_where_it_is_named(tls_server: tuple[str, Path]) -> None:
    url, cert = tls_server
    assert tls_context(str(cert)) is tls_context(str(cert)) and tls_context(None) is tls_context(None)
    assert asyncio.run(_get(url, HttpSettings(ca_file=str(cert)))) == 200
    with pytest.raises(TargetError, match="TLS verification failed"):  # the default context did not learn it
        asyncio.run(_get(url, HttpSettings(max_retries=0)))
