"""Microsoft Graph reads for the Entra ID source: the token (client secret or certificate assertion), every
page of a collection by `@odata.nextLink`, and Graph's refusals as one line naming the source and the fix.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx
import msgspec

from reconcile.config.idp_entra import EntraSourceSettings
from reconcile.errors import SourceError
from reconcile.http import (
    Backoff,
    ClientSecret,
    Clock,
    ErrorKinds,
    HttpClient,
    OAuthToken,
    PrivateKeyJwt,
    SigningKey,
    error_for,
    safe_url,
)

# The least-privileged application permission for each read (Graph permissions reference).
PERMISSION = {"users": "User.Read.All", "groups": "GroupMember.Read.All", "members": "GroupMember.Read.All"}
PAGE = 999  # Graph's largest $top for directory objects
T = TypeVar("T")


class _Page(msgspec.Struct, Generic[T]):
    """A collection page, decoded straight into the rows' types (properties not read are skipped)."""

    value: list[T]
    next_link: Any = msgspec.field(default=None, name="@odata.nextLink")


_DECODERS: dict[type, Any] = {}


def _decoder(item: type[T]) -> msgspec.json.Decoder[_Page[T]]:
    decoder: msgspec.json.Decoder[_Page[T]] | None = _DECODERS.get(item)
    if decoder is None:
        decoder = _DECODERS[item] = msgspec.json.Decoder(_Page[item])  # type: ignore[valid-type]
    return decoder


def errors_of(name: str) -> ErrorKinds:
    """Every HTTP failure of this source becomes a SourceError naming it."""
    where = f"source '{name}' (entra-id)"

    def make(message: str, *, status: int | None = None, hint: str | None = None) -> Exception:
        return SourceError(f"{where}: {message}", hint=hint)

    return ErrorKinds(error=make, url_setting=f"sources.{name}.graph_url and sources.{name}.authority",
                      request_ids=("request-id", "client-request-id"))


def thumbprint(certificate_pem: bytes, *, now: float, where: str) -> str:
    """The certificate's base64url SHA-256 thumbprint (`x5t#S256`); SourceError when it is not a certificate
    or has expired (the identity platform refuses an expired certificate's assertions)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    try:
        cert = x509.load_pem_x509_certificate(certificate_pem)
    except ValueError:
        raise SourceError(f"{where}: not a PEM certificate",
                          hint="give the certificate registered on the app registration (-----BEGIN CERTIFICATE-----)"
                          ) from None
    expiry = cert.not_valid_after_utc
    if expiry.timestamp() < now:
        raise SourceError(f"{where}: the certificate expired on {expiry:%Y-%m-%d %H:%M} UTC (at "
                          f"{datetime.fromtimestamp(now, UTC):%Y-%m-%d %H:%M} UTC)",
                          hint="create a new certificate, upload it to the app registration (Certificates & "
                          "secrets) and point certificate_file and private_key_file at it")
    return base64.urlsafe_b64encode(cert.fingerprint(hashes.SHA256())).rstrip(b"=").decode("ascii")


def _matches(certificate_pem: bytes, key: SigningKey) -> bool:
    """Whether the private key is the certificate's (else every assertion would carry a wrong signature)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key

    try:
        private = load_pem_private_key(key.pem.reveal().encode(), password=None)
    except (ValueError, TypeError):
        return False
    public = x509.load_pem_x509_certificate(certificate_pem).public_key()
    spki = Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    return private.public_key().public_bytes(*spki) == public.public_bytes(*spki)


def grant(config: EntraSourceSettings, clock: Clock) -> ClientSecret | PrivateKeyJwt:
    """The client-credentials grant the configuration names: its secret, or its certificate's assertion."""
    where = f"source '{config.name}' (entra-id)"
    if config.client_secret is not None:
        return ClientSecret(config.client_id, config.client_secret)
    if config.certificate_file is None or config.private_key is None:
        raise SourceError(f"{where}: no credential", hint=f"set sources.{config.name}.auth.client_secret or "
                          "certificate_file + private_key_file")
    path = Path(config.certificate_file)
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{where}: cannot read certificate_file {path}: {exc.strerror}",
                          hint="fix the path (relative paths start at the desired directory)") from None
    x5t = thumbprint(pem, now=clock.wall(), where=f"{where}: certificate_file {path}")
    # PS256 with x5t#S256: what the identity platform documents today (RS256 + SHA-1 x5t is the legacy form)
    key = SigningKey(config.private_key, algorithm="PS256", headers={"x5t#S256": x5t})
    if not _matches(pem, key):
        raise SourceError(f"{where}: private_key_file is not the private key of certificate_file {path} (or not "
                          "an unencrypted PEM key)",
                          hint="give the key the certificate was made with; its assertions would not verify")
    return PrivateKeyJwt(config.client_id, key)


