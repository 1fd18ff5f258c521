"""reconcile/http/auth.py against a small in-process OAuth 2.0 token endpoint (Starlette over
httpx.ASGITransport): assertion claims, caching, refresh on expiry (fake clock) and on a 401,
static schemes, and no token or key in logs or errors."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from reconcile.errors import SourceError
from reconcile.http import (
    ClientSecret,
    ErrorKinds,
    HttpClient,
    JwtBearer,
    OAuthToken,
    PrivateKeyJwt,
    SigningKey,
    basic,
    bearer,
    raise_for,
    ssws,
)
from reconcile.settings import HttpSettings, Secret
from tests.support.fake_clock import FakeClock

BASE = "http://idp.test"
TOKEN_URL = f"{BASE}/oauth2/v1/token"
CLIENT_ID = "0oa-service-app"
CLIENT_SECRET = "client-SECRET-value-31337"


def source_error(message: str, *, status: int | None = None, hint: str | None = None) -> Exception:
    return SourceError(message, hint=hint)


SOURCE = ErrorKinds(error=source_error, url_setting="source.url")


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


@dataclass
class Idp:
    """A token endpoint and one API path; `lifetime` is the `expires_in` it grants."""

    lifetime: int = 3600
    public_key: Any = None
    issued: list[str] = field(default_factory=list)
    forms: list[dict[str, str]] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, Any]] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    answer: Response | None = None  # replaces the token endpoint's answer

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/oauth2/v1/token", self.token, methods=["POST"]),
                                 Route("/api/v1/users", self.users)])

    async def token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))  # form-encoded, as RFC 6749 says
        self.forms.append(form)
        if self.answer is not None:
            return self.answer
        assertion = form.get("client_assertion") or form.get("assertion")
        if assertion is not None:
            self.headers.append(jwt.get_unverified_header(assertion))
            self.claims.append(jwt.decode(assertion, self.public_key, algorithms=["RS256", "ES256"],
                                          audience=TOKEN_URL, options={"verify_exp": False}))
        elif form.get("client_secret") != CLIENT_SECRET:
            return JSONResponse({"error": "invalid_client", "error_description": "Client authentication failed"},
                                status_code=401)
        token = f"access-TOKEN-{len(self.issued) + 1}"
        self.issued.append(token)
        return JSONResponse({"token_type": "Bearer", "expires_in": self.lifetime, "access_token": token,
                             "scope": form.get("scope", "")})

    async def users(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ")
        if token not in self.issued or token in self.revoked:
            return JSONResponse({"errorCode": "E0000011", "errorSummary": "Invalid token provided"}, status_code=401)
        return JSONResponse([{"id": "00u1", "token": token}])


def clients(idp: Idp, fake: FakeClock, grant: Any, **options: Any) -> tuple[HttpClient, OAuthToken]:
    transport = httpx.ASGITransport(app=idp.app())
    settings = HttpSettings(max_retries=2, concurrency=4)
    tokens = HttpClient(BASE, auth=None, settings=settings, errors=SOURCE, transport=transport, clock=fake.clock())
    auth = OAuthToken(TOKEN_URL, grant, client=tokens, scope="okta.users.read okta.groups.read", **options)
    api = HttpClient(BASE, auth=auth, settings=settings, errors=SOURCE, transport=transport, clock=fake.clock())
    return api, auth


async def users(api: HttpClient) -> str:
    response = await api.request("GET", "/api/v1/users")
    raise_for(response, "check the token", SOURCE)
    return str(response.json()[0]["token"])


def test_private_key_jwt_assertion_carries_iss_sub_aud_exp_jti_and_the_token_is_cached() -> None:
    idp, fake = Idp(public_key=RSA_KEY.public_key()), FakeClock()
    grant = PrivateKeyJwt(CLIENT_ID, SigningKey(Secret(pem(RSA_KEY), "${OKTA_KEY}"), "RS256", kid="key-1"))
    api, auth = clients(idp, fake, grant)

    async def go() -> list[str]:
        try:
            return list(await asyncio.gather(*(users(api) for _ in range(6))))
        finally:
            await api.aclose()
            await auth.client.aclose()

    seen = asyncio.run(go())
    assert seen == ["access-TOKEN-1"] * 6 and auth.fetched == 1  # six concurrent requests, one token
    (form,) = idp.forms
    assert form["grant_type"] == "client_credentials" and form["scope"] == "okta.users.read okta.groups.read"
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    (claims,) = idp.claims
    now = int(fake.wall())
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert claims["aud"] == TOKEN_URL
    assert claims["iat"] == now and claims["exp"] == now + 300
    assert len(claims["jti"]) >= 16
    assert idp.headers[0]["kid"] == "key-1" and idp.headers[0]["alg"] == "RS256"


def test_the_token_is_fetched_again_shortly_before_it_expires_with_a_fresh_jti() -> None:
    idp, fake = Idp(lifetime=600, public_key=EC_KEY.public_key()), FakeClock()
    grant = PrivateKeyJwt(CLIENT_ID, SigningKey(Secret(pem(EC_KEY)), "ES256"))
    api, auth = clients(idp, fake, grant, refresh_before=60)

    async def go() -> list[str]:
        seen = [await users(api)]
        await fake.sleep(530)  # 70 s left: still good
        seen.append(await users(api))
        await fake.sleep(20)  # 50 s left: inside the margin
        seen.append(await users(api))
        await api.aclose()
        return seen

    assert asyncio.run(go()) == ["access-TOKEN-1", "access-TOKEN-1", "access-TOKEN-2"]
    assert auth.fetched == 2
    first, second = idp.claims
    assert first["jti"] != second["jti"] and second["iat"] == first["iat"] + 550


def test_a_401_fetches_a_new_token_once_and_resends() -> None:
    idp, fake = Idp(), FakeClock()
    api, auth = clients(idp, fake, ClientSecret(CLIENT_ID, Secret(CLIENT_SECRET, "${SECRET}")))

    async def go() -> tuple[str, str, httpx.Response]:
        first = await users(api)
        idp.revoked.add(first)  # the server forgot it (rotation, restart)
        second = await users(api)
        idp.revoked.update(idp.issued, {f"access-TOKEN-{n}" for n in range(1, 9)})  # every token refused
        refused = await api.request("GET", "/api/v1/users")
        await api.aclose()
        return first, second, refused

    first, second, refused = asyncio.run(go())
    assert (first, second) == ("access-TOKEN-1", "access-TOKEN-2")
    assert refused.status_code == 401 and auth.fetched == 3  # one refresh for that request, not a loop
    assert idp.forms[0]["client_secret"] == CLIENT_SECRET and idp.forms[0]["grant_type"] == "client_credentials"
    with pytest.raises(SourceError) as err:
        raise_for(refused, "check the client's admin role", SOURCE)
    assert str(err.value).startswith(f"GET {BASE}/api/v1/users -> 401: Invalid token provided")


def test_the_jwt_bearer_grant_puts_scope_and_subject_in_the_assertion() -> None:
    idp, fake = Idp(public_key=RSA_KEY.public_key()), FakeClock()
    grant = JwtBearer("sa@project.iam.test", SigningKey(Secret(pem(RSA_KEY)), kid="k9"),
                      scope="admin.directory.user.readonly", subject="admin@example.com")
    api, _ = clients(idp, fake, grant)

    async def go() -> str:
        try:
            return await users(api)
        finally:
            await api.aclose()

    assert asyncio.run(go()) == "access-TOKEN-1"
    (form,) = idp.forms
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer" and "scope" not in form
    (claims,) = idp.claims
    assert claims["iss"] == "sa@project.iam.test" and claims["sub"] == "admin@example.com"
    assert claims["scope"] == "admin.directory.user.readonly" and claims["exp"] == claims["iat"] + 3600


@pytest.mark.parametrize(("answer", "expected"), [
    (JSONResponse({"error": "invalid_client", "error_description": "Client authentication failed"}, 401),
     f"POST {TOKEN_URL} -> 401: invalid_client: Client authentication failed"),
    (PlainTextResponse("<html>Sign in</html>", headers={"content-type": "text/html"}),
     f"POST {TOKEN_URL} -> 200: the token endpoint answered text/html, not a JSON token"),
    (JSONResponse({"token_type": "DPoP", "access_token": "dpop-TOKEN-x", "expires_in": 60}),
     f"POST {TOKEN_URL} -> 200: token_type 'DPoP' is not supported, only Bearer"),
])
def test_token_endpoint_failures_are_one_line_source_errors_without_secrets(
        answer: Response, expected: str, caplog: pytest.LogCaptureFixture) -> None:
    idp, fake = Idp(answer=answer), FakeClock()
    api, _ = clients(idp, fake, ClientSecret(CLIENT_ID, Secret(CLIENT_SECRET, "${SECRET}")))

    async def go() -> None:
        try:
            await api.request("GET", "/api/v1/users")
        finally:
            await api.aclose()

    with caplog.at_level(logging.DEBUG), pytest.raises(SourceError) as err:
        asyncio.run(go())
    assert str(err.value).splitlines()[0] == expected
    text = caplog.text + str(err.value) + repr(err.value)
    for secret in (CLIENT_SECRET, "dpop-TOKEN-x"):
        assert secret not in text


def test_a_key_that_cannot_sign_is_a_clear_error_without_the_key() -> None:
    idp, fake = Idp(), FakeClock()
    junk = "-----BEGIN PRIVATE KEY-----\nnot-a-KEY-at-all\n-----END PRIVATE KEY-----\n"
    api, auth = clients(idp, fake, PrivateKeyJwt(CLIENT_ID, SigningKey(Secret(junk), "RS256")))

    async def go() -> None:
        try:
            await api.request("GET", "/api/v1/users")
        finally:
            await api.aclose()

    with pytest.raises(SourceError) as err:
        asyncio.run(go())
    assert str(err.value).startswith(f"POST {TOKEN_URL}: cannot sign with this RS256 key")
    assert "not-a-KEY" not in str(err.value) and idp.forms == [] and auth.fetched == 0


def test_no_token_appears_in_debug_logs_or_reprs(caplog: pytest.LogCaptureFixture) -> None:
    idp, fake = Idp(public_key=RSA_KEY.public_key()), FakeClock()
    key = Secret(pem(RSA_KEY), "${OKTA_KEY}")
    api, auth = clients(idp, fake, PrivateKeyJwt(CLIENT_ID, SigningKey(key)))

    async def go() -> str:
        try:
            return await users(api)
        finally:
            await api.aclose()

    with caplog.at_level(logging.DEBUG):
        token = asyncio.run(go())
    assert f"POST {TOKEN_URL} -> 200" in caplog.text and f"GET {BASE}/api/v1/users -> 200" in caplog.text
    text = caplog.text + repr(auth) + repr(auth.grant) + repr(ssws(Secret("ssws-TOKEN", "${OKTA_TOKEN}")))
    for secret in (token, key.reveal()[40:80], "ssws-TOKEN", idp.forms[0]["client_assertion"]):
        assert secret not in text


def test_static_schemes_bearer_basic_and_ssws() -> None:
    seen: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(200, json={})

    async def go() -> None:
        for auth in (bearer(Secret("b-1")), basic("u", Secret("p")), ssws(Secret("00aBc"))):
            c = HttpClient(BASE, auth=auth, settings=HttpSettings(), errors=SOURCE,
                           transport=httpx.MockTransport(handler), clock=FakeClock().clock())
            await c.request("GET", "/x")
            await c.aclose()

    asyncio.run(go())
    assert seen == ["Bearer b-1", "Basic dTpw", "SSWS 00aBc"]
