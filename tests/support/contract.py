"""Contract validation against Atlassian's official OpenAPI documents (carried in tests/specs/).

Owns: loading the documents once per process with the specs README's in-memory fixups, choosing the
document by path, and ContractTransport, an httpx transport that validates every exchange it forwards.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import re
import threading
import warnings
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

import httpx
from jsonschema.exceptions import (
    ValidationError as JsonSchemaError,
)
from jsonschema.exceptions import best_match
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import PathError
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.validation.request.exceptions import (
    ParameterValidationError,
    RequestBodyValidationError,
    SecurityValidationError,
)
from openapi_core.validation.response.exceptions import DataValidationError, HeaderValidationError, MissingData
from openapi_core.validation.schemas.exceptions import InvalidSchemaValue
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from werkzeug.datastructures import Headers, ImmutableMultiDict

from tests.support import openapi_validators

Document = dict[str, Any]


class Api(StrEnum):
    """The documents a request can be validated against, chosen by path (see `route`)."""

    CONFLUENCE_DC = "confluence-dc"
    ORGANIZATIONS = "organizations"
    USER_MANAGEMENT = "user-management"
    JIRA = "jira"
    CONFLUENCE_CLOUD_V2 = "confluence-cloud-v2"  # slices: the delete guard's reads of a Confluence Cloud site
    CONFLUENCE_CLOUD_V1 = "confluence-cloud-v1"


SPEC_FILES: Mapping[Api, str] = {
    Api.CONFLUENCE_DC: "confluence-dc-10.0.3.json",
    Api.ORGANIZATIONS: "admin-organization.2026-08-21.json",
    Api.USER_MANAGEMENT: "admin-user-management.json",
    Api.JIRA: "jira-cloud-platform-v3.json",
    Api.CONFLUENCE_CLOUD_V2: "confluence-cloud-v2.spaces.slice.json",
    Api.CONFLUENCE_CLOUD_V1: "confluence-cloud-v1.search.slice.json",
}

# Where each API is mounted relative to the host (the documents name production hosts instead).
SERVERS: Mapping[Api, str] = {
    Api.CONFLUENCE_DC: "/",
    Api.ORGANIZATIONS: "/admin",
    Api.USER_MANAGEMENT: "/",
    Api.JIRA: "/",
    Api.CONFLUENCE_CLOUD_V2: "/wiki/api/v2",
    Api.CONFLUENCE_CLOUD_V1: "/",
}

# Authorization schemes each API accepts. Checked here because openapi-core does not enforce the header
# where a document also offers anonymous or oauth2 access (Jira, Organizations) or declares none (DC,
# where personal access tokens are Bearer although the document only names basic).
AUTH_SCHEMES: Mapping[Api, frozenset[str]] = {
    Api.CONFLUENCE_DC: frozenset({"basic", "bearer"}),
    Api.ORGANIZATIONS: frozenset({"bearer"}),
    Api.USER_MANAGEMENT: frozenset({"bearer"}),
    Api.JIRA: frozenset({"basic", "bearer"}),
    Api.CONFLUENCE_CLOUD_V2: frozenset({"basic", "bearer"}),
    Api.CONFLUENCE_CLOUD_V1: frozenset({"basic", "bearer"}),
}

# Status codes real Atlassian servers send although the documents omit them for most operations.
# A response with one of these codes that the operation does not document is accepted unvalidated;
# where the operation documents it (Organizations documents 429), its schema is still enforced.
DEFAULT_ALLOWED_STATUSES: frozenset[int] = frozenset(
    {
        429,  # rate limited: DC and Cloud both send it with Retry-After (reference notes, SPEC §6)
        503,  # overloaded / maintenance: Atlassian's rate-limit guidance treats it like 429
    }
)

# Answered by rate limiters, proxies and load balancers in front of the application, in shapes no
# document describes: their bodies are not checked against the application's error model.
GATEWAY_STATUSES: frozenset[int] = frozenset({429, 502, 503, 504})

# The error model each API uses across operations. A JSON error with an allowed but undocumented status
# is still checked against it, so "allowed" never means "anything goes".
ERROR_SCHEMAS: Mapping[Api, str] = {
    Api.CONFLUENCE_DC: "RestError",
    Api.ORGANIZATIONS: "Errors",
    Api.JIRA: "ErrorCollection",
}

_JIRA_V3 = "/rest/api/3/"
_JIRA_V2 = "/rest/api/2/"
_JIRA_CLONED = re.compile(r"^/rest/api/3/(user|users|group|groups|groupuserpicker|myself)(/|$)")
_USER_MANAGEMENT = re.compile(r"^/users/[^/]+/manage(/|$)")
_ORGANIZATIONS = re.compile(r"^/admin/v[12]/")
_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})
_ACCOUNT_ID_PATTERN = "^[a-zA-Z0-9_|:-]{1,128}$"


def specs_dir() -> Path:
    """The documents' folder: env RECONCILE_SPECS, else tests/specs in this repository (see its README)."""
    override = os.environ.get("RECONCILE_SPECS")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1] / "specs"


