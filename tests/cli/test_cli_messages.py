"""Messages in the user's terms (issue 11, item 15): the API's own error words, never a Python repr;
a wrong URL scheme named without echoing credentials; `--approve` in either case.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from reconcile.targets.atlassian import error_for
from tests.support.apply import read_world, status_of
from tests.support.cli import make_cli, reconcile

URL = "https://api.example.com/v2/orgs/o-1/users/u-1/lifecycle/disable"


@pytest.mark.parametrize(("body", "said"), [
    ({"statusCode": 404, "message": "No User exists for the provided username"},
     "No User exists for the provided username"),
    ({"errors": [{"status": "404", "code": "NOT_FOUND", "title": "Not Found", "detail": "User u-1 is not in the org"}]},
     "Not Found: User u-1 is not in the org"),
    ({"errors": [{"title": "Forbidden"}, {"title": "Forbidden"}]}, "Forbidden"),
    ({"errorMessages": ["Group 'x' does not exist", "Try again"], "errors": {}},
     "Group 'x' does not exist; Try again"),
    ({"errorMessages": [], "errors": {"name": "must not be blank"}}, "name: must not be blank"),
    ({"type": "about:blank", "title": "Bad Request", "detail": "accountId is malformed"},
     "Bad Request: accountId is malformed"),
    ({"key": "x", "errorMessage": "The account is managed by your identity provider"},
     "The account is managed by your identity provider"),
    ([{"message": "rate limited"}], "rate limited"),
])
def test_api_errors_print_the_apis_own_words(body: Any, said: str) -> None:
    response = httpx.Response(400, json=body, request=httpx.Request("POST", URL))

    message = str(error_for(response, "re-run plan"))

    assert message.startswith(f"POST {URL} -> 400: {said}\n")
    assert "{" not in message and "['" not in message


@pytest.mark.parametrize(("url", "named"), [
    ("ftp://user:pw-SECRET-7@wiki.example.com", "the URL scheme is 'ftp', expected http or https"),
    ("https://user:pw-SECRET-7@wiki.example.com", "credentials in the URL (not shown here)"),
    ("LDAP://wiki.example.com/pw-SECRET-7", "the URL scheme is 'LDAP', expected http or https"),
])
def test_a_wrong_url_names_its_scheme_without_echoing_credentials(tmp_path: Path, url: str, named: str) -> None:
    (tmp_path / "reconcile.yaml").write_text(
        f"version: 1\ntarget:\n  type: confluence-dc\n  url: {url}\n  auth:\n    token: ${{T}}\n"
        "scope:\n  users: ['*']\n  groups: ['team-*']\nusers:\n  alice: {}\n")

    result = reconcile("validate", "--desired", str(tmp_path), env={"T": "t"})

    assert result.exit_code == 1
    assert f"reconcile.yaml:4:8: target.url: {named}" in result.output
    assert "SECRET" not in result.output and "user:" not in result.output


def test_approve_takes_the_digest_in_upper_case(tmp_path: Path) -> None:
    cli = make_cli(tmp_path)
    path, plan = cli.plan_file()

    applied = cli("apply", str(path), "--approve", plan.digest[:16].upper())

    assert applied.exit_code == 0, applied.output
    assert status_of(read_world(cli.state), "u-dave") == "disabled"
    wrong = cli("apply", str(path), "--approve", "XYZ" * 5)
    assert wrong.exit_code == 2 and "upper or lower case" in wrong.output
