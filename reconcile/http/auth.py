"""Credentials on requests, in one place: static schemes (Bearer, Basic, `SSWS`) and OAuth 2.0 access
tokens (client secret, `private_key_jwt` assertion, JWT-bearer grant), cached until shortly before
they expire and fetched again on expiry or on a 401 (once). Tokens and keys are never logged.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from reconcile.http.client import HttpClient
from reconcile.http.errors import error_for
from reconcile.settings import Secret

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class HeaderAuth(httpx.Auth):
    """`Authorization: <scheme> <secret>`: Bearer tokens and keys, Okta's `SSWS` API token."""

    def __init__(self, scheme: str, secret: Secret) -> None:
        self.scheme = scheme
        self._secret = secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"{self.scheme} {self._secret.reveal()}"
        yield request

    def __repr__(self) -> str:
        return f"HeaderAuth({self.scheme!r}, {self._secret!r})"


def bearer(secret: Secret) -> httpx.Auth:
    return HeaderAuth("Bearer", secret)


def ssws(secret: Secret) -> httpx.Auth:
    return HeaderAuth("SSWS", secret)


def basic(user: str, secret: Secret) -> httpx.Auth:
    return httpx.BasicAuth(user, secret.reveal())


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key (PEM) that signs assertions; `headers` adds JWS header fields (e.g. `x5t#S256`)."""

    pem: Secret
    algorithm: str = "RS256"
    kid: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def sign(self, claims: Mapping[str, Any]) -> str:
        import jwt  # only where a key signs: it loads the cryptography bindings

        headers = {**self.headers, **({"kid": self.kid} if self.kid else {})}
        try:
            return jwt.encode(dict(claims), self.pem.reveal(), algorithm=self.algorithm, headers=headers or None)
        except (jwt.PyJWTError, ValueError, TypeError) as exc:  # the key's text never goes into a message
            raise ValueError(f"cannot sign with this {self.algorithm} key ({type(exc).__name__})") from None


@dataclass(frozen=True, slots=True)
class ClientSecret:
    """Client-credentials grant authenticated by a client secret (Entra ID app secret, generic OAuth)."""

    client_id: str
    secret: Secret

    def form(self, token_url: str, now: float, jti: str) -> dict[str, str]:
        return {"grant_type": "client_credentials", "client_id": self.client_id,
                "client_secret": self.secret.reveal()}


@dataclass(frozen=True, slots=True)
class PrivateKeyJwt:
    """Client-credentials grant authenticated by a signed assertion, RFC 7523 `private_key_jwt`
    (Okta service apps, Entra ID certificates): iss = sub = client id, aud = the token URL."""

    client_id: str
    key: SigningKey
    audience: str | None = None  # default: the token URL
    lifetime: float = 300.0

    def form(self, token_url: str, now: float, jti: str) -> dict[str, str]:
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": self.audience or token_url,
                  "iat": int(now), "exp": int(now + self.lifetime), "jti": jti}
        return {"grant_type": "client_credentials", "client_id": self.client_id,
                "client_assertion_type": ASSERTION_TYPE, "client_assertion": self.key.sign(claims)}


@dataclass(frozen=True, slots=True)
class JwtBearer:
    """The JWT-bearer authorization grant, RFC 7523 (Google service accounts): the scope goes in the
    assertion, `subject` is the user to act as (domain-wide delegation)."""

    issuer: str
    key: SigningKey
    scope: str = ""
    subject: str | None = None
    audience: str | None = None  # default: the token URL
    lifetime: float = 3600.0

    def form(self, token_url: str, now: float, jti: str) -> dict[str, str]:
        claims: dict[str, Any] = {"iss": self.issuer, "aud": self.audience or token_url, "iat": int(now),
                                  "exp": int(now + self.lifetime), "jti": jti}
        if self.scope:
            claims["scope"] = self.scope
        if self.subject:
            claims["sub"] = self.subject
        return {"grant_type": JWT_BEARER_GRANT, "assertion": self.key.sign(claims)}


Grant = ClientSecret | PrivateKeyJwt | JwtBearer
TOKEN_HINT = "check the client id, its secret or key, the token URL and the scopes granted to the client"


class OAuthToken(httpx.Auth):
    """`Authorization: Bearer <access token>` from a token endpoint, fetched through `client` (no auth of
    its own; its retries, clock and error classes apply). The token is reused until `refresh_before`
    seconds before `expires_in` runs out; a 401 fetches a fresh one and sends the request again, once.
    """

    def __init__(self, token_url: str, grant: Grant, *, client: HttpClient, scope: str = "",
                 refresh_before: float = 60.0, default_lifetime: float = 300.0,
                 new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        self.token_url = token_url
        self.grant = grant
        self.client = client
        self.scope = scope
        self.refresh_before = refresh_before
        self.default_lifetime = default_lifetime  # when the answer has no `expires_in`
        self.new_id = new_id
        self.fetched = 0  # tokens fetched (for tests and logs)
        self._token: str | None = None
        self._expires = 0.0  # monotonic
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"OAuthToken({self.token_url!r}, {type(self.grant).__name__})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("OAuthToken works with httpx.AsyncClient only")

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {await self.token(stale=token)}"
            yield request

    async def token(self, stale: str | None = None) -> str:
        """The cached token, or a fresh one when it is about to expire or is `stale` (refused)."""
        async with self._lock:  # one fetch at a time; the others then reuse its token
            if self._token is not None and self._token != stale and self.client.clock.monotonic() < self._expires:
                return self._token
            self._token = None
            token, lifetime = await self._fetch()
            margin = min(self.refresh_before, lifetime / 2)
            self._token, self._expires = token, self.client.clock.monotonic() + lifetime - margin
            return token

    async def _fetch(self) -> tuple[str, float]:
        kinds, url = self.client.errors, self.client.url(self.token_url)
        try:
            form = self.grant.form(self.token_url, self.client.clock.wall(), self.new_id())
        except ValueError as exc:
            raise kinds.make(f"POST {url}: {exc}", hint="check the private key (PEM) and its algorithm") from None
        if self.scope and not isinstance(self.grant, JwtBearer):
            form["scope"] = self.scope
        response = await self.client.request("POST", self.token_url, data=form, idempotent=True)
        self.fetched += 1
        if response.is_error:
            raise error_for(response, TOKEN_HINT, kinds)
        try:
            body = response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type").split(";")[0]
            raise kinds.make(f"POST {url} -> {response.status_code}: the token endpoint answered {kind}, not a "
                             "JSON token", hint="check the token URL (a proxy or login page answered?)") from None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise kinds.make(f"POST {url} -> {response.status_code}: no access_token in the answer", hint=TOKEN_HINT)
        kind = str(body.get("token_type") or "Bearer")
        if kind.lower() != "bearer":
            raise kinds.make(f"POST {url} -> {response.status_code}: token_type {kind!r} is not supported, only "
                             "Bearer", hint="turn off proof-of-possession (DPoP) for this client")
        lifetime = body.get("expires_in")
        try:
            seconds = float(lifetime) if lifetime is not None else self.default_lifetime
        except (TypeError, ValueError):
            seconds = self.default_lifetime
        return token, max(seconds, 0.0)