def route(path: str) -> Api | None:
    """The document that covers `path` (a URL path, no query), or None when no document does."""
    if path.startswith((_JIRA_V2, _JIRA_V3)):
        return Api.JIRA
    if path.startswith("/rest/api/"):
        return Api.CONFLUENCE_DC
    if path.startswith("/wiki/api/v2/"):
        return Api.CONFLUENCE_CLOUD_V2
    if path.startswith("/wiki/rest/api/"):
        return Api.CONFLUENCE_CLOUD_V1
    if _ORGANIZATIONS.match(path):
        return Api.ORGANIZATIONS
    if _USER_MANAGEMENT.match(path):
        return Api.USER_MANAGEMENT
    return None


# ---------------------------------------------------------------------------------------------------------
# Fixups (tests/specs/README.md lists them with the defect each repairs). Each edits a document in place.


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every mapping in a JSON tree, depth first."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _operations(doc: Document) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if method in _METHODS:
                yield path, method, op


def fix_defaults(doc: Document) -> int:
    """Fixup 1: drop `default: null` on non-nullable schemas and a `default` outside its own `enum`."""
    fixed = 0
    for node in _walk(doc):
        if "default" not in node or not ("type" in node or "enum" in node or "$ref" in node):
            continue
        default = node["default"]
        outside_enum = isinstance(node.get("enum"), list) and default not in node["enum"]
        if (default is None and not node.get("nullable")) or outside_enum:
            del node["default"]
            fixed += 1
    return fixed


def fix_typed_refs(doc: Document) -> int:
    """Fixup 2: drop a non-standard `type` (e.g. "GroupCounts") next to a `$ref`."""
    standard = {"string", "number", "integer", "boolean", "array", "object"}
    fixed = 0
    for node in _walk(doc):
        if "$ref" in node and isinstance(node.get("type"), str) and node["type"] not in standard:
            del node["type"]
            fixed += 1
    return fixed


def _is_typed(param: Mapping[str, Any]) -> bool:
    schema = param.get("schema", {})
    return isinstance(schema, dict) and ("$ref" in schema or schema.get("type") not in (None, "string")
                                         or "default" in schema or "format" in schema)


def dedupe_parameters(doc: Document) -> int:
    """Fixup 3: one parameter per (name, in); keep the last, preferring a typed one."""
    fixed = 0
    items: list[dict[str, Any]] = list(doc.get("paths", {}).values())
    items += [op for _, _, op in _operations(doc)]
    for holder in items:
        params = holder.get("parameters")
        if not params:
            continue
        chosen: dict[tuple[str, str], dict[str, Any]] = {}
        for param in params:
            key = (param.get("name", param.get("$ref", "")), param.get("in", ""))
            previous = chosen.get(key)
            if previous is None or _is_typed(param) or not _is_typed(previous):
                chosen[key] = param
        if len(chosen) != len(params):
            fixed += len(params) - len(chosen)
            holder["parameters"] = list(chosen.values())
    return fixed


def drop_empty_content(doc: Document) -> int:
    """Fixup 4: delete empty `content: {}` maps in responses."""
    fixed = 0
    for _, _, op in _operations(doc):
        for response in op.get("responses", {}).values():
            if isinstance(response, dict) and response.get("content") == {}:
                del response["content"]
                fixed += 1
    return fixed


