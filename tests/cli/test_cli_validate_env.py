"""`validate` as a pre-commit hook needs no token: an unset `${VAR}` is checked for its syntax only.
`validate --require-env` (CI) and `plan` require every variable, each unset one reported at file:line:col.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import Result

from tests.support.cli import reconcile

DESIRED = """\
version: 1
target:
  type: confluence-dc
  url: ${CONFLUENCE_URL}
  auth:
    username: ${CONFLUENCE_USER}
    password_file: ${SECRETS_DIR}/confluence
scope:
  users: ["*@example.com"]
sources:
  corp:
    type: ldap
    url: ldaps://ldap.example.com
    bind: {dn: "cn=reconcile,dc=example,dc=com", password: "${LDAP_PASSWORD}"}
    users: {base: "dc=example,dc=com"}
"""
NAMES = ("CONFLUENCE_URL", "CONFLUENCE_USER", "SECRETS_DIR", "LDAP_PASSWORD")
UNSET: dict[str, str | None] = {**dict.fromkeys(NAMES), "RECONCILE_REQUIRE_ENV": None}


def run(directory: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return reconcile("--desired", str(directory), *args,
                              env={"NO_COLOR": "1", **UNSET, **(env or {})})


@pytest.fixture
def desired(tmp_path: Path) -> Path:
    (tmp_path / "desired").mkdir()
    (tmp_path / "desired" / "main.yaml").write_text(DESIRED)
    return tmp_path / "desired"


def test_validate_needs_no_variable_and_says_what_it_did_not_check(desired: Path) -> None:
    result = run(desired, "validate")
    assert result.exit_code == 0, result.output
    assert "valid" in result.stdout
    assert ("Not set, so not checked: CONFLUENCE_URL, CONFLUENCE_USER, SECRETS_DIR, LDAP_PASSWORD "
            "(`validate --require-env` checks them).") in result.stdout


def test_require_env_reports_each_unset_variable_where_it_is_named(desired: Path) -> None:
    for result in (run(desired, "validate", "--require-env"),
                   run(desired, "validate", env={"RECONCILE_REQUIRE_ENV": "1"})):
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        for where, name in [("4:8", "target.url"), ("6:15", "target.auth.username"),
                            ("7:20", "target.auth.password_file"), ("14:60", "sources.corp.bind.password")]:
            variable = {"target.url": "CONFLUENCE_URL", "target.auth.username": "CONFLUENCE_USER",
                        "target.auth.password_file": "SECRETS_DIR"}.get(name, "LDAP_PASSWORD")
            assert (f"{desired}/main.yaml:{where}: {name}: environment variable {variable} is not set; "
                    "export it, or change the reference") in result.stderr


def test_require_env_checks_the_values_once_they_are_set(desired: Path, tmp_path: Path) -> None:
    (tmp_path / "confluence").write_text("pw\n")
    env = {"CONFLUENCE_URL": "http://wiki.example.com", "CONFLUENCE_USER": "bot", "SECRETS_DIR": str(tmp_path),
           "LDAP_PASSWORD": "x"}
    refused = run(desired, "validate", "--require-env", env=env)
    assert refused.exit_code == 1
    assert f"{desired}/main.yaml:4:8: target.url: http:// to a host that is not this machine" in refused.stderr
    accepted = run(desired, "validate", "--require-env", env={**env, "CONFLUENCE_URL": "https://wiki.example.com"})
    assert accepted.exit_code == 0, accepted.output
    assert "Not set" not in accepted.stdout


def test_without_the_variables_the_syntax_and_everything_else_is_still_checked(desired: Path) -> None:
    text = DESIRED.replace("${CONFLUENCE_URL}", "https://${CONFLUENCE-HOST}").replace("users:", "usrs:", 1)
    (desired / "main.yaml").write_text(text.replace('"${LDAP_PASSWORD}"', '"${LDAP_PASSWORD"'))
    result = run(desired, "validate")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[1:] == [
        f"  {desired}/main.yaml:4:8: target.url: malformed reference: write ${{NAME}} (letters, digits and _, "
        "not starting with a digit)",
        f"  {desired}/main.yaml:8:1: scope: missing required key 'users'; say which accounts this configuration "
        'manages, e.g. users: ["*@example.com"] (users: ["*"] manages every account on the target; there is no '
        "default)",
        f"  {desired}/main.yaml:9:3: unknown key 'usrs' in scope; did you mean 'users'?",
        f"  {desired}/main.yaml:14:60: sources.corp.bind.password: literal secret: use ${{ENV_VAR}} or "
        "password_file:",
    ]


def test_plan_still_requires_every_variable(desired: Path) -> None:
    result = run(desired, "plan")
    assert result.exit_code == 1
    assert f"{desired}/main.yaml:4:8: target.url: environment variable CONFLUENCE_URL is not set" in result.stderr
