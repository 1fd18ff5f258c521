"""The Directory API as this source uses it: the service-account key, the JWT-bearer token client, the API
client (Google's quota refusals paced like 429s), paging, and each refusal as one line saying what to check.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import msgspec

from reconcile.config.format import REMOTE_HTTP
from reconcile.config.idp_google import GoogleSourceSettings
from reconcile.errors import SourceError
from reconcile.http import Backoff, Clock, ErrorKinds, HttpClient, JwtBearer, OAuthToken, SigningKey, error_for
from reconcile.settings import Secret

GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"  # the assertion's `aud`, as google-auth sends it
DIRECTORY = "admin/directory/v1"
QUOTA_REASONS = frozenset({"userRateLimitExceeded", "quotaExceeded", "rateLimitExceeded"})


def google_backoff(rng: random.Random | None = None) -> Backoff:
    """Google's advice for its quota refusals: exponential backoff up to 64 s. Four retries wait at least
    84 s in all (8 + 16 + 32 + 64, jittered from 0.7), so a per-minute quota has renewed before the last."""
    return Backoff(base=8.0, cap=64.0, max_wait=64.0, rng=rng or random.Random())


def reasons(response: httpx.Response) -> list[str]:
    """The `error.errors[].reason` of a Google error body (none when it is not one)."""
    try:
        body = response.json()
    except ValueError:
        return []
    error = body.get("error") if isinstance(body, dict) else None
    errors = error.get("errors") if isinstance(error, dict) else None
    return [str(e.get("reason")) for e in errors or () if isinstance(e, dict)]


def throttled(response: httpx.Response) -> bool:
    """A 403 that means "slow down" (per-user rate, concurrent requests), not "forbidden"."""
    return response.status_code == 403 and bool(QUOTA_REASONS & set(reasons(response)))


@dataclass(frozen=True, slots=True)
class ServiceAccountKey:
    """The fields of a service account's JSON key this source uses; `private_key` stays a Secret."""

    client_email: str
    client_id: str
    private_key: Secret
    key_id: str | None
    token_uri: str | None

    @staticmethod
    def parse(credentials: Secret, where: str) -> ServiceAccountKey:
        hint = ("give the JSON key downloaded for the service account (IAM > Service accounts > Keys), with "
                "type, client_email and private_key")
        try:
            data = json.loads(credentials.reveal())
        except ValueError:
            raise SourceError(f"{where}: {credentials} is not JSON, so not a service account key",
                              hint=hint) from None
        if not isinstance(data, dict) or data.get("type", "service_account") != "service_account":
            raise SourceError(f"{where}: {credentials} is not a service account key", hint=hint)
        missing = [k for k in ("client_email", "private_key") if not isinstance(data.get(k), str) or not data[k]]
        if missing:
            raise SourceError(f"{where}: {credentials} has no {' and no '.join(missing)}", hint=hint)
        token_uri = data.get("token_uri")
        return ServiceAccountKey(str(data["client_email"]), str(data.get("client_id") or ""),
                                 Secret(str(data["private_key"]), f"{credentials.reference} private_key"),
                                 str(data["private_key_id"]) if data.get("private_key_id") else None,
                                 str(token_uri) if isinstance(token_uri, str) and token_uri else None)


def _token_hint(message: str, cfg: GoogleSourceSettings, key: ServiceAccountKey) -> str:
    """What to check for a token endpoint refusal, by Google's OAuth error."""
    field = f"sources.{cfg.name}"
    if "unauthorized_client" in message:
        return (f"in the Admin console (Security > API controls > Domain-wide delegation), give client id "
                f"{key.client_id or key.client_email} exactly these scopes: {', '.join(cfg.scopes())}")
    if "Invalid email or User ID" in message:
        return f"{field}.subject ({cfg.subject}) is not a user of the account: name an admin who may read users"
    if "account not found" in message:
        return f"the service account {key.client_email} does not exist (deleted?): create a key for an existing one"
    if "Signature" in message or "not a signed JWT" in message:
        return (f"the key's private_key does not belong to {key.client_email} (deleted or replaced key?): "
                "download a new JSON key")
    if "short-lived" in message:
        return "the clock of this machine is off by more than a few minutes: synchronise it (NTP)"
    if "invalid_scope" in message:
        return "this is a bug in reconcile: please report it"
    return f"check {field}.credentials (the service account key), subject and token_uri"


