"""Insecure settings fail closed: credentials in clear need `insecure: true`, and the managed accounts
(`scope.users`) must be written. The loader and the JSON Schema agree on each case.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconcile.settings import ConfluenceDcSettings
from tests.config.test_config_schema import schema_errors
from tests.support.config import HEAD, load, problems, write

HTTP_FIX = ("http:// to a host that is not this machine sends the credentials in clear; use https://, or "
            "write `insecure: true` on the target to accept that")
LDAP_FIX = ("the bind password would cross the network in clear over ldap://; use ldaps://, or start_tls: "
            "true, or write `insecure: true` on this source to accept that")


def dc(url: str, extra: str = "") -> str:
    return HEAD.replace("https://confluence.example.com", url + extra)


def ldap(url: str, extra: str = "", bind: bool = True) -> str:
    """HEAD plus an LDAP source on line 10; its url on line 13."""
    return (HEAD + f"sources:\n  corp:\n    type: ldap\n    url: {url}\n{extra}"
            + ("    bind: {dn: cn=x, password: '${TOKEN}'}\n" if bind else "")
            + "    users: {base: 'dc=example'}\n")


def both(tmp_path: Path, text: str) -> tuple[list[str], list[str]]:
    """(load() problems, schema errors) of one main.yaml."""
    directory = write(tmp_path / "desired", {"main.yaml": text})
    return problems(directory), schema_errors(directory)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8990", "http://127.1.2.3/confluence", "http://localhost", "http://localhost:8080/",
    "http://[::1]:8990", "https://confluence.example.com", "https://10.0.0.5:8443",
])
def test_loopback_and_https_need_no_flag(url: str, tmp_path: Path) -> None:
    assert both(tmp_path, dc(url)) == ([], [])


@pytest.mark.parametrize("url", [
    "http://confluence.example.com", "http://10.0.0.5:8090", "http://localhost.example.com",
    "http://127.0.0.1.nip.io:8990", "http://[::2]", "http://0.0.0.0:8990",
])
def test_http_to_another_host_is_refused_unless_insecure(url: str, tmp_path: Path) -> None:
    found, schema = both(tmp_path / "plain", dc(url))
    assert found == [f"{tmp_path}/plain/desired/main.yaml:4:8: target.url: {HTTP_FIX}"]
    assert schema, "the schema refuses it too"
    assert both(tmp_path / "said", dc(url, "\n  insecure: true")) == ([], [])


def test_an_http_url_from_the_environment_is_judged_by_load(tmp_path: Path) -> None:
    directory = write(tmp_path / "desired", {"main.yaml": dc("${URL}")})
    assert problems(directory, {"TOKEN": "t", "URL": "http://wiki.example.com"}) == [
        f"{directory}/main.yaml:4:8: target.url: {HTTP_FIX}"]
    assert problems(directory, {"TOKEN": "t", "URL": "http://127.0.0.1:8990"}) == []


def test_cloud_url_and_site_url_are_covered_by_the_targets_flag(tmp_path: Path) -> None:
    text = ("version: 1\ntarget:\n  type: atlassian-cloud\n  org_id: o-1\n  auth:\n    api_key: ${TOKEN}\n"
            "  url: http://admin.example.com\n  delete: remove-from-site\n"
            "  site: {url: 'http://acme.example.com', email: a@example.com, token: '${TOKEN}'}\n"
            "scope: {users: ['*']}\n")
    found, schema = both(tmp_path / "plain", text)
    main = f"{tmp_path}/plain/desired/main.yaml"
    assert found == [f"{main}:7:8: target.url: {HTTP_FIX}", f"{main}:9:15: target.site.url: {HTTP_FIX}"]
    assert schema == ["main.yaml: target: 'insecure' is a required property"] * 2  # one per URL
    assert both(tmp_path / "said", text.replace("  delete:", "  insecure: true\n  delete:")) == ([], [])


@pytest.mark.parametrize("url", ["ldap://127.0.0.1:3890", "ldap://ldap.example.com", "ldap://localhost"])
def test_a_bind_over_plain_ldap_is_refused_even_to_loopback(url: str, tmp_path: Path) -> None:
    found, schema = both(tmp_path, ldap(url))
    assert found == [f"{tmp_path}/desired/main.yaml:13:10: sources.corp.url: {LDAP_FIX}"]
    assert schema


@pytest.mark.parametrize(("url", "extra", "bind"), [
    ("ldap://ldap.example.com", "    start_tls: true\n", True),
    ("ldap://127.0.0.1:3890", "    insecure: true\n", True),
    ("ldaps://ldap.example.com", "", True),
    ("ldap://ldap.example.com", "", False),  # an anonymous search sends no password
])
def test_tls_an_explicit_insecure_or_no_password_pass(url: str, extra: str, bind: bool, tmp_path: Path) -> None:
    assert both(tmp_path, ldap(url, extra, bind)) == ([], [])


def test_insecure_false_is_not_an_acknowledgement(tmp_path: Path) -> None:
    found, schema = both(tmp_path, ldap("ldap://127.0.0.1:3890", "    insecure: false\n    start_tls: false\n"))
    assert found == [f"{tmp_path}/desired/main.yaml:13:10: sources.corp.url: {LDAP_FIX}"] and schema


def test_scope_users_must_be_written_and_star_is_accepted(tmp_path: Path) -> None:
    without = HEAD.replace('  users: ["*"]\n', "")
    found, schema = both(tmp_path / "a", without)
    assert len(found) == 1 and "scope: missing required key 'users'" in found[0] and schema
    assert both(tmp_path / "b", HEAD) == ([], [])  # users: ["*"], said explicitly
    # scope in another file: only load() sees the whole directory
    directory = write(tmp_path / "c", {"main.yaml": HEAD.replace('scope:\n  groups: ["team-*"]\n  users: ["*"]\n',
                                                                  ""),
                                       "scope.yaml": 'scope:\n  users: ["*@example.com"]\n'})
    assert problems(directory) == []


def test_an_accepted_insecure_target_survives_export(tmp_path: Path) -> None:
    from reconcile.export import target_lines

    first = load(write(tmp_path / "a", {"main.yaml": dc("http://wiki.example.com", "\n  insecure: true")}))
    assert isinstance(first.target, ConfluenceDcSettings) and first.target.insecure
    text = "\n".join(["version: 1", *target_lines(first.target), 'scope:\n  users: ["*"]']) + "\n"
    again = load(write(tmp_path / "b", {"main.yaml": text}))
    assert again.target == first.target