def fix_user_id_parameter(doc: Document) -> int:
    """Fixup 5: `GET .../users/{userId}` references `accountIdParam`; declare a `userId` path parameter."""
    item = doc.get("paths", {}).get("/v2/orgs/{orgId}/directories/{directoryId}/users/{userId}", {})
    op = item.get("get")
    if op is None:
        return 0
    accountid = {"$ref": "#/components/parameters/accountIdParam"}
    if accountid not in op.get("parameters", []):
        return 0
    op["parameters"] = [p for p in op["parameters"] if p != accountid] + [
        {"name": "userId", "in": "path", "required": True, "schema": {"type": "string"},
         "description": "The account ID of the user (fixup: the document names `accountId`)."}
    ]
    return 1


def drop_user_id_uuid(doc: Document) -> int:
    """Fixup 6: account ids are not UUIDs; drop `format: uuid` from `userId` on /v1/orgs/{orgId}/users/."""
    fixed = 0
    for path, _, op in _operations(doc):
        if not path.startswith("/v1/orgs/{orgId}/users/{userId}"):
            continue
        for param in op.get("parameters", []):
            if param.get("name") == "userId" and param.get("schema", {}).pop("format", None) == "uuid":
                fixed += 1
    return fixed


def fix_account_id(doc: Document) -> int:
    """Fixup 7: user management `AccountId` pattern ends in a literal newline and is `readOnly`."""
    schema = doc.get("components", {}).get("schemas", {}).get("AccountId")
    if schema is None:
        return 0
    schema["pattern"] = _ACCOUNT_ID_PATTERN
    schema.pop("readOnly", None)
    return 1


def nullable_links_next(doc: Document) -> int:
    """Fixup 8: `links.next` may be null on a real last page (Organizations pagination models)."""
    schemas = doc.get("components", {}).get("schemas", {})
    models: list[dict[str, Any]] = []
    for node in _walk(doc):
        props = node.get("properties")
        links = props.get("links") if isinstance(props, dict) else None
        if isinstance(links, dict):
            ref = links.get("$ref", "")
            models.append(schemas.get(ref.rsplit("/", 1)[-1], {}) if ref else links)
    fixed = 0
    for model in models:
        nxt = model.get("properties", {}).get("next")
        if isinstance(nxt, dict) and nxt.get("type") == "string" and not nxt.get("nullable"):
            nxt["nullable"] = True
            fixed += 1
    return fixed


def relax_message_args(doc: Document) -> int:
    """Fixup 9 (ours): DC `Message.args` is Java `Object[]`, rendered as items `{type: object}`; real
    servers send the arguments as JSON strings/numbers (e.g. the username in a long task's messages)."""
    items = doc.get("components", {}).get("schemas", {}).get("Message", {}).get("properties", {}).get(
        "args", {}).get("items")
    if not isinstance(items, dict) or items.get("type") != "object":
        return 0
    del items["type"]
    return 1


def clone_jira_v2(doc: Document) -> int:
    """Serve /rest/api/2/ user and group routes from their /rest/api/3/ path items (identical in 2022)."""
    paths = doc.get("paths", {})
    cloned = {_JIRA_V2 + p[len(_JIRA_V3):]: copy.deepcopy(item) for p, item in paths.items()
              if _JIRA_CLONED.match(p)}
    for item in cloned.values():
        for method, op in item.items():
            if method in _METHODS and "operationId" in op:
                op["operationId"] += "V2"  # operation ids must stay unique
    paths.update(cloned)
    return len(cloned)


FIXUPS: Mapping[Api, tuple[Callable[[Document], int], ...]] = {
    Api.CONFLUENCE_DC: (fix_defaults, dedupe_parameters, drop_empty_content, relax_message_args),
    Api.ORGANIZATIONS: (fix_defaults, fix_typed_refs, fix_user_id_parameter, drop_user_id_uuid,
                        nullable_links_next, drop_empty_content),
    Api.USER_MANAGEMENT: (fix_defaults, fix_account_id, drop_empty_content),
    Api.JIRA: (fix_defaults, drop_empty_content, clone_jira_v2),
    Api.CONFLUENCE_CLOUD_V2: (drop_empty_content,),
    Api.CONFLUENCE_CLOUD_V1: (drop_empty_content,),
}


