"""The Microsoft identity platform's token endpoint, `POST /{tenant}/oauth2/v2.0/token`: client credentials
with a client secret or a certificate (`client_assertion`, a JWT whose `x5t`/`x5t#S256` header names a
registered certificate and which that certificate's key signed), for the scope `https://graph.microsoft.com/.default`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography import x509
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from reconcile.sim.context import SimContext
from reconcile.sim.entra_id.world import EntraApp, EntraWorld, stable_id

LOGIN = "https://login.microsoftonline.com"
GRAPH_DEFAULT_SCOPE = "https://graph.microsoft.com/.default"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SKEW = 300  # seconds of clock skew the identity platform tolerates on assertion times
NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


class TokenError(Exception):
    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.code, self.description = status, error, code, description


def _error(ctx: SimContext, exc: TokenError) -> Response:
    now = datetime.fromtimestamp(ctx.wall(), UTC)
    trace = stable_id("trace", str(ctx.log.counts.get("entra-id", 0)))
    body = {"error": exc.error, "error_description": f"AADSTS{exc.code}: {exc.description} Trace ID: {trace} "
                                                     f"Correlation ID: {trace} Timestamp: {now:%Y-%m-%d %H:%M:%SZ}",
            "error_codes": [exc.code], "timestamp": f"{now:%Y-%m-%d %H:%M:%SZ}", "trace_id": trace,
            "correlation_id": trace, "error_uri": f"{LOGIN}/error?code={exc.code}"}
    return JSONResponse(body, status_code=exc.status, headers=NO_STORE)


def _audiences(request: Request, tenant: str, world: EntraWorld) -> set[str]:
    """The token URL as the real service names it (by tenant id or domain), or as this simulator is reached."""
    here = f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
    return {here} | {f"{LOGIN}/{t}/oauth2/v2.0/token" for t in (tenant, world.tenant_id, world.domain)}


def verify_assertion(assertion: str, app: EntraApp, audiences: set[str], now: float) -> None:
    """Check a client assertion the way the identity platform does; raises TokenError."""
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.DecodeError:
        raise TokenError(400, "invalid_client", 50027, "JWT token is invalid or malformed.") from None
    cert = next((c for c in app.certificates
                 if header.get("x5t#S256") in (c.x5t_s256,) or header.get("x5t") in (c.x5t,)), None)
    if cert is None:
        named = header.get("x5t#S256") or header.get("x5t") or "(none)"
        raise TokenError(401, "invalid_client", 700027, f"The certificate with identifier used to sign the client "
                                                        f"assertion is not registered on application. [Reason - The "
                                                        f"key was not found., Thumbprint of key used by client: "
                                                        f"'{named}']")
    key = x509.load_der_x509_certificate(cert.der).public_key()
    try:
        claims: dict[str, Any] = jwt.decode(assertion, key, algorithms=["RS256", "PS256"],  # type: ignore[arg-type]
                                            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                                                     "verify_aud": False, "verify_iss": False})
    except jwt.InvalidSignatureError:
        raise TokenError(401, "invalid_client", 700027, "Client assertion contains an invalid signature.") from None
    except jwt.InvalidTokenError as exc:
        raise TokenError(400, "invalid_client", 50027, f"JWT token is invalid or malformed: {exc}.") from None
    if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
        raise TokenError(401, "invalid_client", 700021,
                         "Client assertion application identifier doesn't match 'client_id' parameter.")
    aud = claims.get("aud")
    if not (aud in audiences if isinstance(aud, str) else isinstance(aud, list) and set(aud) & audiences):
        raise TokenError(401, "invalid_client", 700212, f"No matching federated identity record found for presented "
                                                        f"assertion audience '{aud}'.")
    exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat"))
    if not isinstance(exp, int | float) or now > exp + SKEW or (isinstance(nbf, int | float) and now < nbf - SKEW):
        raise TokenError(401, "invalid_client", 700024, "Client assertion is not within its valid time range.")


def _authenticate(form: dict[str, str], app: EntraApp, audiences: set[str], now: float) -> None:
    secret, assertion = form.get("client_secret"), form.get("client_assertion")
    if secret is not None:
        if secret not in app.secrets:
            raise TokenError(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being "
                                                             "sent in the request is the client secret value, not the "
                                                             "client secret ID.")
        return
    if assertion is not None:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise TokenError(400, "invalid_request", 50027, "Invalid client_assertion_type.")
        verify_assertion(str(assertion), app, audiences, now)
        return
    raise TokenError(401, "invalid_client", 7000218, "The request body must contain the following parameter: "
                                                     "'client_assertion' or 'client_secret'.")


async def _form(request: Request) -> dict[str, str]:
    """The url-encoded form body (what the token endpoint reads; any other body carries no parameters)."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    fields = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def token_endpoint(ctx: SimContext, world: EntraWorld) -> Any:
    async def token(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        try:
            if tenant.lower() not in (world.tenant_id, world.domain.lower()):
                raise TokenError(400, "invalid_request", 90002, f"Tenant '{tenant}' not found. Check to make sure "
                                                                f"you have the correct tenant ID.")
            form = await _form(request)
            if "grant_type" not in form:
                raise TokenError(400, "invalid_request", 900144, "The request body must contain the following "
                                                                 "parameter: 'grant_type'.")
            if form.get("grant_type") != "client_credentials":
                raise TokenError(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant "
                                                                       "type.")
            client_id = str(form.get("client_id") or "")
            app = world.apps.get(client_id)
            if app is None:
                raise TokenError(400, "unauthorized_client", 700016, f"Application with identifier '{client_id}' was "
                                                                     f"not found in the directory '{world.domain}'.")
            scope = str(form.get("scope") or "")
            if not scope:
                raise TokenError(400, "invalid_request", 900144, "The request body must contain the following "
                                                                 "parameter: 'scope'.")
            if scope.split() != [GRAPH_DEFAULT_SCOPE]:
                raise TokenError(400, "invalid_scope", 1002012, f"The provided value for scope {scope} is not valid. "
                                                                f"Client credential flows must have a scope value with "
                                                                f"/.default suffixed to the resource identifier.")
            _authenticate(form, app, _audiences(request, tenant, world), ctx.wall())
        except TokenError as exc:
            return _error(ctx, exc)
        value, _ = world.issue(app, ctx.clock())
        return JSONResponse({"token_type": "Bearer", "expires_in": world.token_lifetime,
                             "ext_expires_in": world.token_lifetime, "access_token": value}, headers=NO_STORE)

    return token