class Graph:
    """Authenticated GETs to `<graph_url>/v1.0`; `requests` counts every request sent (token included)."""

    def __init__(self, config: EntraSourceSettings, *, transport: httpx.AsyncBaseTransport | None = None,
                 backoff: Backoff | None = None, clock: Clock | None = None) -> None:
        self.config = config
        kinds = errors_of(config.name)
        self.login = HttpClient(config.authority, auth=None, settings=config.http, errors=kinds,
                                transport=transport, backoff=backoff, clock=clock)
        token_url = f"{config.authority}/{config.tenant}/oauth2/v2.0/token"
        self.auth = OAuthToken(token_url, grant(config, self.login.clock), client=self.login, scope=config.scope)
        self.client = HttpClient(config.graph_url, auth=self.auth, settings=config.http, errors=kinds,
                                 transport=transport, backoff=backoff, clock=clock)
        self.kinds = kinds
        self.origin = httpx.URL(config.graph_url)

    @property
    def requests(self) -> int:
        return self.login.requests + self.client.requests

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.login.aclose()

    async def pages(self, path: str, params: Mapping[str, str], *, what: str, item: type[T],
                    headers: Mapping[str, str] | None = None, chain: bool = False) -> AsyncIterator[list[T]]:
        """Every page's `value` of `GET /v1.0/<path>` as `item`s, following `@odata.nextLink` verbatim until it
        is absent. `chain`: the read's longest path (the user list), whose next page waits for a lane behind
        no other request.

        Fail closed: a page that still fails after the retries raises; nothing read so far is used."""
        url: str = f"/v1.0/{path}"
        query: Mapping[str, str] | None = params
        while True:
            response = await self.client.request("GET", url, params=query, headers=headers, first=chain)
            value, link = self._page(response, what, item)
            yield value
            if not link:
                return
            url, query = self._same_origin(str(link), response), None

    def _page(self, response: httpx.Response, what: str, item: type[T]) -> tuple[list[T], Any]:
        """The page's rows and next link: typed decoding, or (an odd answer) the checks that name what is wrong."""
        self._refused(response, what)
        try:
            page = _decoder(item).decode(response.content)
            return page.value, page.next_link
        except msgspec.MsgspecError:
            pass  # not the expected shape: the generic reading below says why, or keeps the object rows
        body = self._body(response, what)
        value = body.get("value")
        if not isinstance(value, list):
            raise self.kinds.make(f"GET {safe_url(response.request.url)} -> {response.status_code}: the answer "
                                  "has no `value` list", hint=f"check sources.{self.config.name}.graph_url")
        return [msgspec.convert(row, item) for row in value if isinstance(row, dict)], body.get("@odata.nextLink")

    def _same_origin(self, link: str, response: httpx.Response) -> str:
        """A next link on the Graph host we were given (never send the token elsewhere)."""
        target = httpx.URL(link)
        if (target.scheme, target.host, target.port) != (self.origin.scheme, self.origin.host, self.origin.port):
            raise self.kinds.make(f"GET {safe_url(response.request.url)}: @odata.nextLink points to another host "
                                  f"({target.scheme}://{target.host}); refusing to send the token there",
                                  hint=f"check sources.{self.config.name}.graph_url (a proxy rewriting links?)")
        return link

    def _refused(self, response: httpx.Response, what: str) -> None:
        if not response.is_error:  # every page passes here: its URL is masked only for an error line
            return
        request = f"GET {safe_url(response.request.url)} -> {response.status_code}"
        if response.status_code == 403 and _code(response) == "Authorization_RequestDenied":
            permission = PERMISSION[what]
            raise self.kinds.make(f"{request}: Authorization_RequestDenied: the app registration lacks the "
                                  f"application permission {permission}",
                                  hint=f"grant {permission} (type Application) to client {self.config.client_id} "
                                  "under API permissions, then 'Grant admin consent'")
        raise error_for(response, _fix(what, response, self.config.name), self.kinds)

    def _body(self, response: httpx.Response, what: str) -> dict[str, Any]:
        request = f"GET {safe_url(response.request.url)} -> {response.status_code}"
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            kind = response.headers.get("content-type", "no content type").split(";")[0]
            raise self.kinds.make(f"{request}: the server answered {kind}, not Graph's JSON (a proxy or login "
                                  "page?)", hint=f"check sources.{self.config.name}.graph_url and any proxy on the "
                                  "way (HTTPS_PROXY, NO_PROXY)") from None
        if not isinstance(body, dict):
            raise self.kinds.make(f"{request}: the answer is not a JSON object",
                                  hint=f"check sources.{self.config.name}.graph_url")
        return body


def _code(response: httpx.Response) -> str | None:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return None
    return str(error.get("code")) if isinstance(error, dict) else None


def _fix(what: str, response: httpx.Response, name: str) -> str:
    if response.status_code == 400 and what in ("users", "groups"):
        return (f"check sources.{name}.{what}.filter: Graph rejects it (ne, not, endswith and $count are "
                "advanced queries it does not run here)")
    if response.status_code == 401:
        return "the access token was refused: check tenant, client_id and that the app is in this tenant"
    if response.status_code == 404:
        return "the object disappeared while it was read; run plan again"
    return "Graph failed after retries; nothing was planned: try again later or lower http.concurrency"
