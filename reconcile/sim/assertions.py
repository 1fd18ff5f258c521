"""Verifying the signed JWTs the IdP token endpoints receive (Okta client assertions, Google JWT grants).

Time comes from the simulator's injectable wall clock, never from PyJWT's own `time.time()`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from starlette.requests import Request

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")


@dataclass(frozen=True, slots=True)
class Rejected(Exception):
    """Why an assertion was refused: malformed, signature, audience, expired, lifetime, claims."""

    kind: str
    detail: str


async def form(request: Request) -> dict[str, str]:
    """A token request's `application/x-www-form-urlencoded` body (the last value of a repeated field).

    Parsed here: Starlette's own form parsing needs python-multipart, which nothing else needs.
    """
    return dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) without checking anything, to find the key; raises Rejected("malformed")."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise Rejected("malformed", f"not a JWT: {exc}") from exc
    return dict(header), dict(claims)


def public_key(material: Any) -> tuple[str | None, Any]:
    """(kid, key) from a PEM public key or a JWK mapping."""
    if isinstance(material, dict):
        jwk = jwt.PyJWK(material)
        return material.get("kid"), jwk.key
    return None, load_pem_public_key(str(material).encode())


def verify(token: str, keys: Iterable[Any], *, audiences: Collection[str], now: float,
           max_lifetime: float = 3600, skew: float = 300) -> dict[str, Any]:
    """The claims of `token` once its signature (by one of `keys`), `aud`, `exp` and lifetime check out."""
    header, _ = unverified(token)
    if header.get("alg") not in ALGORITHMS:
        raise Rejected("signature", f"alg {header.get('alg')!r} is not an accepted signature algorithm")
    candidates = [public_key(k) for k in keys]
    kid = header.get("kid")
    if kid is not None and any(k == kid for k, _ in candidates):
        candidates = [(k, key) for k, key in candidates if k == kid]
    claims: dict[str, Any] | None = None
    for _, key in candidates:
        try:
            claims = jwt.decode(token, key, algorithms=list(ALGORITHMS),
                                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                                         "verify_aud": False, "verify_iss": False})
            break
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError as exc:
            raise Rejected("signature", str(exc)) from exc
    if claims is None:
        raise Rejected("signature", "the signature matches no registered key")
    aud = claims.get("aud")
    auds = [aud] if isinstance(aud, str) else list(aud or [])
    if not any(a in audiences for a in auds):
        raise Rejected("audience", f"aud {aud!r} is not {' or '.join(sorted(audiences))}")
    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        raise Rejected("claims", "the exp claim is missing")
    if exp <= now:
        raise Rejected("expired", "the assertion has expired")
    iat = claims.get("iat")
    start = iat if isinstance(iat, int | float) else now
    if exp - start > max_lifetime + skew or (isinstance(iat, int | float) and iat > now + skew):
        raise Rejected("lifetime", "the assertion's iat/exp are not a short-lived window around now")
    return claims
