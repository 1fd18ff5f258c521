"""The IdP contract loader: the Okta slice is valid OpenAPI as carried, the discovery-to-JSON-Schema
converter is strict where it should be, and the token-endpoint shapes reject what RFC 6749 forbids."""

from __future__ import annotations

from jsonschema import Draft7Validator
from openapi_spec_validator import OpenAPIV30SpecValidator

from tests.support.contract import specs_dir
from tests.support.contract_idp import (
    OKTA_PATHS,
    OKTA_SLICE_FILE,
    carried_okta_slice,
    convert,
    google_schema,
    okta_slice_text,
    raw_google,
    raw_okta,
    token_problems,
)


def test_the_carried_okta_slice_is_the_one_cut_from_the_document() -> None:
    carried = (specs_dir() / OKTA_SLICE_FILE).read_text(encoding="utf-8")
    assert carried == okta_slice_text(raw_okta())  # else: write_okta_slice (tests/specs/README.md)


def test_the_okta_slice_is_valid_openapi_without_fixups() -> None:
    doc = carried_okta_slice()
    assert list(doc["paths"]) == list(OKTA_PATHS) and doc["servers"] == [{"url": "/okta"}]
    assert {"User", "Group", "Error", "UserStatus"} <= set(doc["components"]["schemas"])
    assert [str(e).split("\n", 1)[0] for e in OpenAPIV30SpecValidator(doc).iter_errors()] == []


def test_discovery_schemas_become_strict_json_schema() -> None:
    validator = Draft7Validator(google_schema("User"))
    user = {"kind": "admin#directory#user", "id": "1", "primaryEmail": "a@example.com", "suspended": False,
            "name": {"givenName": "A", "familyName": "B"}, "emails": [{"address": "a@example.com"}]}
    assert list(validator.iter_errors(user)) == []
    assert [e.message for e in validator.iter_errors({**user, "suspended": "yes"})] == [
        "'yes' is not of type 'boolean'"]
    assert any("'disabled' was unexpected" in e.message for e in validator.iter_errors({**user, "disabled": True}))
    group = Draft7Validator(google_schema("Group"))
    assert list(group.iter_errors({"directMembersCount": "12"})) == []  # int64: a string in discovery
    assert list(group.iter_errors({"directMembersCount": 12}))
    assert convert({"$ref": "Member"}) == {"$ref": "#/definitions/Member"}
    assert raw_google()["revision"] == "20261104"


def test_token_answers_follow_rfc_6749() -> None:
    assert token_problems(200, {"access_token": "t", "token_type": "Bearer", "expires_in": 3600}) == []
    assert token_problems(200, {"access_token": "t", "token_type": "Bearer"})
    assert token_problems(400, {"error": "invalid_grant", "error_description": "x"}) == []
    assert token_problems(400, {"error": "bad_thing"})
    assert token_problems(500, {"error": "invalid_grant"})
