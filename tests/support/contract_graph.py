"""Contract validation of the Entra ID simulator against the Microsoft Graph slice carried in tests/specs/
(msgraph-v1.0-users-groups.slice.yaml; provenance and fixups in tests/specs/README.md).

GraphContractTransport validates every `/entra/v1.0/...` exchange it forwards: the request's parameters and the
response against openapi-core, plus a closed-world check that every property of a returned user, group or device
is one the document declares for that type (the document itself leaves every object open).
"""

from __future__ import annotations

import copy
import functools
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
from openapi_core import OpenAPI
from openapi_core.templating.paths.exceptions import PathError
from openapi_core.templating.paths.finders import APICallPathFinder
from ruamel.yaml import YAML

from tests.support import openapi_validators
from tests.support.contract import OpenAPIRequest, OpenAPIResponse, _quiet, describe, specs_dir

SLICE = "msgraph-v1.0-users-groups.slice.yaml"
SERVER = "/entra/v1.0"  # where reconcile/sim/entra_id/routes.py serves Graph
OPEN = {"type": "object"}  # the converter's `additionalProperties` for OData open types
TYPED_COLLECTIONS = {"/users": "microsoft.graph.user", "/groups": "microsoft.graph.group"}

Document = dict[str, Any]


@functools.cache
def _slice_text() -> str:
    """The slice as JSON text, parsed from its YAML once per process (~0.25 s each time)."""
    return json.dumps(YAML(typ="safe").load((specs_dir() / SLICE).read_text(encoding="utf-8")))


def raw_slice() -> Document:
    """A fresh copy of the slice as carried, for the caller to change (a JSON copy takes ~10 ms)."""
    loaded: Document = json.loads(_slice_text())
    return loaded


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def drop_open_additional_properties(doc: Document) -> int:
    """Fixup G1: `additionalProperties: {type: object}` sits on every schema, also inside `allOf` parts, where it
    rejects each property a sibling part declares (`entity` rejects `displayName`): nothing would validate."""
    fixed = 0
    for node in _walk(doc):
        if node.get("additionalProperties") == OPEN:
            del node["additionalProperties"]
            fixed += 1
    return fixed


FIXUPS = (drop_open_additional_properties,)


def prepare(doc: Document) -> dict[str, int]:
    counts = {fixup.__name__: fixup(doc) for fixup in FIXUPS}
    doc["servers"] = [{"url": SERVER}]
    return counts


_lock = threading.Lock()
_cache: dict[str, Any] = {}


def document() -> Document:
    with _lock:
        if "doc" not in _cache:
            doc = raw_slice()
            prepare(doc)
            _cache["doc"] = doc
        loaded: Document = _cache["doc"]
        return loaded


def openapi() -> OpenAPI:
    doc = document()
    with _lock:
        if "openapi" not in _cache:
            _cache["openapi"] = OpenAPI.from_dict(copy.deepcopy(doc), config=openapi_validators.config())
        spec: OpenAPI = _cache["openapi"]
        return spec


@functools.cache
def declared(schema_name: str) -> frozenset[str]:
    """Every property a schema declares, through its `allOf` chain (the document never changes: built once)."""
    schemas = document()["components"]["schemas"]
    names: set[str] = set()
    stack = [schemas[schema_name]]
    while stack:
        node = stack.pop()
        if "$ref" in node:
            stack.append(schemas[node["$ref"].rsplit("/", 1)[-1]])
        names |= set(node.get("properties", {}))
        stack.extend(node.get("allOf", []))
    return frozenset(names)


def undeclared(path: str, body: Any) -> list[str]:
    """Properties of returned objects that the document does not declare for their type."""
    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
        return []
    schemas = document()["components"]["schemas"]
    fixed_type = TYPED_COLLECTIONS.get(path.removeprefix(SERVER))
    problems = []
    for i, item in enumerate(body["value"]):
        name = fixed_type or str(item.get("@odata.type", "")).lstrip("#")
        if name not in schemas:  # e.g. servicePrincipal: not in this slice, checked as a directoryObject only
            continue
        extra = sorted(k for k in item if not k.startswith("@odata.") and k not in declared(name))
        if extra:
            problems.append(f"response body $.value[{i}]: {name} does not declare {', '.join(extra)}")
    return problems


def covered(request: httpx.Request) -> bool:
    """Whether the slice describes this request's operation."""
    checked = OpenAPIRequest(request.method, request.url, request.headers, request.content)
    try:
        APICallPathFinder(openapi().spec, base_url=None).find(checked.method, checked.host_url + checked.path)
    except PathError:
        return False
    return True


def request_problems(request: httpx.Request) -> list[str]:
    """Where a request breaks the document (a test may send such requests on purpose)."""
    checked = OpenAPIRequest(request.method, request.url, request.headers, request.content)
    with _quiet():
        return [line for exc in openapi().iter_request_errors(checked) for line in describe(exc)]


def response_problems(request: httpx.Request, response: httpx.Response) -> list[str]:
    """Where a response to a covered request breaks the document."""
    checked = OpenAPIRequest(request.method, request.url, request.headers, request.content)
    answer = OpenAPIResponse(response.status_code, response.headers, response.content)
    with _quiet():
        found = [line for exc in openapi().iter_response_errors(checked, answer) for line in describe(exc)]
    if "json" in response.headers.get("content-type", ""):
        found += undeclared(request.url.path, json.loads(response.content))
    return found


class GraphContractTransport(httpx.AsyncBaseTransport):
    """Forwards to `inner`; records each Graph response's problems on `.violations` (`check()` raises), the
    requests' own on `.request_violations`, and Graph paths the slice does not describe on `.uncovered`."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.violations: list[str] = []
        self.request_violations: list[str] = []
        self.uncovered: set[str] = set()
        self.validated = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        response = await self.inner.handle_async_request(request)
        await response.aread()
        if request.url.path.startswith(SERVER + "/"):
            head = f"{request.method} {request.url.path} -> {response.status_code}"
            if not covered(request):
                self.uncovered.add(f"{request.method} {request.url.path}")
                return response
            self.validated += 1
            self.request_violations += [f"{head}: {p}" for p in request_problems(request)]
            self.violations += [f"{head}: {p}" for p in response_problems(request, response)]
        return response

    def check(self) -> None:
        if self.violations:
            raise AssertionError(f"{len(self.violations)} Graph contract violation(s):\n  "
                                 + "\n  ".join(self.violations))

    async def aclose(self) -> None:
        await self.inner.aclose()
