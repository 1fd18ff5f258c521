"""The simulated user management lifecycle API: `POST /users/{accountId}/manage/lifecycle/{verb}`.

Only the documented verbs are routed (disable, enable, delete, cancel-delete; any other is the
unrouted 404 of errors.py). Bodies are parsed as the document says: malformed JSON is 400
`bodyParseFailure`, a field of the wrong type 400 `fieldConstraintsViolated`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from reconcile.sim.atlassian_cloud.world import CloudUser, CloudWorld

LIFECYCLE_LINK = "https://confluence.atlassian.com/x/pTgoPQ"
PATH = "/users/{account}/manage/lifecycle/"

Handler = Callable[[Request], Awaitable[Response]]


class Keyed(Exception):
    """A user-management error: `{"key": ..., ...}` (or a Jira `errorMessages` body)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body))
        self.status, self.body = status, body


def field_violation(field: str, key: str) -> Keyed:
    """400 `fieldConstraintsViolated` for one field (`key`: the violated constraint, e.g. `type`)."""
    return Keyed(400, {"key": "fieldConstraintsViolated", "context": {
        "fieldViolations": [{"field": field, "violations": [{"key": key}]}]}})


async def json_body(request: Request, *, required: bool) -> dict[str, Any]:
    """The request's JSON object; 400 `bodyParseFailure` when it is missing (and required) or malformed."""
    raw = await request.body()
    if not raw.strip():
        if required:
            raise Keyed(400, {"key": "bodyParseFailure"})
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Keyed(400, {"key": "bodyParseFailure"}) from None
    if not isinstance(data, dict):
        raise Keyed(400, {"key": "bodyParseFailure"})
    return data


class Lifecycle:
    """Handlers over one world; `bearer(request)` is the API key the request carries, if valid."""

    def __init__(self, world: CloudWorld, bearer: Callable[[Request], str | None]) -> None:
        self.world = world
        self.bearer = bearer

    def _target(self, request: Request) -> CloudUser:
        key = self.bearer(request)
        if key is None:
            raise Keyed(401, {"key": "unauthorized"})
        user = self.world.users.get(request.path_params["account"])
        if user is None:
            raise Keyed(404, {"key": "accountNotFound"})
        if user.claim_status != "managed":
            raise Keyed(403, {"key": "forbidden.targetUnverified"})
        reason = None
        if user.management_source == "synced":
            reason = "externalDirectory.scim"
        elif self.world.api_keys.get(key) == user.account_id:
            reason = "administrative.notMyself"
        if reason:
            raise Keyed(403, {"key": "forbidden.action",
                              "context": {"allowed": False, "reason": {"key": reason}}})
        return user

    @staticmethod
    def _conflict(user: CloudUser, code: str, message: str) -> Keyed:
        return Keyed(409, {"key": "conflict.lifecycleErrors", "context": {
            "message": "This account isn't eligible for the requested action",
            "accountId": user.account_id,
            "errorCodes": [{"code": code, "message": message, "link": LIFECYCLE_LINK}]}})

    async def disable(self, request: Request) -> Response:
        user = self._target(request)
        body = await json_body(request, required=True)  # documented as required: {"message"?: string}
        if "message" in body and not isinstance(body["message"], str):
            raise field_violation("message", "type")
        if user.account_status != "active":
            raise self._conflict(user, "ALREADY_DEACTIVATED", "The account is already deactivated.")
        user.account_status = "inactive"
        self.world.record("lifecycle_disable", account_id=user.account_id)
        return Response(status_code=204)

    async def enable(self, request: Request) -> Response:
        user = self._target(request)
        await json_body(request, required=False)  # no body documented; a malformed one is still a 400
        if user.for_deletion:
            raise self._conflict(user, "PENDING_DELETION", "Cancel the deletion before enabling.")
        if user.account_status == "active":
            raise self._conflict(user, "ALREADY_ACTIVE", "The account is already active.")
        user.account_status = "active"
        self.world.record("lifecycle_enable", account_id=user.account_id)
        return Response(status_code=204)

    async def delete(self, request: Request) -> Response:
        user = self._target(request)
        await json_body(request, required=False)
        if user.for_deletion:
            raise self._conflict(user, "ALREADY_PENDING_DELETION", "The account is already scheduled "
                                 "for deletion.")
        user.for_deletion, user.account_status = True, "inactive"
        self.world.record("lifecycle_delete", account_id=user.account_id)
        return JSONResponse({"message": "Success"})

    async def cancel_delete(self, request: Request) -> Response:
        """Cancel a scheduled deletion and re-activate the account (the document's two effects).

        The document lists no 409 here; an account not scheduled for deletion has no deletion to
        cancel, so the simulator answers 404 `notFound` ("requested resource not found") [I].
        """
        user = self._target(request)
        await json_body(request, required=False)
        if not user.for_deletion:
            raise Keyed(404, {"key": "notFound"})
        user.for_deletion, user.account_status = False, "active"
        self.world.record("lifecycle_cancel_delete", account_id=user.account_id)
        return JSONResponse({"message": "Success"})

    def routes(self, wrap: Callable[[Handler], Handler]) -> list[BaseRoute]:
        verbs = {"disable": self.disable, "enable": self.enable, "delete": self.delete,
                 "cancel-delete": self.cancel_delete}
        return [Route(PATH + verb, wrap(handler), methods=["POST"]) for verb, handler in verbs.items()]
