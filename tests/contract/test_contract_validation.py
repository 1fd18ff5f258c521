"""ContractTransport and validate_response on hand-written exchanges: good ones pass, bad ones are named."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable

import httpx
import pytest

from tests.support.contract import Api, ContractRecorder, ContractTransport, auth_problem, route, validate_response

JSON = {"content-type": "application/json"}
BEARER = {"Authorization": "Bearer not-a-real-token"}

# A Confluence DC user as /rest/api/user/current returns it (more fields than the document's Person).
DC_USER = {
    "type": "known",
    "username": "alice",
    "userKey": "8a7f808a7f0b5c5e017f0b5d7e2a0001",
    "displayName": "Alice Adams",
    "profilePicture": {"path": "/images/icons/profilepics/default.svg", "width": 48, "height": 48,
                       "isDefault": True},
    "_links": {"self": "http://sim/rest/api/user?key=8a7f808a7f0b5c5e017f0b5d7e2a0001"},
    "_expandable": {"status": ""},
}
MEMBER_PAGE = {"results": [DC_USER], "start": 0, "limit": 200, "size": 1,
               "_links": {"base": "http://sim", "context": "", "self": "http://sim/rest/api/group/g/member"}}


def body(value: object) -> bytes:
    return json.dumps(value).encode()


# -- routing ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "api"),
    [
        ("/rest/api/user/current", Api.CONFLUENCE_DC),
        ("/rest/api/group/confluence-users/member", Api.CONFLUENCE_DC),
        ("/rest/api/admin/user/alice/disable", Api.CONFLUENCE_DC),
        ("/rest/api/2/user", Api.JIRA),
        ("/rest/api/3/group/user", Api.JIRA),
        ("/admin/v2/orgs/o1/directories/-/users/search", Api.ORGANIZATIONS),
        ("/admin/v1/orgs", Api.ORGANIZATIONS),
        ("/users/557058:abc/manage/lifecycle/disable", Api.USER_MANAGEMENT),
        ("/admin/users/showallunsyncedusers.action", None),
        ("/admin/users/removeunsynceduser-confirm.action", None),
        ("/doauthenticate.action", None),
        ("/_sim/state", None),
        ("/users/557058:abc", None),
    ],
)
def test_route_picks_the_document_by_path(path: str, api: Api | None) -> None:
    assert route(path) == api


# -- responses --------------------------------------------------------------------------------------------


def test_known_good_dc_responses_validate() -> None:
    assert validate_response("GET", "http://sim/rest/api/user/current", 200, JSON, body(DC_USER)) == []
    assert validate_response("GET", "http://sim/rest/api/group/confluence-users/member?start=0&limit=200",
                             200, {"content-type": "application/json;charset=UTF-8"}, body(MEMBER_PAGE)) == []


def test_wrong_type_is_reported_with_method_path_status_and_json_path() -> None:
    bad = {**MEMBER_PAGE, "size": "one"}
    assert validate_response("GET", "http://sim/rest/api/group/g/member", 200, JSON, body(bad)) == [
        "GET /rest/api/group/g/member -> 200: response body $.size: 'one' is not of type 'number'"
    ]
    nested = {**MEMBER_PAGE, "results": [{**DC_USER, "displayName": 5}]}
    assert validate_response("GET", "http://sim/rest/api/group/g/member", 200, JSON, body(nested)) == [
        "GET /rest/api/group/g/member -> 200: response body $.results[0].displayName: 5 is not of type 'string'"
    ]


def test_a_verdict_is_kept_only_for_the_same_exchange_under_the_same_settings() -> None:
    url = "http://sim/rest/api/group/g/member"
    bad = body({**MEMBER_PAGE, "size": "one"})
    for _ in range(2):  # the second time from the kept verdicts: the same answers, good and bad
        assert validate_response("GET", url, 200, JSON, body(MEMBER_PAGE)) == []
        assert validate_response("GET", url, 200, JSON, bad) == [
            "GET /rest/api/group/g/member -> 200: response body $.size: 'one' is not of type 'number'"]
        assert validate_response("GET", url, 200, {**JSON, "date": "Sat, 05 Dec 2026 07:00:00 GMT"}, bad) == [
            "GET /rest/api/group/g/member -> 200: response body $.size: 'one' is not of type 'number'"]
    gone = body({"message": "no such group"})
    assert validate_response("GET", url, 418, JSON, gone) == [
        "GET /rest/api/group/g/member -> 418: status 418 is not documented for this operation"]
    assert validate_response("GET", url, 418, JSON, gone, allowed_statuses=[418]) == []  # settings decide too
    assert validate_response("GET", url, 418, {"content-type": "text/plain"}, gone) != []


def test_missing_required_field_is_reported() -> None:
    # The DC document marks nothing required; the user-management errors do.
    url = "http://sim/users/557058:abc/manage/lifecycle/disable"
    assert validate_response("POST", url, 404, JSON, body({"key": "accountNotFound"})) == []
    assert validate_response("POST", url, 404, JSON, body({"message": "no such account"})) == [
        "POST /users/557058:abc/manage/lifecycle/disable -> 404: response body $: 'key' is a required property"
    ]


def test_documented_error_responses_are_validated_against_their_schema() -> None:
    url = "http://sim/admin/v2/orgs/o1/directories/-/users/557058:abc"
    assert validate_response("GET", url, 404, JSON, body({"errors": [{"status": "404", "code": "x"}]})) == []
    assert validate_response("GET", url, 404, JSON, body({"errors": "not found"})) == [
        "GET /admin/v2/orgs/o1/directories/-/users/557058:abc -> 404: response body $.errors: "
        "'not found' is not of type 'array'"
    ]


def test_undocumented_status_is_a_violation_unless_allowed() -> None:
    url = "http://sim/rest/api/group/nope/member"
    assert validate_response("GET", url, 500, JSON, b"{}") == [
        "GET /rest/api/group/nope/member -> 500: status 500 is not documented for this operation"
    ]
    assert validate_response("GET", url, 429, {"retry-after": "5"}, b"") == []  # default allow-list
    assert validate_response("GET", url, 503, {}, b"") == []
    assert validate_response("GET", url, 404, JSON, b"{}", allowed_statuses={404}) == []
    assert validate_response("GET", url, 429, {}, b"", allowed_statuses=()) != []


def test_no_content_response_may_omit_a_documented_content_type() -> None:
    # PUT /rest/api/admin/user/{username} documents `application/json` on its 204.
    assert validate_response("PUT", "http://sim/rest/api/admin/user/alice", 204, {}, b"") == []


def test_wrong_content_type_is_reported() -> None:
    [problem] = validate_response("GET", "http://sim/rest/api/user/current", 200, {"content-type": "text/html"},
                                  b"<html>login</html>")
    assert "GET /rest/api/user/current -> 200: response body" in problem and "text/html" in problem


def test_uncovered_paths_are_recorded_not_failed() -> None:
    recorder = ContractRecorder()
    assert recorder.validate_response("GET", "http://sim/admin/users/showallunsyncedusers.action", 200,
                                      {"content-type": "text/html"}, b"<html/>") == []
    recorder.validate_response("POST", "http://sim/_sim/faults", 200, JSON, b"{}")
    assert recorder.uncovered == {"GET /admin/users/showallunsyncedusers.action", "POST /_sim/faults"}
    assert recorder.violations == []
    recorder.check()


def test_path_missing_from_a_covering_document_is_a_violation() -> None:
    assert validate_response("GET", "http://sim/rest/api/user/nobody/profile", 200, JSON, b"{}") == [
        "GET /rest/api/user/nobody/profile -> 200: Path not found for http://sim/rest/api/user/nobody/profile"
    ]


# -- requests ---------------------------------------------------------------------------------------------


def exchange(handler: Callable[[httpx.Request], httpx.Response], *requests: httpx.Request,
             **options: object) -> ContractTransport:
    transport = ContractTransport(httpx.MockTransport(handler), **options)  # type: ignore[arg-type]

    async def run() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            for request in requests:
                await client.send(request)

    asyncio.run(run())
    return transport


def member_page(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=MEMBER_PAGE)


def test_request_with_wrong_query_type_is_reported() -> None:
    good = httpx.Request("GET", "http://sim/rest/api/group/g/member", params={"limit": 50}, headers=BEARER)
    bad = httpx.Request("GET", "http://sim/rest/api/group/g/member", params={"limit": "all"}, headers=BEARER)
    transport = exchange(member_page, good, bad)
    assert transport.violations == [
        "GET /rest/api/group/g/member -> 200: request: query parameter 'limit': "
        "Failed to cast value to integer type: all"
    ]
    with pytest.raises(AssertionError, match=r"1 contract violation\(s\):\n  GET /rest/api/group/g/member"):
        transport.check()


def test_request_body_is_validated() -> None:
    url = "http://sim/admin/v2/orgs/o1/directories/-/users/search"
    page = {"data": [], "links": {"next": None}}
    good = httpx.Request("POST", url, json={"limit": 100, "expand": ["groups"]}, headers=BEARER)
    bad = httpx.Request("POST", url, json={"limit": "lots"}, headers=BEARER)
    transport = exchange(lambda r: httpx.Response(200, json=page), good, bad)
    [problem] = transport.violations
    assert problem.startswith("POST /admin/v2/orgs/o1/directories/-/users/search -> 200: request: request body $.limit")


def test_authorization_header_is_required_and_its_scheme_checked() -> None:
    assert auth_problem(Api.ORGANIZATIONS, httpx.Headers()) == "missing Authorization header"
    assert auth_problem(Api.ORGANIZATIONS, httpx.Headers({"authorization": "Basic eDp5"})) is not None
    assert auth_problem(Api.ORGANIZATIONS, httpx.Headers(BEARER)) is None
    basic = "Basic " + base64.b64encode(b"admin@example.com:site-token").decode()
    assert auth_problem(Api.JIRA, httpx.Headers({"authorization": basic})) is None
    assert auth_problem(Api.JIRA, httpx.Headers({"authorization": "Basic !!"})) is not None
    assert auth_problem(Api.CONFLUENCE_DC, httpx.Headers({"authorization": "Bearer "})) is not None

    anonymous = httpx.Request("GET", "http://sim/rest/api/group/g/member")
    assert exchange(member_page, anonymous).violations == [
        "GET /rest/api/group/g/member -> 200: request: missing Authorization header"
    ]
    assert exchange(member_page, anonymous, require_auth=False).violations == []


def test_violations_never_show_credentials() -> None:
    secret = "Bearer sup3r-s3cret-t0ken"
    request = httpx.Request("GET", "http://sim/rest/api/group/g/member", params={"limit": "x"},
                            headers={"Authorization": secret})
    transport = exchange(lambda r: httpx.Response(200, json={**MEMBER_PAGE, "size": "x"}), request)
    assert len(transport.violations) == 2
    assert all("sup3r" not in violation for violation in transport.violations)


# -- the transport itself ---------------------------------------------------------------------------------


def test_transport_passes_the_exchange_through_unchanged() -> None:
    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        return httpx.Response(202, json={"id": "42"}, headers={"X-Request-Id": "r1"})

    async def run() -> httpx.Response:
        transport = ContractTransport(httpx.MockTransport(handler))
        async with httpx.AsyncClient(transport=transport, headers=BEARER) as client:
            response = await client.delete("http://sim/rest/api/admin/user/alice")
            async with client.stream("DELETE", "http://sim/rest/api/admin/user/bob") as streamed:
                chunks = [chunk async for chunk in streamed.aiter_bytes()]
            assert b"".join(chunks) == b'{"id":"42"}'
        transport.check()
        assert transport.recorder.operations == {"DELETE /rest/api/admin/user/{username}": 2}
        return response

    response = asyncio.run(run())
    assert (response.status_code, response.json(), response.headers["x-request-id"]) == (202, {"id": "42"}, "r1")
    assert seen == [b"", b""]


def test_transport_records_a_failed_exchange_and_reraises() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection reset", request=request)

    request = httpx.Request("GET", "http://sim/rest/api/group/g/member", params={"limit": "x"}, headers=BEARER)
    with pytest.raises(httpx.ConnectError):
        exchange(refuse, request)


def test_jira_v2_delete_user_validates_against_the_cloned_v3_operation() -> None:
    basic = "Basic " + base64.b64encode(b"admin@example.com:site-token").decode()
    ok = httpx.Request("DELETE", "http://sim/rest/api/2/user", params={"accountId": "557058:abc"},
                       headers={"Authorization": basic})
    missing = httpx.Request("DELETE", "http://sim/rest/api/2/user", headers={"Authorization": basic})
    transport = exchange(lambda r: httpx.Response(204), ok, missing)
    assert transport.violations == [
        "DELETE /rest/api/2/user -> 204: request: query parameter 'accountId': Missing required query parameter: "
        "accountId"
    ]
    assert transport.recorder.operations == {"DELETE /rest/api/2/user": 2}


def test_allowed_undocumented_error_is_still_checked_against_the_apis_error_model() -> None:
    url = "http://sim/rest/api/group/nope/member"
    rest_error = {"statusCode": 404, "message": "Group nope not found", "reason": "Not Found",
                  "data": {"authorized": True, "valid": False, "successful": False}}
    assert validate_response("GET", url, 404, JSON, body(rest_error), allowed_statuses={404}) == []
    assert validate_response("GET", url, 404, JSON, body({**rest_error, "statusCode": "404"}),
                             allowed_statuses={404}) == [
        "GET /rest/api/group/nope/member -> 404: response body $.statusCode: '404' is not of type 'integer' "
        "(undocumented status, checked against RestError)"
    ]
    # gateway answers (rate limiter, proxy) have no application error model
    assert validate_response("GET", url, 503, JSON, body({"statusCode": "busy"})) == []


def test_undocumented_status_can_be_allowed_for_one_operation_only() -> None:
    recorder = ContractRecorder(undocumented={"GET /rest/api/group/{groupName}/member": frozenset({404})})
    error = body({"statusCode": 404, "message": "not found"})
    headers = {"Authorization": "Bearer t"}
    assert recorder.validate_response("GET", "http://sim/rest/api/group/nope/member", 404, JSON, error,
                                      request_headers=headers) == []
    assert recorder.validate_response("GET", "http://sim/rest/api/group/nope", 404, JSON, error,
                                      request_headers=headers) == [
        "GET /rest/api/group/nope -> 404: status 404 is not documented for this operation"
    ]


def test_path_parameters_are_validated_as_the_server_decodes_them() -> None:
    recorder = ContractRecorder()
    headers = {"Authorization": "Bearer t", "content-type": "application/json"}
    message = b'{"message": "left"}'
    # `|` is legal in account ids; httpx sends it as %7C
    assert recorder.validate_response("POST", "http://sim/users/qm%7Cabc:123/manage/lifecycle/disable", 204, {},
                                      b"", request_headers=headers, request_body=message) == []
    assert recorder.validate_response("POST", "http://sim/users/not%20an%20id/manage/lifecycle/disable", 204, {},
                                      b"", request_headers=headers, request_body=message) == [
        "POST /users/not an id/manage/lifecycle/disable -> 204: request: path parameter 'account_id' $: "
        "'not an id' does not match '^[a-zA-Z0-9_|:-]{1,128}$'"
    ]
    # an encoded slash stays inside its segment: still the membership operation
    recorder.validate_response("PUT", "http://sim/rest/api/user/bob/group/a%2Fb", 204, {}, b"",
                               request_headers=headers)
    assert recorder.operations["PUT /rest/api/user/{username}/group/{groupName}"] == 1
    assert recorder.violations[1:] == []