def _api_hint(response: httpx.Response, cfg: GoogleSourceSettings) -> str:
    why = set(reasons(response))
    field = f"sources.{cfg.name}"
    if response.status_code == 429 or QUOTA_REASONS & why:
        return f"Google's quota is exhausted: lower {field}.http.concurrency, or retry later"
    if response.status_code == 403 and "insufficientPermissions" in why:
        return f"the token lacks a scope: request {', '.join(cfg.scopes())} and grant them in domain-wide delegation"
    if response.status_code == 403:
        who = f"the subject {cfg.subject}" if cfg.subject else "the service account (no subject given)"
        return (f"check that {who} holds an admin role that may read users and groups, that the "
                f"service account's domain-wide delegation grants {', '.join(cfg.scopes())}, and that "
                f"{field}.customer / domain name its own account")
    if response.status_code == 401:
        return f"the access token was refused: check {field}.credentials and token_uri"
    return f"check {field}"


T = TypeVar("T")
_DECODERS: dict[tuple[str, type], Any] = {}


def _decoder(items: str, item: type[T]) -> Any:
    """A decoder of `{"<items>": [item...], "nextPageToken": ...}` (made once per list kind)."""
    decoder = _DECODERS.get((items, item))
    if decoder is None:
        page = msgspec.defstruct(f"Page_{items}", [("items", list[item] | None, None),  # type: ignore[valid-type]
                                                  ("next", Any, None)],
                                 rename={"items": items, "next": "nextPageToken"})
        decoder = _DECODERS[(items, item)] = msgspec.json.Decoder(page)
    return decoder


