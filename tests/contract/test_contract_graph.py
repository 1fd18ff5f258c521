"""The Graph slice is carried as its README describes, its in-memory fixup is needed, and with it the slice is
valid OpenAPI 3.0 that accepts real Graph answers."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from openapi_spec_validator import validate

from tests.support.contract import specs_dir
from tests.support.contract_graph import SLICE, prepare, raw_slice, undeclared

# A /users page, a /members page and an error as the Graph documentation shows them (trimmed).
USERS_PAGE = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users",
              "@odata.nextLink": "https://graph.microsoft.com/v1.0/users?$top=2&$skiptoken=X",
              "value": [{"id": "6ea91a8d-e32e-41a1-b7bd-d2d185eed0e0", "userPrincipalName": "Adams@contoso.com",
                         "mail": "Adams@contoso.com", "accountEnabled": True, "userType": "Member"}]}
MEMBERS_PAGE = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects",
                "value": [{"@odata.type": "#microsoft.graph.user", "id": "1", "displayName": "A", "mail": None}]}
ERROR = {"error": {"code": "Authorization_RequestDenied", "message": "Insufficient privileges to complete the "
                   "operation.", "innerError": {"date": "2026-01-01T00:00:00", "request-id": "r"}}}
PAGES = [(USERS_PAGE, "microsoft.graph.userCollectionResponse"),
         (MEMBERS_PAGE, "microsoft.graph.directoryObjectCollectionResponse"),
         (ERROR, "microsoft.graph.ODataErrors.ODataError")]


def test_the_slice_is_carried_as_its_readme_says() -> None:
    readme = (specs_dir() / "README.md").read_text(encoding="utf-8")
    digest = hashlib.sha256((specs_dir() / SLICE).read_bytes()).hexdigest()
    assert f"`{SLICE}`" in readme and f"`{digest}`" in readme, f"{SLICE}: not the file its README describes"
    assert (specs_dir() / "slice_graph.py").is_file()


def test_the_fixed_slice_is_valid_openapi() -> None:
    doc = raw_slice()
    assert prepare(doc) == {"drop_open_additional_properties": 440}
    validate(doc)  # openapi-spec-validator: raises on an invalid document


def errors(doc: dict[str, Any], schema: str, body: Any) -> list[str]:
    checker = OAS30Validator({"$ref": f"#/components/schemas/{schema}", "components": doc["components"]},
                             format_checker=oas30_format_checker)
    return [error.message for error in checker.iter_errors(body)]


@pytest.mark.parametrize(("body", "schema"), PAGES, ids=["users", "members", "error"])
def test_the_fixup_is_needed_and_enough(body: Any, schema: str) -> None:
    assert errors(raw_slice(), schema, body), "the slice as published rejects a real Graph answer"
    fixed = raw_slice()
    prepare(fixed)
    assert errors(fixed, schema, body) == []
    assert errors(fixed, schema, {**body, "value": "not a list"} if "value" in body else {"error": "x"})


def test_undeclared_properties_are_reported_by_type() -> None:
    assert undeclared("/entra/v1.0/users", USERS_PAGE) == []
    assert undeclared("/entra/v1.0/groups/g/members", MEMBERS_PAGE) == []
    odd = {"value": [{"@odata.type": "#microsoft.graph.group", "id": "1", "accountEnabled": True}]}
    assert undeclared("/entra/v1.0/groups/g/members", odd) == [
        "response body $.value[0]: microsoft.graph.group does not declare accountEnabled"]
