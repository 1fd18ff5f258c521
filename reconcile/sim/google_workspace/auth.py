"""Google's token endpoint (`POST /token`, the shape of https://oauth2.googleapis.com/token) with the
service-account JWT-bearer grant and domain-wide delegation (`sub`), and the bearer check of API calls.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from reconcile.sim.assertions import Rejected, form, unverified, verify
from reconcile.sim.context import SimContext
from reconcile.sim.google_workspace.errors import insufficient_scopes, not_authorized, unauthenticated
from reconcile.sim.google_workspace.world import GoogleWorld

PREFIX = "/google"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"  # google-auth hard-codes it as `aud`
TOKEN_SECONDS = 3599
SHORT_LIVED = ("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
               "Check your iat and exp values in the JWT claim.")
REJECTIONS = {
    "malformed": "Invalid JWT: the assertion is not a signed JWT.",
    "signature": "Invalid JWT Signature.",
    "audience": f"Invalid JWT: the aud claim must be {GOOGLE_TOKEN_URL}.",
    "expired": SHORT_LIVED,
    "lifetime": SHORT_LIVED,
    "claims": SHORT_LIVED,
}


def world_of(ctx: SimContext) -> GoogleWorld:
    world = ctx.extra.get("google_workspace")
    if not isinstance(world, GoogleWorld):
        world = ctx.extra["google_workspace"] = GoogleWorld()
        world.index()
    return world


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


async def token(ctx: SimContext, request: Request) -> Response:
    world = world_of(ctx)
    fields = await form(request)
    grant = str(fields.get("grant_type") or "")
    if grant != GRANT:
        return _oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant}")
    assertion = str(fields.get("assertion") or "")
    try:
        _, claims = unverified(assertion)
    except Rejected:
        return _oauth_error(400, "invalid_grant", REJECTIONS["malformed"])
    account = world.service_accounts.get(str(claims.get("iss") or ""))
    if account is None:
        return _oauth_error(400, "invalid_grant", "Invalid grant: account not found")
    own_url = f"{request.url.scheme}://{request.url.netloc}{PREFIX}/token"
    try:
        verify(assertion, account.public_keys, audiences={GOOGLE_TOKEN_URL, own_url}, now=ctx.wall())
    except Rejected as exc:
        return _oauth_error(400, "invalid_grant", REJECTIONS.get(exc.kind, REJECTIONS["signature"]))
    scopes = str(claims.get("scope") or "").split()
    if not scopes:
        return _oauth_error(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
    sub = claims.get("sub")
    if sub is not None and str(sub).lower() not in world.user_by_email:
        return _oauth_error(400, "invalid_grant", "Invalid email or User ID")
    if sub is not None and any(s not in account.scopes for s in scopes):
        return _oauth_error(401, "unauthorized_client", "Client is unauthorized to retrieve access tokens using "
                            "this method, or client not authorized for any of the scopes requested.")
    ctx.extra["google.issued"] = ctx.extra.get("google.issued", 0) + 1
    access = "ya29.sim-" + hashlib.sha256(
        f"{ctx.settings.seed}:{ctx.extra['google.issued']}:{account.client_email}".encode()).hexdigest()
    world.access_tokens[access] = (account.client_email, str(sub).lower() if sub else None, frozenset(scopes),
                                   ctx.clock() + TOKEN_SECONDS)
    return JSONResponse({"access_token": access, "expires_in": TOKEN_SECONDS, "token_type": "Bearer"})


def authenticate(ctx: SimContext, request: Request, scopes: Collection[str]) -> tuple[Response | None, str]:
    """(None, the caller) when the bearer token may call a method accepting any of `scopes`; else the error."""
    world = world_of(ctx)
    kind, _, value = request.headers.get("authorization", "").partition(" ")
    grant = world.access_tokens.get(value) if kind == "Bearer" else None
    if grant is None or grant[3] <= ctx.clock():
        return unauthenticated(), ""
    account_email, sub, granted, _ = grant
    if not granted & set(scopes):
        return insufficient_scopes(), ""
    if sub is None:
        account = world.service_accounts.get(account_email)
        if account is None or not account.admin_role:
            return not_authorized(), ""
        return None, account_email
    user = world.user_by_email.get(sub)
    if user is None or not user.admin or user.suspended:
        return not_authorized(), ""
    return None, sub
