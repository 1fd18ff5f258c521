"""Contract validation for the identity-provider simulators: Okta against its Management OpenAPI document,
Google Workspace against its discovery document (converted to JSON Schema here), token endpoints against
RFC 6749's response shapes (neither vendor document describes its token endpoint).

IdpTransport validates every exchange it forwards; an exchange no document covers is itself a violation.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl

import httpx
import yaml
from jsonschema import Draft7Validator
from openapi_core import OpenAPI
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_schema_validator import OAS30Validator, oas30_format_checker

from tests.support import openapi_validators
from tests.support.contract import OpenAPIRequest, OpenAPIResponse, _quiet, describe, specs_dir

OKTA_FILE = "okta-management-minimal.yaml"
OKTA_SLICE_FILE = "okta-management-minimal.slice.json"  # okta_slice(raw_okta()), carried: see write_okta_slice
GOOGLE_FILE = "google-admin-directory_v1.json"
IDP_SPEC_FILES = (OKTA_FILE, OKTA_SLICE_FILE, GOOGLE_FILE)
OKTA_PATHS = ("/api/v1/users", "/api/v1/groups", "/api/v1/groups/{groupId}/users")
OKTA_SERVER = "/okta"
GOOGLE_PREFIX = "/google/"
GOOGLE_METHODS = ("users.list", "groups.list", "members.list")

_lock = threading.RLock()  # builders nest (the slice needs the raw document)
_cache: dict[str, Any] = {}


def _once(key: str, build: Any) -> Any:
    with _lock:
        if key not in _cache:
            _cache[key] = build()
        return _cache[key]


# ---------------------------------------------------------------------------------------------------------
# Okta: the users, groups and group-members paths with the closure of their $refs.


def raw_okta() -> dict[str, Any]:
    """The Okta document exactly as carried (3.4 MB of YAML: ~2 s with libyaml), parsed once per process."""
    loaded: dict[str, Any] = _once("okta-raw", lambda: yaml.load(
        (specs_dir() / OKTA_FILE).read_text(encoding="utf-8"), Loader=yaml.CSafeLoader))
    return loaded


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/"):
            yield ref
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def okta_slice(doc: Mapping[str, Any], paths: tuple[str, ...] = OKTA_PATHS) -> dict[str, Any]:
    """`paths` (GET only) plus every component they reach, `servers` set to the simulator's prefix."""
    kept = {}
    for path in paths:
        item = doc["paths"][path]
        kept[path] = {k: copy.deepcopy(v) for k, v in item.items() if k in ("get", "parameters")}
    components: dict[str, dict[str, Any]] = {"securitySchemes": copy.deepcopy(doc["components"]["securitySchemes"])}
    todo = list(_refs(kept))
    while todo:
        _, _, kind, name = todo.pop().split("/", 3)
        if name in components.setdefault(kind, {}):
            continue
        node = copy.deepcopy(doc["components"][kind][name])
        components[kind][name] = node
        todo += _refs(node)
    return {"openapi": doc["openapi"], "info": doc["info"], "servers": [{"url": OKTA_SERVER}],
            "paths": kept, "components": components}


def carried_okta_slice() -> dict[str, Any]:
    """The slice as carried in tests/specs/ (JSON: parsed in ~10 ms, where the whole YAML document takes ~1.7 s in
    every test process); tests/contract/test_contract_idp.py checks it equals a fresh cut of the document."""
    loaded: dict[str, Any] = _once("okta-slice", lambda: json.loads(
        (specs_dir() / OKTA_SLICE_FILE).read_text(encoding="utf-8")))
    return loaded


def okta_slice_text(doc: Mapping[str, Any]) -> str:
    """How the slice is written to tests/specs/ (write_okta_slice)."""
    return json.dumps(okta_slice(doc), indent=1, ensure_ascii=False) + "\n"


def write_okta_slice() -> None:
    """Cut the slice from the carried document again, after the document is updated (then update its digest in
    tests/specs/README.md): `.venv/bin/python -c 'from tests.support.contract_idp import write_okta_slice as w; w()'`"""
    (specs_dir() / OKTA_SLICE_FILE).write_text(okta_slice_text(raw_okta()), encoding="utf-8")


def okta_openapi() -> OpenAPI:
    built: OpenAPI = _once("okta-openapi", lambda: OpenAPI.from_dict(
        copy.deepcopy(carried_okta_slice()), config=openapi_validators.config()))
    return built