def raw_document(api: Api) -> Document:
    """One document exactly as published in the specs folder (parsed, nothing dropped or fixed)."""
    loaded: Document = json.loads((specs_dir() / SPEC_FILES[api]).read_text(encoding="utf-8"))
    return loaded


def prepare(doc: Document, api: Api, fixups: Iterable[Callable[[Document], int]] | None = None) -> dict[str, int]:
    """Make `doc` usable in place: drop `_meta`, apply `fixups` (default: all of `api`'s), set `servers`.

    Returns how many places each fixup changed.
    """
    doc.pop("_meta", None)
    counts = {fixup.__name__: fixup(doc) for fixup in (FIXUPS[api] if fixups is None else fixups)}
    doc["servers"] = [{"url": SERVERS[api]}]
    return counts


def load_document(api: Api) -> Document:
    """A fresh copy of one document with `_meta` dropped, every fixup applied and `servers` overridden."""
    return copy.deepcopy(_fixed_document(api))


_lock = threading.Lock()
_documents: dict[Api, Document] = {}
_fixup_counts: dict[Api, dict[str, int]] = {}
_openapis: dict[Api, OpenAPI] = {}


def _fixed_document(api: Api) -> Document:
    with _lock:
        if api not in _documents:
            doc = raw_document(api)
            _fixup_counts[api] = prepare(doc, api)
            _documents[api] = doc
        return _documents[api]


def fixup_counts(api: Api) -> Mapping[str, int]:
    """How many places each fixup changed in `api`'s document (loading it if needed)."""
    _fixed_document(api)
    return dict(_fixup_counts[api])


def openapi(api: Api) -> OpenAPI:
    """The openapi-core object for `api`, built once per process.

    The spec validator is skipped here for speed; tests/contract/test_contract_loader.py proves every fixed-up
    document passes openapi-spec-validator.
    """
    doc = _fixed_document(api)
    with _lock:
        if api not in _openapis:
            _openapis[api] = OpenAPI.from_dict(doc, config=openapi_validators.config())
        return _openapis[api]


# ---------------------------------------------------------------------------------------------------------
# httpx adapters: openapi-core's Request and Response protocols.


def _decoded_path(raw: str) -> str:
    """Percent-decode each segment (so `team%20docs` or `a%7Cb` validate as the server reads them) while
    an encoded slash stays `%2F` and cannot split a segment."""
    return "/".join(unquote(segment.replace("%2F", "%252F").replace("%2f", "%252F")) for segment in raw.split("/"))


def _decisive(headers: httpx.Headers) -> tuple[tuple[str, str], ...]:
    """Every header but `date`, which no document constrains and which makes equal exchanges look different."""
    return tuple((name, value) for name, value in headers.multi_items() if name.lower() != "date")


def _digest(body: bytes | str) -> bytes:  # a cassette's body may be text
    return hashlib.blake2b(body.encode() if isinstance(body, str) else body, digest_size=16).digest()


