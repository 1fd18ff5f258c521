"""Okta authentication: `SSWS` API tokens and OAuth bearer tokens from `POST /oauth2/v1/token`
(client credentials with a `private_key_jwt` client assertion), and Okta's error bodies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from reconcile.sim.assertions import Rejected, form, unverified, verify
from reconcile.sim.context import SimContext
from reconcile.sim.okta.world import OktaWorld

PREFIX = "/okta"
TOKEN_PATH = "/oauth2/v1/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_SECONDS = 3600  # Okta: "the lifetime for this token is fixed at one hour"

# What Okta's token endpoint says for each rejected assertion (error_description strings as Okta words them
# where known: okta/okta-sdk-dotnet#600 for the audience one).
REJECTIONS = {
    "malformed": "The client_assertion token is malformed.",
    "signature": "The client_assertion signature is invalid.",
    "audience": "The audience claim for client_assertion must be the endpoint invoked for the request.",
    "expired": "The client_assertion token is expired.",
    "lifetime": "The client_assertion token has an expiration too far in the future.",
    "claims": "The client_assertion token is missing required claims.",
}


def error_id(ctx: SimContext) -> str:
    ctx.extra["okta.errors"] = ctx.extra.get("okta.errors", 0) + 1
    return "oae" + hashlib.sha256(f"{ctx.settings.seed}:{ctx.extra['okta.errors']}".encode()).hexdigest()[:22]


def okta_error_body(code: str, summary: str, error_id_: str, causes: Sequence[str] = ()) -> dict[str, Any]:
    return {"errorCode": code, "errorSummary": summary, "errorLink": code, "errorId": error_id_,
            "errorCauses": [{"errorSummary": cause} for cause in causes]}


def okta_error(ctx: SimContext, status: int, code: str, summary: str, causes: Sequence[str] = (), *,
               headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(okta_error_body(code, summary, error_id(ctx), causes), status_code=status, headers=headers)


def world_of(ctx: SimContext) -> OktaWorld:
    world = ctx.extra.get("okta")
    if not isinstance(world, OktaWorld):
        world = ctx.extra["okta"] = OktaWorld()
    return world


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status,
                        headers={"Cache-Control": "no-cache, no-store", "Pragma": "no-cache"})


def token_url(request: Request, world: OktaWorld) -> str:
    """What a client assertion's `aud` must be: the org's token endpoint URL."""
    if world.org_url:
        return world.org_url + TOKEN_PATH
    return f"{request.url.scheme}://{request.url.netloc}{PREFIX}{TOKEN_PATH}"


async def token(ctx: SimContext, request: Request) -> Response:
    world = world_of(ctx)
    fields = await form(request)
    grant = str(fields.get("grant_type") or "")
    if grant != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", f"The grant_type '{grant}' is not supported.")
    if fields.get("client_secret") is not None:
        return _oauth_error(401, "invalid_client", "Client authentication with a client_secret is not allowed for "
                            "service apps with Okta scopes: use private_key_jwt.")
    if fields.get("client_assertion_type") != ASSERTION_TYPE:
        return _oauth_error(401, "invalid_client", "The client_assertion_type is invalid.")
    assertion = str(fields.get("client_assertion") or "")
    try:
        _, claims = unverified(assertion)
    except Rejected:
        return _oauth_error(401, "invalid_client", REJECTIONS["malformed"])
    client_id = str(claims.get("iss") or "")
    app = world.service_apps.get(client_id)
    if app is None or fields.get("client_id") not in (None, client_id):
        return _oauth_error(401, "invalid_client", "Invalid value for 'client_id' parameter.")
    if claims.get("sub") != client_id:
        return _oauth_error(401, "invalid_client", "The 'sub' claim of the client_assertion must be the client_id.")
    try:
        verify(assertion, app.public_keys, audiences={token_url(request, world)}, now=ctx.wall())
    except Rejected as exc:
        return _oauth_error(401, "invalid_client", REJECTIONS.get(exc.kind, REJECTIONS["signature"]))
    scopes = str(fields.get("scope") or "").split()
    if not scopes:
        return _oauth_error(400, "invalid_scope", "The authorization server resource does not have any configured "
                            "default scopes, 'scope' must be provided.")
    denied = [s for s in scopes if s not in app.scopes]
    if denied:
        return _oauth_error(400, "invalid_scope", f"The following scopes are not allowed: {', '.join(denied)}")
    ctx.extra["okta.issued"] = ctx.extra.get("okta.issued", 0) + 1
    access = "eyJsim." + hashlib.sha256(f"{ctx.settings.seed}:{ctx.extra['okta.issued']}:{client_id}".encode()
                                        ).hexdigest()
    world.access_tokens[access] = (client_id, frozenset(scopes), ctx.clock() + TOKEN_SECONDS)
    return JSONResponse({"token_type": "Bearer", "expires_in": TOKEN_SECONDS, "access_token": access,
                         "scope": " ".join(scopes)}, headers={"Cache-Control": "no-cache, no-store",
                                                              "Pragma": "no-cache"})


def authenticate(ctx: SimContext, request: Request, scope: str) -> Response | None:
    """None when the request may read with `scope`; else Okta's 401/403 answer."""
    world = world_of(ctx)
    header = request.headers.get("authorization", "")
    kind, _, value = header.partition(" ")
    if kind == "SSWS" and value in world.api_tokens:
        return None
    if kind == "Bearer":
        grant = world.access_tokens.get(value)
        challenge = f'Bearer authorization_uri="{PREFIX}/oauth2/v1/authorize", realm="IdP", scope="{scope}"'
        if grant is None or grant[2] <= ctx.clock():
            return okta_error(ctx, 401, "E0000011", "Invalid token provided", headers={
                "WWW-Authenticate": challenge + ', error="invalid_token", error_description="The token is not valid."'})
        if scope not in grant[1]:
            return okta_error(ctx, 403, "E0000006", "You do not have permission to perform the requested action",
                              headers={"WWW-Authenticate": challenge + ', error="insufficient_scope", '
                                       'error_description="The access token provided does not contain the required '
                                       'scopes."'})
        return None
    return okta_error(ctx, 401, "E0000011", "Invalid token provided")