def okta_problems(request: OpenAPIRequest, response: OpenAPIResponse) -> list[str]:
    """Request and response problems; a status the operation omits is checked against Okta's `Error`."""
    spec = okta_openapi()
    with _quiet():
        # a request the document forbids must not be served; a 4xx is the right answer to it
        problems = [line for exc in spec.iter_request_errors(request) for line in describe(exc)
                    if "security" not in type(exc).__name__.lower()] if response.status_code < 400 else []
        for exc in spec.iter_response_errors(request, response):
            if isinstance(exc, ResponseNotFound):
                problems += _okta_error_problems(response)
            else:
                problems += describe(exc)
    return problems


def _okta_error_problems(response: OpenAPIResponse) -> list[str]:
    components = carried_okta_slice()["components"]
    validator = _once("okta-error", lambda: OAS30Validator(
        {"$ref": "#/components/schemas/Error", "components": components}, format_checker=oas30_format_checker))
    body = json.loads(response.data or b"null")
    problems = [f"response body {e.json_path}: {e.message} (undocumented status, checked against Error)"
                for e in validator.iter_errors(body)]
    if not isinstance(body, dict) or not {"errorCode", "errorSummary", "errorLink", "errorId"} <= set(body):
        problems.append("response body: an Okta error carries errorCode, errorSummary, errorLink and errorId")
    return problems


# ---------------------------------------------------------------------------------------------------------
# Google: discovery `schemas` -> JSON Schema (draft 7), method parameters checked by hand.

_DROPPED = {"description", "enumDescriptions", "annotations", "readOnly", "default", "id", "deprecated",
            "enumDeprecated", "format", "required", "location", "pattern", "repeated"}


def convert(node: Mapping[str, Any]) -> dict[str, Any]:
    """One discovery schema as JSON Schema. Objects with `properties` reject properties not listed (the
    simulator must send only documented fields); `type: any` accepts anything; formats are dropped
    (int64 values are strings in discovery, `google-datetime` is Google's own)."""
    if "$ref" in node:
        return {"$ref": f"#/definitions/{node['$ref']}"}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "type":
            if value != "any":
                out["type"] = value
        elif key == "properties":
            out["properties"] = {name: convert(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, Mapping):
            out[key] = convert(value)
        else:
            out[key] = value
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def raw_google() -> dict[str, Any]:
    loaded: dict[str, Any] = _once("google-raw", lambda: json.loads(
        (specs_dir() / GOOGLE_FILE).read_text(encoding="utf-8")))
    return loaded


def google_schema(name: str) -> dict[str, Any]:
    """`{"$ref": name}` with every discovery schema converted under `definitions`."""
    definitions = _once("google-defs", lambda: {k: convert(v) for k, v in raw_google()["schemas"].items()})
    return {"$ref": f"#/definitions/{name}", "definitions": definitions}


def google_method(method: str, path: str) -> dict[str, Any] | None:
    """The discovery method whose path template matches `path` (after the `/google/` prefix)."""
    doc = raw_google()
    for dotted in GOOGLE_METHODS:
        resource, verb = dotted.split(".")
        spec = doc["resources"][resource]["methods"][verb]
        if spec["httpMethod"] != method.upper():
            continue
        template = spec["path"].split("/")
        parts = path.split("/")
        if len(template) == len(parts) and all(t.startswith("{") or t == p for t, p in zip(template, parts,
                                                                                          strict=True)):
            return dict(spec)
    return None


def _parameter_problems(spec: Mapping[str, Any], query: list[tuple[str, str]]) -> list[str]:
    known = {**raw_google()["parameters"], **spec["parameters"]}
    problems = []
    for name, value in query:
        param = known.get(name)
        if param is None or param.get("location") == "path":
            problems.append(f"request: query parameter {name!r} is not documented")
            continue
        if param.get("type") == "integer":
            if not value.lstrip("-").isdigit():
                problems.append(f"request: {name}={value!r} is not an integer")
            elif ("minimum" in param and int(value) < int(param["minimum"])) or (
                    "maximum" in param and int(value) > int(param["maximum"])):
                problems.append(f"request: {name}={value} is outside [{param.get('minimum')}, "
                                f"{param.get('maximum')}]")
        if param.get("type") == "boolean" and value not in ("true", "false"):
            problems.append(f"request: {name}={value!r} is not true or false")
        if "enum" in param and value not in param["enum"]:
            problems.append(f"request: {name}={value!r} is not one of {param['enum']}")
    return problems


# Google's JSON error format (cloud.google.com/apis/design/errors, the v1 APIs' `errors[]` variant).
GOOGLE_ERROR = {
    "type": "object", "required": ["error"], "additionalProperties": False,
    "properties": {"error": {
        "type": "object", "required": ["code", "message", "errors", "status"], "additionalProperties": False,
        "properties": {
            "code": {"type": "integer"}, "message": {"type": "string"}, "status": {"type": "string"},
            "errors": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["message", "domain", "reason"], "additionalProperties": False,
                "properties": {k: {"type": "string"} for k in ("message", "domain", "reason", "location",
                                                               "locationType")}}}}}}}