class _Verdicts:
    """The problems found in an exchange, kept by everything they depend on (the document, the request, the
    response and the recorder's settings): a test run sends the same exchange again and again (the same first
    page of the same world, the same token request), and validating it again finds the same problems."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._kept: OrderedDict[tuple[Any, ...], tuple[str, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], find: Callable[[], list[str]]) -> list[str]:
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return list(self._kept[key])
        found = find()
        with self._lock:
            self._kept[key] = tuple(found)
            if len(self._kept) > self._size:
                self._kept.popitem(last=False)
        return found


_verdicts = _Verdicts()


class OpenAPIRequest:
    """An httpx request as openapi-core sees it (the body must already be read)."""

    def __init__(self, method: str, url: httpx.URL, headers: httpx.Headers, body: bytes) -> None:
        self.method = method.lower()
        self.key = (self.method, str(url), _decisive(headers), _digest(body))  # all a verdict depends on
        self.host_url = f"{url.scheme}://{url.netloc.decode('ascii')}"
        self.path = _decoded_path(url.raw_path.decode("ascii").split("?", 1)[0])
        self.body: bytes | None = body or None
        self.content_type = headers.get("content-type", "").lower()
        cookies = [tuple(c.strip().split("=", 1)) for c in headers.get("cookie", "").split(";") if "=" in c]
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qsl(url.query.decode("ascii"), keep_blank_values=True)),
            header=Headers(list(headers.multi_items())),
            cookie=ImmutableMultiDict(cookies),
        )

    @classmethod
    def of(cls, request: httpx.Request) -> OpenAPIRequest:
        return cls(request.method, request.url, request.headers, request.content)


class OpenAPIResponse:
    """An httpx response (status, headers, decoded body) as openapi-core sees it."""

    def __init__(self, status_code: int, headers: httpx.Headers, body: bytes) -> None:
        self.status_code = status_code
        self.key = (status_code, _decisive(headers), _digest(body))
        self.headers = Headers(list(headers.multi_items()))
        self.content_type = headers.get("content-type", "").lower()
        self.data: bytes | None = body or None


# ---------------------------------------------------------------------------------------------------------
# Validation and readable messages.


def _schema_errors(exc: BaseException) -> list[Exception]:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, InvalidSchemaValue):
            return list(cause.schema_errors)
        cause = cause.__cause__
    return []


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _where(exc: BaseException) -> str:
    if isinstance(exc, ParameterValidationError):
        return f"{exc.location} parameter '{exc.name}'"
    if isinstance(exc, HeaderValidationError):
        return f"response header '{exc.name}'"
    if isinstance(exc, RequestBodyValidationError):
        return "request body"
    if isinstance(exc, DataValidationError):
        return "response body"
    return ""


def describe(exc: BaseException) -> list[str]:
    """One readable line per problem in an openapi-core error, e.g. `response body $.size: 'x' is not ...`."""
    where = _where(exc)
    lines = []
    for error in _schema_errors(exc):
        if isinstance(error, JsonSchemaError):
            best = best_match(error.context) if error.context else None
            detail = f"{error.json_path}: {_short(error.message)}"
            if best is not None:
                detail += f" (closest: {best.json_path}: {_short(best.message)})"
        else:
            detail = _short(str(error))
        lines.append(f"{where} {detail}".strip())
    if lines:
        return lines
    cause = exc.__cause__
    text = str(cause) if cause is not None and str(cause) else (str(exc) or type(exc).__name__)
    return [f"{where}: {_short(text, 300)}" if where else _short(text, 300)]


def auth_problem(api: Api, headers: httpx.Headers) -> str | None:
    """Why the Authorization header is not acceptable for `api`, or None when it is."""
    value = headers.get("authorization")
    if not value:
        return "missing Authorization header"
    scheme, _, credentials = value.partition(" ")
    if scheme.lower() not in AUTH_SCHEMES[api]:
        return f"Authorization scheme '{scheme}' not accepted (expected {sorted(AUTH_SCHEMES[api])})"
    if not credentials.strip():
        return f"Authorization header has scheme '{scheme}' but no credentials"
    if scheme.lower() == "basic":
        try:
            user, sep, _ = base64.b64decode(credentials, validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return "Authorization Basic credentials are not base64 'user:password'"
        if not sep or not user:
            return "Authorization Basic credentials are not base64 'user:password'"
    return None


_error_validators: dict[Api, OAS30Validator] = {}


def error_body_problems(api: Api, response: OpenAPIResponse) -> list[str]:
    """Problems of a JSON error body checked against `api`'s common error model (ERROR_SCHEMAS)."""
    name = ERROR_SCHEMAS.get(api)
    if (name is None or response.status_code < 400 or response.status_code in GATEWAY_STATUSES
            or not response.data or "json" not in response.content_type):
        return []
    try:
        body = json.loads(response.data)
    except ValueError:
        return [f"response body is not JSON although its content type is {response.content_type}"]
    components = _fixed_document(api)["components"]
    with _lock:
        if api not in _error_validators:
            schema = {"$ref": f"#/components/schemas/{name}", "components": components}
            _error_validators[api] = OAS30Validator(schema, format_checker=oas30_format_checker)
        validator = _error_validators[api]
    return [f"response body {error.json_path}: {_short(error.message)} (undocumented status, checked "
            f"against {name})" for error in validator.iter_errors(body)]