class Directory:
    """Authenticated reads of one account's Directory API; every failure a SourceError naming the source."""

    def __init__(self, cfg: GoogleSourceSettings, *, transport: httpx.AsyncBaseTransport | None = None,
                 backoff: Backoff | None = None, clock: Clock | None = None) -> None:
        self.cfg = cfg
        self.where = where = f"source '{cfg.name}' (google-workspace)"
        self.key = key = ServiceAccountKey.parse(cfg.credentials, where)
        token_uri = cfg.token_uri or key.token_uri or GOOGLE_TOKEN_URL
        if cfg.token_uri is None and re.match(REMOTE_HTTP, token_uri) and not cfg.insecure:  # the file's
            raise SourceError(f"{where}: the key's token_uri {token_uri} is http:// to another host",
                              hint=f"set sources.{cfg.name}.token_uri to an https:// URL, or `insecure: true`")

        def api_error(message: str, *, status: int | None = None, hint: str | None = None) -> Exception:
            return SourceError(f"{where}: {message}", hint=hint)

        def token_error(message: str, *, status: int | None = None, hint: str | None = None) -> Exception:
            if status is not None and status < 500 and status != 429:
                hint = _token_hint(message, cfg, key)
            return SourceError(f"{where}: {message}", hint=hint)

        self.kinds = ErrorKinds(error=api_error, url_setting=f"sources.{cfg.name}.api_url")
        origin = httpx.URL(token_uri).copy_with(path="/", query=None)
        backoff = backoff or google_backoff()
        self.tokens = HttpClient(str(origin), auth=None, settings=cfg.http, transport=transport, backoff=backoff,
                                 clock=clock, errors=ErrorKinds(error=token_error,
                                                                url_setting=f"sources.{cfg.name}.token_uri"))
        grant = JwtBearer(key.client_email, SigningKey(key.private_key, kid=key.key_id), scope=" ".join(cfg.scopes()),
                          subject=cfg.subject, audience=GOOGLE_TOKEN_URL)
        self.auth = OAuthToken(token_uri, grant, client=self.tokens)
        self.http = HttpClient(cfg.api_url, auth=self.auth, settings=cfg.http, errors=self.kinds,
                               transport=transport, backoff=backoff, clock=clock, throttled=throttled)

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.tokens.aclose()

    @property
    def requests(self) -> int:
        return self.http.requests + self.tokens.requests

    def scope_params(self) -> dict[str, str]:
        """`customer=` or `domain=`: which account (or domain of it) is read."""
        if self.cfg.domain:
            return {"domain": self.cfg.domain}
        return {"customer": self.cfg.customer or "my_customer"}

    async def page(self, path: str, params: Mapping[str, Any], items: str, token: str | None = None, *,
                   seen: set[str], item: type[T]) -> tuple[list[T], str | None]:
        """One page: its `items` list decoded as `item`s (objects only) and the `nextPageToken` (None on the
        last page); a refusal raises. `seen`: the chain's tokens so far (a server repeating one would page forever)."""
        query = {**params, **({"pageToken": token} if token else {})}
        response = await self.http.request("GET", f"{DIRECTORY}/{path}", params=query)
        if response.is_error:
            raise self.refused(response)
        page, following = self._decode(response, items, item)
        if following is not None and following in seen:
            raise SourceError(f"{self.where}: GET {self.http.url(str(response.request.url))}: the same "
                              "nextPageToken came twice", hint="retry later; nothing was planned")
        if following is not None:
            seen.add(following)
        return page, following

    async def pages(self, path: str, params: Mapping[str, Any], items: str, item: type[T]) -> AsyncIterator[list[T]]:
        """Each page's `items` list, following `nextPageToken` to the end; any refusal raises."""
        seen: set[str] = set()
        page, token = await self.page(path, params, items, seen=seen, item=item)
        yield page
        while token is not None:
            page, token = await self.page(path, params, items, token, seen=seen, item=item)
            yield page

    def _decode(self, response: httpx.Response, items: str, item: type[T]) -> tuple[list[T], str | None]:
        """Typed decoding straight into `item`s (fields not read are skipped); an answer of another shape
        goes through the generic checks, which say what is wrong or keep its object items."""
        try:
            body = _decoder(items, item).decode(response.content)
            return body.items or [], str(body.next or "") or None
        except msgspec.MsgspecError:
            pass
        generic = self.json(response)
        page = generic.get(items) or []
        if not isinstance(page, list):
            raise SourceError(f"{self.where}: GET {self.http.url(str(response.request.url))} -> "
                              f"{response.status_code}: `{items}` is not a list", hint=self.proxy_hint)
        return ([msgspec.convert(x, item) for x in page if isinstance(x, dict)],
                str(generic.get("nextPageToken") or "") or None)

    @property
    def proxy_hint(self) -> str:
        return f"check sources.{self.cfg.name}.api_url (a proxy or login page answered?)"

    def json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type").split(";")[0]
            raise SourceError(f"{self.where}: GET {self.http.url(str(response.request.url))} -> "
                              f"{response.status_code}: the server answered {kind}, not JSON",
                              hint=self.proxy_hint) from None
        if not isinstance(body, dict):
            raise SourceError(f"{self.where}: GET {self.http.url(str(response.request.url))} -> "
                              f"{response.status_code}: not a Directory API answer", hint=self.proxy_hint)
        return body

    def refused(self, response: httpx.Response) -> Exception:
        hint = _api_hint(response, self.cfg)
        if response.status_code == 400 and "query" in response.request.url.params:
            hint = (f"Google rejected the query {response.request.url.params['query']!r}: fix "
                    f"sources.{self.cfg.name}.users.query or groups.query (Google's search syntax)")
        if response.status_code < 500 and "json" not in response.headers.get("content-type", "json"):
            hint = self.proxy_hint
        return error_for(response, hint, self.kinds)