def google_problems(method: str, url: httpx.URL, status: int, body: Any) -> list[str]:
    path = url.path[len(GOOGLE_PREFIX):]
    spec = google_method(method, path)
    if spec is None:
        return [f"{method} {url.path}: not a method of the discovery document"]
    # a request the document forbids must not be served; a 4xx is the right answer to it
    problems = _parameter_problems(spec, parse_qsl(url.query.decode(), keep_blank_values=True)) if status < 400 \
        else []
    schema = google_schema(spec["response"]["$ref"]) if status == 200 else GOOGLE_ERROR
    problems += [f"response body {e.json_path}: {e.message}" for e in Draft7Validator(schema).iter_errors(body)]
    if status >= 400 and not problems and body["error"]["code"] != status:
        problems.append(f"response body $.error.code: {body['error']['code']} is not the status {status}")
    return problems


# ---------------------------------------------------------------------------------------------------------
# Token endpoints: RFC 6749 §5.1 (success) and §5.2 (error).

TOKEN_OK = {"type": "object", "required": ["access_token", "token_type", "expires_in"],
            "properties": {"access_token": {"type": "string", "minLength": 1}, "token_type": {"enum": ["Bearer"]},
                           "expires_in": {"type": "integer", "minimum": 1}, "scope": {"type": "string"}}}
TOKEN_ERROR = {"type": "object", "required": ["error"], "properties": {
    "error": {"enum": ["invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                       "unsupported_grant_type", "invalid_scope"]},
    "error_description": {"type": "string"}}}


def token_problems(status: int, body: Any) -> list[str]:
    schema = TOKEN_OK if status == 200 else TOKEN_ERROR
    problems = [f"token response {e.json_path}: {e.message}" for e in Draft7Validator(schema).iter_errors(body)]
    if status not in (200, 400, 401):
        problems.append(f"token response status {status} is neither 200, 400 nor 401 (RFC 6749 §5.2)")
    return problems


# ---------------------------------------------------------------------------------------------------------


def exchange_problems(request: httpx.Request, status: int, headers: httpx.Headers, body: bytes) -> list[str]:
    """Every problem of one exchange with an IdP simulator; uncovered paths are problems too."""
    path = request.url.path
    if path.startswith("/_sim/"):
        return []  # the simulator's own admin endpoints: no vendor API
    try:
        data = json.loads(body) if body else None
    except ValueError:
        return [f"response body is not JSON: {body[:80]!r}"]
    if path in ("/okta/oauth2/v1/token", "/google/token"):
        return token_problems(status, data)
    if path.startswith(OKTA_SERVER + "/api/v1/"):
        checked = OpenAPIRequest(request.method, request.url, request.headers, request.content)
        return okta_problems(checked, OpenAPIResponse(status, headers, body))
    if path.startswith(GOOGLE_PREFIX + "admin/directory/v1/"):
        return google_problems(request.method, request.url, status, data)
    return [f"{request.method} {path}: no IdP document covers this path"]


class IdpTransport(httpx.AsyncBaseTransport):
    """Forwards to `inner` and validates each exchange; `check()` raises listing every violation."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.violations: list[str] = []
        self.exchanges = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        self.exchanges += 1
        head = f"{request.method} {request.url.path} -> {response.status_code}"
        self.violations += [f"{head}: {p}" for p in exchange_problems(request, response.status_code,
                                                                      response.headers, body)]
        return response

    def check(self) -> None:
        if self.violations:
            listing = "\n  ".join(self.violations)
            raise AssertionError(f"{len(self.violations)} contract violation(s):\n  {listing}")

    async def aclose(self) -> None:
        await self.inner.aclose()
