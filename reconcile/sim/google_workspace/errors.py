"""Google's error model: `{"error": {"code", "message", "errors": [{"message", "domain", "reason"}], "status"}}`."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE"}
USAGE_LIMITS = frozenset({"userRateLimitExceeded", "quotaExceeded", "rateLimitExceeded"})


def google_error_body(code: int, message: str, reason: str, **extra: str) -> dict[str, Any]:
    domain = "usageLimits" if reason in USAGE_LIMITS else "global"
    return {"error": {"code": code, "message": message,
                      "errors": [{"message": message, "domain": domain, "reason": reason, **extra}],
                      "status": STATUS_NAMES.get(code, "UNKNOWN")}}


def google_error(code: int, message: str, reason: str, **extra: str) -> JSONResponse:
    return JSONResponse(google_error_body(code, message, reason, **extra), status_code=code)


def unauthenticated() -> JSONResponse:
    message = ("Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
               "other valid authentication credential. See "
               "https://developers.google.com/identity/sign-in/web/devconsole-project.")
    response = google_error(401, message, "authError", location="Authorization", locationType="header")
    response.headers["WWW-Authenticate"] = 'Bearer realm="https://accounts.google.com/"'
    return response


def not_authorized() -> JSONResponse:
    """What the Directory API answers when the delegated user (`sub`) is not an admin who may read."""
    return google_error(403, "Not Authorized to access this resource/api", "forbidden")


def insufficient_scopes() -> JSONResponse:
    return google_error(403, "Request had insufficient authentication scopes.", "insufficientPermissions")


def invalid_value(name: str, value: str, low: int, high: int) -> JSONResponse:
    return google_error(400, f"Invalid value '{value}'. Values must be within the range: [{low}, {high}]",
                        "invalid", location=name, locationType="parameter")
