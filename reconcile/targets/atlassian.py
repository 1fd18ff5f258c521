"""What the Atlassian APIs share over HTTP: their errors (TargetError/AuthError), request-id and rate-limit
headers, the DC XSRF header; `client()` builds an `HttpClient` with them for either target.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NoReturn

import httpx

from reconcile.errors import AuthError, TargetError
from reconcile.http import Backoff, Clock, ErrorKinds, HttpClient, RateHeaders
from reconcile.http import errors as _errors
from reconcile.settings import HttpSettings

ERRORS = ErrorKinds(error=TargetError, auth=AuthError, url_setting="target.url",
                    request_ids=("x-arequestid", "x-request-id", "atl-traceid", "x-b3-traceid"))
# DC sends FillRate/Interval-Seconds (a token bucket), Cloud a Reset timestamp, both Remaining.
RATE_HEADERS = RateHeaders(remaining="x-ratelimit-remaining", limit="x-ratelimit-limit", reset="x-ratelimit-reset",
                           fill_rate="x-ratelimit-fillrate", interval="x-ratelimit-interval-seconds")

Flavor = Literal["dc", "cloud", "cloud-site"]


def client(base_url: str, *, auth: httpx.Auth | None, settings: HttpSettings, flavor: Flavor,
           transport: httpx.AsyncBaseTransport | None = None, backoff: Backoff | None = None,
           clock: Clock | None = None, permanent: Callable[[httpx.Response], bool] | None = None) -> HttpClient:
    """An HttpClient for one Atlassian API; DC's REST API wants `X-Atlassian-Token: no-check` (XSRF)."""
    headers = {"X-Atlassian-Token": "no-check"} if flavor == "dc" else {}
    return HttpClient(base_url, auth=auth, settings=settings, errors=ERRORS, headers=headers,
                      rate_headers=RATE_HEADERS, transport=transport, backoff=backoff, clock=clock,
                      permanent=permanent)


def error_for(response: httpx.Response, what_to_do: str) -> TargetError:
    """The TargetError (AuthError for a 401) for a refused response: `METHOD url -> status: …`."""
    error = _errors.error_for(response, what_to_do, ERRORS)
    assert isinstance(error, TargetError)
    return error


def raise_for(response: httpx.Response, what_to_do: str) -> None:
    if response.is_error:
        raise error_for(response, what_to_do)


def fail(response: httpx.Response, what_to_do: str) -> NoReturn:
    raise error_for(response, what_to_do)


def request_id(response: httpx.Response) -> str | None:
    """The server's id for this request (`X-AREQUESTID` on Confluence DC), for the audit log."""
    return _errors.request_id(response, ERRORS.request_ids)