@contextmanager
def _quiet() -> Iterator[None]:
    """openapi-core warns on every request for schemes it cannot check (oauth2) and deprecated params."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


@dataclass
class ContractRecorder:
    """Validates exchanges and collects what failed; `check()` raises listing every violation.

    allowed_statuses: status codes accepted without validation when the operation does not document
    them (default: 429 and 503, see DEFAULT_ALLOWED_STATUSES). undocumented: more such codes for one
    operation, keyed `METHOD /path/{template}` as `operation()` names it (e.g. a real server's 404
    that the document omits). require_auth: check the Authorization header.
    """

    allowed_statuses: frozenset[int] = DEFAULT_ALLOWED_STATUSES
    undocumented: Mapping[str, frozenset[int]] = field(default_factory=dict)
    require_auth: bool = True
    violations: list[str] = field(default_factory=list)
    uncovered: set[str] = field(default_factory=set)
    operations: Counter[str] = field(default_factory=Counter)
    _operations: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)

    def request_problems(self, request: OpenAPIRequest) -> list[str]:
        """Problems with a request (empty for paths no document covers, see `uncovered`)."""
        api = route(request.path)
        if api is None:
            return []
        return _verdicts.get(("request", id(openapi(api)), request.key, self.require_auth),
                             lambda: self._request_problems(api, request))

    def _request_problems(self, api: Api, request: OpenAPIRequest) -> list[str]:
        with _quiet():
            errors = list(openapi(api).iter_request_errors(request))
        # openapi-core checks security only where the document has no anonymous/oauth2 alternative;
        # auth_problem checks it everywhere and says more, so it replaces openapi-core's verdict.
        errors = [exc for exc in errors if not isinstance(exc, SecurityValidationError)]
        problems = [line for exc in errors for line in describe(exc)]
        if self.require_auth:
            problem = auth_problem(api, httpx.Headers(list(request.parameters.header.items())))
            if problem:
                problems.append(problem)
        return [f"request: {p}" for p in problems]

    def response_problems(self, request: OpenAPIRequest, response: OpenAPIResponse, *,
                          path_errors: bool = False) -> list[str]:
        """Problems with a response to `request` (empty for uncovered paths).

        An undocumented path or method is reported only with `path_errors` (request validation reports
        it otherwise).
        """
        api = route(request.path)
        if api is None:
            return []
        settings = (self.allowed_statuses, tuple(sorted(self.undocumented.items())), path_errors)
        return _verdicts.get(("response", id(openapi(api)), request.key, response.key, settings),
                             lambda: self._response_problems(api, request, response, path_errors))

    def _response_problems(self, api: Api, request: OpenAPIRequest, response: OpenAPIResponse,
                           path_errors: bool) -> list[str]:
        problems = []
        with _quiet():
            errors = list(openapi(api).iter_response_errors(request, response))
        for exc in errors:
            if isinstance(exc, ResponseNotFound) and self._allowed(request, response.status_code):
                # undocumented but explicitly allowed (rate limiting, overload, a known omission)
                problems.extend(error_body_problems(api, response))
                continue
            if isinstance(exc, MissingData) and response.status_code == 204:
                continue  # documents that give a 204 a content type: a 204 never has a body
            if isinstance(exc, PathError) and not path_errors:
                continue
            if isinstance(exc, ResponseNotFound):
                problems.append(f"status {response.status_code} is not documented for this operation")
                continue
            problems.extend(describe(exc))
        return problems

    def _allowed(self, request: OpenAPIRequest, status: int) -> bool:
        if status in self.allowed_statuses:
            return True
        return bool(self.undocumented) and status in self.undocumented.get(self.operation(request), ())

    def record(self, request: OpenAPIRequest, status: int | None, problems: Iterable[str]) -> None:
        """Add `problems` of one exchange as `METHOD path -> status: what failed`."""
        shown = "no response" if status is None else str(status)
        head = f"{request.method.upper()} {request.path} -> {shown}"
        if route(request.path) is None:
            self.uncovered.add(f"{request.method.upper()} {request.path}")
            return
        self.operations[self.operation(request)] += 1
        self.violations.extend(f"{head}: {p}" for p in problems)

    def operation(self, request: OpenAPIRequest) -> str:
        """`METHOD /path/{template}` of the documented operation, or `METHOD path (not documented)`."""
        api = route(request.path)
        if api is None:
            return f"{request.method.upper()} {request.path} (uncovered)"
        key = (request.method, request.path)
        if key not in self._operations:
            finder = APICallPathFinder(openapi(api).spec, base_url=None)
            try:
                found = finder.find(request.method, request.host_url + request.path)
                self._operations[key] = f"{request.method.upper()} {found.path_result.pattern}"
            except PathError:
                self._operations[key] = f"{request.method.upper()} {request.path} (not documented)"
        return self._operations[key]

    def validate_response(self, method: str, url: str, status: int, headers: Mapping[str, str],
                          body: bytes, *, request_headers: Mapping[str, str] | None = None,
                          request_body: bytes = b"") -> list[str]:
        """Validate one recorded exchange (e.g. from a cassette); record and return its violations."""
        request = OpenAPIRequest(method, httpx.URL(url), httpx.Headers(request_headers or {}), request_body)
        problems = self.request_problems(request) if request_headers is not None else []
        problems += self.response_problems(request, OpenAPIResponse(status, httpx.Headers(headers), body),
                                           path_errors=request_headers is None)
        before = len(self.violations)
        self.record(request, status, problems)
        return self.violations[before:]

    def check(self) -> None:
        """Raise AssertionError listing every violation recorded so far."""
        if self.violations:
            listing = "\n  ".join(self.violations)
            raise AssertionError(f"{len(self.violations)} contract violation(s):\n  {listing}")


def validate_response(method: str, url: str, status: int, headers: Mapping[str, str], body: bytes,
                      *, allowed_statuses: Iterable[int] = DEFAULT_ALLOWED_STATUSES) -> list[str]:
    """Violations of one response (no request checks); empty when valid or when no document covers it."""
    recorder = ContractRecorder(allowed_statuses=frozenset(allowed_statuses), require_auth=False)
    return recorder.validate_response(method, url, status, headers, body)


class ContractTransport(httpx.AsyncBaseTransport):
    """Forwards to `inner`, validating each request before and each response after (body read).

    Violations and uncovered paths collect on `.recorder` (also `.violations`, `.uncovered`);
    call `check()` at the end of a test.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, *,
                 allowed_statuses: Iterable[int] = DEFAULT_ALLOWED_STATUSES,
                 undocumented: Mapping[str, Iterable[int]] | None = None, require_auth: bool = True) -> None:
        self.inner = inner
        self.recorder = ContractRecorder(
            allowed_statuses=frozenset(allowed_statuses),
            undocumented={op: frozenset(codes) for op, codes in (undocumented or {}).items()},
            require_auth=require_auth,
        )

    @property
    def violations(self) -> list[str]:
        return self.recorder.violations

    @property
    def uncovered(self) -> set[str]:
        return self.recorder.uncovered

    def check(self) -> None:
        self.recorder.check()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        checked = OpenAPIRequest(request.method, request.url, request.headers, body)
        problems = self.recorder.request_problems(checked)
        try:
            response = await self.inner.handle_async_request(request)
        except BaseException:
            self.recorder.record(checked, None, problems)
            raise
        # Reading caches the decoded body on the response: the client's own read, and streaming with
        # aiter_bytes/aiter_text/aiter_lines, then serve it from that cache (only aiter_raw would not).
        body = await response.aread()
        problems += self.recorder.response_problems(
            checked, OpenAPIResponse(response.status_code, response.headers, body))
        self.recorder.record(checked, response.status_code, problems)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
