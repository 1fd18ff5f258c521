"""The specs loader: the documents are in the repository, every fixup is needed, and with all of them every
document is valid OpenAPI."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from openapi_core import Config, OpenAPI
from openapi_spec_validator import OpenAPIV30SpecValidator

from tests.support.contract import (
    FIXUPS,
    SERVERS,
    SPEC_FILES,
    Api,
    Document,
    OpenAPIRequest,
    OpenAPIResponse,
    describe,
    drop_user_id_uuid,
    fix_account_id,
    fixup_counts,
    load_document,
    nullable_links_next,
    openapi,
    prepare,
    raw_document,
    specs_dir,
)
from tests.support.contract_graph import SLICE as GRAPH_SLICE
from tests.support.contract_idp import IDP_SPEC_FILES

SMALL = [Api.CONFLUENCE_DC, Api.ORGANIZATIONS, Api.USER_MANAGEMENT]
# The Jira document is 2.4 MB: spec-validating it takes ~5 s, so those tests are marked slow.
ALL = [*SMALL, pytest.param(Api.JIRA, marks=pytest.mark.slow)]


def spec_errors(doc: Document) -> list[str]:
    return [str(error).split("\n", 1)[0] for error in OpenAPIV30SpecValidator(doc).iter_errors()]


def without(api: Api, skipped: Callable[[Document], int]) -> Document:
    doc = raw_document(api)
    prepare(doc, api, [fixup for fixup in FIXUPS[api] if fixup is not skipped])
    return doc


TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent


def test_the_documents_are_carried_in_the_repository_unmodified() -> None:
    assert specs_dir() == TESTS / "specs"
    readme = (specs_dir() / "README.md").read_text(encoding="utf-8")
    for name in [*SPEC_FILES.values(), *IDP_SPEC_FILES, GRAPH_SLICE]:
        digest = hashlib.sha256((specs_dir() / name).read_bytes()).hexdigest()
        assert f"`{name}`" in readme and f"`{digest}`" in readme, f"{name}: not the file its README describes"
    # only the documents the tests use
    carried = [p.name for p in specs_dir().iterdir() if p.suffix in (".json", ".yaml", ".yml")]
    assert sorted(carried) == sorted([*SPEC_FILES.values(), *IDP_SPEC_FILES, GRAPH_SLICE])


# A fresh clone has nothing beside it: no file may point outside the repository for documents or notes.
OUTSIDE = [b"../" + b"shared", b"/work/" + b"shared", b"shared/" + b"specs", b"shared/" + b"reference",
           b"SPEC" + b".md", b"DESIGN" + b".md"]
SKIPPED_DIRS = {".git", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".reconcile",
                ".hypothesis", "build", "dist", "node_modules"}


def repository_files() -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in SKIPPED_DIRS and not d.endswith(".egg-info")]
        found += [Path(dirpath) / name for name in filenames]
    return found


def test_no_file_in_the_repository_points_outside_it() -> None:
    files = repository_files()
    assert ROOT / "README.md" in files and TESTS / "support" / "contract.py" in files
    offenders = [f"{path.relative_to(ROOT)}: {needle.decode()}" for path in files
                 for needle in OUTSIDE if needle in path.read_bytes()]
    assert offenders == []


def test_specs_folder_can_be_overridden(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("RECONCILE_SPECS", "/somewhere/else")
    assert str(specs_dir()) == "/somewhere/else"


@pytest.mark.parametrize("api", ALL)
def test_fixed_up_documents_pass_the_spec_validator(api: Api) -> None:
    doc = load_document(api)
    assert "_meta" not in doc
    assert doc["servers"] == [{"url": SERVERS[api]}]
    assert spec_errors(doc) == []


@pytest.mark.parametrize("api", [Api.ORGANIZATIONS, Api.USER_MANAGEMENT])
def test_meta_key_must_be_dropped(api: Api) -> None:
    doc = load_document(api)
    doc["_meta"] = raw_document(api)["_meta"]
    # the wording depends on the validator's backend (jsonschema or jsonschema-rs); the key is named either way
    assert any("'_meta'" in error for error in spec_errors(doc))


def test_fixup_3_dc_parameters_listed_twice_are_deduplicated() -> None:
    assert fixup_counts(Api.CONFLUENCE_DC)["dedupe_parameters"] > 100
    errors = spec_errors(without(Api.CONFLUENCE_DC, FIXUPS[Api.CONFLUENCE_DC][1]))
    assert "Duplicate parameter 'groupName'" in errors
    # the typed duplicate wins: `start`/`limit` on user/list become integers, not strings
    op = load_document(Api.CONFLUENCE_DC)["paths"]["/rest/api/user/list"]["get"]
    limit = [p for p in op["parameters"] if p["name"] == "limit"]
    assert [p["schema"]["type"] for p in limit] == ["integer"]


def test_fixup_2_type_next_to_ref_is_dropped() -> None:
    from tests.support.contract import fix_typed_refs

    assert fixup_counts(Api.ORGANIZATIONS)["fix_typed_refs"] == 1
    assert any("'GroupCounts' is not valid" in e for e in spec_errors(without(Api.ORGANIZATIONS, fix_typed_refs)))


def test_fixup_5_user_id_path_parameter_is_declared() -> None:
    from tests.support.contract import fix_user_id_parameter

    errors = spec_errors(without(Api.ORGANIZATIONS, fix_user_id_parameter))
    assert any("Path parameter 'userId'" in e and "was not resolved" in e for e in errors)


@pytest.mark.slow
def test_fixup_1_jira_default_outside_its_enum_is_dropped() -> None:
    from tests.support.contract import fix_defaults

    assert fixup_counts(Api.JIRA)["fix_defaults"] >= 1
    errors = spec_errors(without(Api.JIRA, fix_defaults))
    assert any("'' is not one of" in e for e in errors)


def test_jira_v2_user_and_group_routes_are_cloned_with_unique_operation_ids() -> None:
    paths = load_document(Api.JIRA)["paths"]
    for route in ("/rest/api/2/user", "/rest/api/2/group/user", "/rest/api/2/users/search", "/rest/api/2/myself"):
        assert route in paths
    assert paths["/rest/api/2/user"]["delete"]["operationId"] == paths["/rest/api/3/user"]["delete"][
        "operationId"
    ] + "V2"
    assert "/rest/api/2/issue" not in paths


# Fixups 6-8 do not change whether the document is valid OpenAPI; they change what validates. Each test
# validates the same real-world exchange against the document without and with the fixup.


def problems(doc: Document, method: str, url: str, status: int, body: object, *,
             request_body: bytes = b"") -> list[str]:
    spec = OpenAPI.from_dict(doc, config=Config(spec_validator_cls=None))
    headers = httpx.Headers({"authorization": "Bearer t", "content-type": "application/json"})
    request = OpenAPIRequest(method, httpx.URL(url), headers, request_body)
    response = OpenAPIResponse(status, httpx.Headers({"content-type": "application/json"}), json.dumps(body).encode())
    errors = [*spec.iter_request_errors(request), *spec.iter_response_errors(request, response)]
    return [line for error in errors for line in describe(error)]


ACCOUNT_ID = "557058:f8a0e4c2-6a1b-4b7e-9d2a-0c1e2f3a4b5c"


def test_fixup_6_account_ids_are_not_uuids() -> None:
    url = f"http://sim/admin/v1/orgs/o1/users/{ACCOUNT_ID}/roles/assign"
    role = b'{"role": "atlassian/org-admin"}'
    assert problems(without(Api.ORGANIZATIONS, drop_user_id_uuid), "POST", url, 204, None, request_body=role) == [
        f"path parameter 'userId' $: '{ACCOUNT_ID}' is not a 'uuid'"
    ]
    assert fixup_counts(Api.ORGANIZATIONS)["drop_user_id_uuid"] == 4
    assert problems(load_document(Api.ORGANIZATIONS), "POST", url, 204, None, request_body=role) == []


def test_fixup_7_real_account_ids_match_the_user_management_pattern() -> None:
    url = f"http://sim/users/{ACCOUNT_ID}/manage/lifecycle/disable"
    message = b'{"message": "left the company"}'
    assert problems(without(Api.USER_MANAGEMENT, fix_account_id), "POST", url, 204, None, request_body=message) == [
        f"path parameter 'account_id' $: '{ACCOUNT_ID}' does not match '[a-zA-Z0-9_|:-]{{1,128}}\\n'",
        f"path parameter 'account_id' $: Tried to write read-only property with {ACCOUNT_ID}",
    ]
    assert problems(load_document(Api.USER_MANAGEMENT), "POST", url, 204, None, request_body=message) == []


def test_fixup_8_last_page_may_have_null_next_link() -> None:
    url = "http://sim/admin/v2/orgs/o1/directories/-/users/search"
    last = {"data": [], "links": {"self": "abc", "next": None}}
    assert "response body $.links.next: None is not of type 'string'" in problems(
        without(Api.ORGANIZATIONS, nullable_links_next), "POST", url, 200, last, request_body=b"{}")
    assert problems(load_document(Api.ORGANIZATIONS), "POST", url, 200, last, request_body=b"{}") == []


def test_documents_are_loaded_once_per_process() -> None:
    assert openapi(Api.USER_MANAGEMENT) is openapi(Api.USER_MANAGEMENT)
    first, second = load_document(Api.USER_MANAGEMENT), load_document(Api.USER_MANAGEMENT)
    assert first == second and first is not second  # callers get copies they may edit


def test_fixup_9_dc_message_arguments_may_be_strings() -> None:
    from tests.support.contract import relax_message_args

    url = "http://sim/rest/api/longtask/t1"
    task = {"id": "t1", "name": {"key": "delete.user", "args": ["dave"]}, "percentageComplete": 100,
            "successful": True, "messages": [{"translation": "Deleted", "args": ["dave", 3]}]}
    assert problems(without(Api.CONFLUENCE_DC, relax_message_args), "GET", url, 200, task) == [
        "response body $.name.args[0]: 'dave' is not of type 'object'",
        "response body $.messages[0].args[0]: 'dave' is not of type 'object'",
        "response body $.messages[0].args[1]: 3 is not of type 'object'",
    ]
    assert problems(load_document(Api.CONFLUENCE_DC), "GET", url, 200, task) == []
