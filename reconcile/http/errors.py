"""Failed requests as one line each, `METHOD url -> status: what the server said` plus what to do, raised
as the caller's own error class (a target's TargetError, a source's SourceError); URLs are masked.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol
from urllib.parse import parse_qsl, urlencode

import httpx

SECRET_PARAMS = ("token", "password", "secret", "api_key", "apikey", "assertion")  # substrings of names


class ErrorFactory(Protocol):
    """Builds the caller's exception: `TargetError` has this signature; a source wraps `SourceError`."""

    def __call__(self, message: str, *, status: int | None = None, hint: str | None = None) -> Exception: ...


@dataclass(frozen=True, slots=True)
class ErrorKinds:
    """What a caller's HTTP failures become, and the words its messages use."""

    error: ErrorFactory  # every refusal and transport failure
    auth: ErrorFactory | None = None  # a 401 (default: `error`)
    url_setting: str = "the URL"  # the setting to check when nothing answers ("target.url")
    request_ids: tuple[str, ...] = ("x-request-id",)  # response headers naming the server's request id

    def make(self, message: str, *, status: int | None = None, hint: str | None = None) -> Exception:
        factory = self.auth if status == 401 and self.auth is not None else self.error
        return factory(message, status=status, hint=hint)


def safe_url(url: httpx.URL | str) -> str:
    """The URL for messages and logs: credentials in the userinfo or query are masked."""
    u = httpx.URL(str(url))
    if u.userinfo:
        u = u.copy_with(username=None, password=None)
    if u.query:
        pairs = parse_qsl(u.query.decode(), keep_blank_values=True)
        masked = [(k, "***" if any(s in k.lower() for s in SECRET_PARAMS) else v) for k, v in pairs]
        u = u.copy_with(query=urlencode(masked, safe="*,").encode())
    return str(u)


def request_id(response: httpx.Response, headers: tuple[str, ...] = ("x-request-id",)) -> str | None:
    """The server's id for this request (the first of `headers` it sent), for the audit log."""
    for name in headers:
        value = response.headers.get(name)
        if value:
            return str(value)
    return None


def server_message(response: httpx.Response) -> str:
    """The server's own explanation, short, in its words (never a Python repr): the usual JSON error
    fields (`message`, `errorMessage`, `errorSummary`, `errors[].title`/`detail`, `errorMessages`,
    `errors: {field: message}`, problem+json `title`/`detail`, OAuth `error`/`error_description`,
    `error: {message}`); else the text."""
    try:
        body = response.json()
    except ValueError:
        text = " ".join(response.text.split())
        return text[:200]
    texts = _error_texts(body, top=True)
    return "; ".join(dict.fromkeys(texts))[:300]  # once each, in order


def _error_texts(value: Any, *, top: bool = False) -> list[str]:
    if isinstance(value, str):
        return [" ".join(value.split())] if value.strip() else []
    if isinstance(value, list):
        return [t for item in value for t in _error_texts(item)]
    if not isinstance(value, dict):
        return []
    said = [t for key in ("message", "errorMessage", "errorSummary") for t in _error_texts(value.get(key))]
    said += _titled(_error_texts(value.get("title")), _error_texts(value.get("detail")))
    if top and isinstance(value.get("error"), str):  # OAuth 2.0: {"error": "invalid_client", "error_description": …}
        said += _titled(_error_texts(value["error"]), _error_texts(value.get("error_description")))
    if said:
        return said
    if top:  # the lists of messages and of per-field messages; an `error` object
        return [t for key in ("errorMessages", "errors", "error") for t in _error_texts(value.get(key))]
    # {"field": "message"} (per-field `errors`)
    return [f"{k}: {t}" for k, v in value.items() if isinstance(v, str) for t in _error_texts(v)]


def _titled(title: list[str], detail: list[str]) -> list[str]:
    return [f"{title[0]}: {detail[0]}"] if title and detail and title != detail else title or detail


def error_for(response: httpx.Response, what_to_do: str, kinds: ErrorKinds) -> Exception:
    """The error for a refused response: `METHOD url -> status: server says; what to do`."""
    req = response.request
    detail = server_message(response)
    rid = request_id(response, kinds.request_ids)
    head = f"{req.method} {safe_url(req.url)} -> {response.status_code}"
    if rid:
        head += f" (request id {rid})"
    message = f"{head}: {detail}" if detail else head
    if response.status_code == 429:
        what_to_do = f"{what_to_do} (rate limited: lower `concurrency` or raise the server's limit)"
    return kinds.make(message, status=response.status_code, hint=what_to_do)


def raise_for(response: httpx.Response, what_to_do: str, kinds: ErrorKinds) -> None:
    """Raise `error_for(response, what_to_do, kinds)` when the response is an error (4xx/5xx)."""
    if response.is_error:
        raise error_for(response, what_to_do, kinds)


def fail(response: httpx.Response, what_to_do: str, kinds: ErrorKinds) -> NoReturn:
    """Raise for a response the caller did not expect, whatever its status."""
    raise error_for(response, what_to_do, kinds)


# ------------------------------------------------------------------ transport failures

FAILURES = {  # a transport failure in a few words, for the retry log line
    httpx.ConnectError: "a refused connection",
    httpx.ConnectTimeout: "a connect timeout",
    httpx.ReadTimeout: "a read timeout",
    httpx.WriteTimeout: "a write timeout",
    httpx.PoolTimeout: "a pool timeout",
    httpx.RemoteProtocolError: "a dropped connection",
    httpx.ReadError: "a connection reset",
}


def failure(exc: httpx.TransportError) -> str:
    return FAILURES.get(type(exc), type(exc).__name__)


def tls_failed(method: str, url: str, exc: httpx.TransportError, kinds: ErrorKinds) -> Exception:
    return kinds.make(f"{method} {url} -> TLS verification failed: {exc}",
                      hint="check the URL, or set the CA bundle that signed the server's certificate")


def unreachable(method: str, url: str, exc: httpx.TransportError, kinds: ErrorKinds) -> Exception:
    """Nothing answered the first request: say what (refused, unknown host, timeout) and what to do."""
    host = httpx.URL(url).host
    port = httpx.URL(url).port
    where = f"{host}:{port}" if port else host
    setting = kinds.url_setting
    if any(isinstance(c, socket.gaierror) for c in _chain(exc)):
        what = f"unknown host {host!r}"
        hint = f"check {setting} (spelling, DNS, proxy)"
    elif isinstance(exc, httpx.ConnectTimeout):
        what = f"no answer from {where} within the timeout"
        hint = f"check {setting}, and that the server is reachable from here (firewall, VPN, proxy)"
    else:
        what = f"connection refused: nothing listens on {where}"
        hint = f"check {setting}, and that the server is running"
    if _loopback(host):
        hint = "is the simulator running? start it with `reconcile sim`, or " + hint
    return kinds.make(f"{method} {url} -> could not connect: {what}", hint=hint)


def transport_error(method: str, url: str, exc: httpx.TransportError, *, idempotent: bool, not_sent: bool,
                    kinds: ErrorKinds) -> Exception:
    what = {
        httpx.ConnectError: "could not connect",
        httpx.ConnectTimeout: "timed out connecting",
        httpx.ReadTimeout: "timed out waiting for the response",
        httpx.WriteTimeout: "timed out sending the request",
        httpx.PoolTimeout: "timed out waiting for a free connection",
        httpx.RemoteProtocolError: "the server closed the connection",
        httpx.ReadError: "the connection failed while reading",
    }.get(type(exc), "the request failed")
    detail = str(exc) or type(exc).__name__
    if not_sent:
        hint = "check the URL, that the server is running and reachable (DNS, firewall, proxy)"
    elif idempotent:
        hint = "the server is failing or overloaded; try again later or lower `concurrency`"
    else:
        hint = "the change may or may not have been made; re-run plan to see the current state"
    return kinds.make(f"{method} {url} -> {what}: {detail}", hint=hint)


def is_tls(exc: BaseException) -> bool:
    """Whether a transport error is a TLS failure (retrying would not help)."""
    return any(isinstance(c, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(c) for c in _chain(exc, 5))


def _chain(exc: BaseException, depth: int = 6) -> Generator[BaseException, None, None]:
    seen: BaseException | None = exc
    for _ in range(depth):
        if seen is None:
            return
        yield seen
        seen = seen.__cause__ or seen.__context__


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
