"""An LDAP source through the whole path: desired files -> config.load -> read_desired -> `reconcile plan`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconcile.config import load
from reconcile.desired import read_desired
from reconcile.errors import EmptySource
from reconcile.model import Status
from tests.support.ldap_servers import SERVICE_DN, SERVICE_PASSWORD, Slapd

pytestmark = [pytest.mark.ldap, pytest.mark.xdist_group("slapd")]  # one shared slapd, one worker

WORLD = {
    "me": "u-admin",
    "users": [
        {"ref": "u-admin", "username": "admin", "email": "admin@example.org"},
        {"ref": "u-alice", "username": "alice", "email": "alice@example.org"},
        {"ref": "u-bob", "username": "bob", "email": "bob.baker@example.org"},
        {"ref": "u-frank", "username": "frank", "email": "frank@example.org"},
        {"ref": "u-zed", "username": "zed", "email": "zed@example.org"},
    ],
    "groups": [
        {"name": "confluence-administrators", "members": ["u-admin"]},
        {"name": "confluence-eng-platform", "members": ["u-alice", "u-zed"]},
    ],
}


def desired_dir(tmp_path: Path, server: Slapd, *, users_filter: str, allow_empty: bool = False) -> Path:
    directory = tmp_path / "desired"
    directory.mkdir(parents=True)
    (directory / "world.json").write_text(json.dumps(WORLD))
    (directory / "reconcile.yaml").write_text(f"""\
version: 1
target:
  type: memory
  state: {directory / "world.json"}
sources:
  corp:
    type: ldap
    url: {server.url}
    start_tls: true
    ca_file: {server.ca_file}
    bind:
      dn: "{SERVICE_DN}"
      password: ${{LDAP_PASSWORD}}
    users:
      base: "ou=people,dc=example,dc=org"
      filter: "{users_filter}"
      disabled: "(employeeType=disabled)"
    groups:
      base: "ou=groups,dc=example,dc=org"
      nested: true
      map: {{"eng-*": "confluence-eng-*"}}
    allow_empty: {"true" if allow_empty else "false"}
scope:
  users: ["*@example.org"]
  groups: ["confluence-eng-*"]
policy:
  absent: disable
""")
    return directory


def reconcile(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from reconcile.cli import main; main()", *args],
                          capture_output=True, text=True, env={**os.environ, **env}, timeout=120, check=False)


def test_read_desired_merges_the_ldap_source(slapd: Slapd, tmp_path: Path) -> None:
    config = load(desired_dir(tmp_path, slapd, users_filter="(objectClass=inetOrgPerson)"),
                  env={"LDAP_PASSWORD": SERVICE_PASSWORD})
    desired = read_desired(config)
    assert desired.users["alice@example.org"].groups == {"confluence-eng-platform", "confluence-eng-docs"}
    assert desired.users["frank@example.org"].status is Status.DISABLED


def test_a_wrong_filter_is_refused_by_the_empty_source_guard(slapd: Slapd, tmp_path: Path) -> None:
    config = load(desired_dir(tmp_path, slapd, users_filter="(objectClass=posixAccount)"),
                  env={"LDAP_PASSWORD": SERVICE_PASSWORD})
    with pytest.raises(EmptySource, match="source 'corp' \\(ldap\\) returned no users"):
        read_desired(config)


def test_allow_empty_on_the_source_lifts_only_that_guard(slapd: Slapd, tmp_path: Path) -> None:
    config = load(desired_dir(tmp_path, slapd, users_filter="(objectClass=posixAccount)", allow_empty=True),
                  env={"LDAP_PASSWORD": SERVICE_PASSWORD})
    with pytest.raises(EmptySource, match="the desired state has no users"):
        read_desired(config)  # the merged state is still empty: refused unless policy.allow_empty


def test_cli_plan_from_ldap_and_its_refusal_of_an_empty_source(slapd: Slapd, tmp_path: Path) -> None:
    env = {"LDAP_PASSWORD": SERVICE_PASSWORD}
    good = desired_dir(tmp_path / "good", slapd, users_filter="(objectClass=inetOrgPerson)")
    planned = reconcile("--desired", str(good), "plan", "--format", "json", env=env)
    assert planned.returncode == 0, planned.stderr
    actions = {(a["kind"], a["subject"]["identity"], a.get("group")) for a in json.loads(planned.stdout)["actions"]}
    assert actions == {
        ("add_member", "bob.baker@example.org", "confluence-eng-platform"),  # member in the directory
        ("disable", "frank@example.org", None),  # disabled in the directory
        ("disable", "zed", None),  # in scope, absent from the directory
    }

    empty = desired_dir(tmp_path / "empty", slapd, users_filter="(objectClass=posixAccount)")
    refused = reconcile("--desired", str(empty), "plan", env=env)
    assert refused.returncode == 4, refused.stderr
    assert "source 'corp'" in refused.stderr and "allow_empty" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert SERVICE_PASSWORD not in refused.stdout + refused.stderr + planned.stdout + planned.stderr


def test_cli_reports_a_directory_failure_in_one_line(slapd: Slapd, tmp_path: Path) -> None:
    desired = desired_dir(tmp_path, slapd, users_filter="(objectClass=inetOrgPerson)")
    refused = reconcile("--desired", str(desired), "plan", env={"LDAP_PASSWORD": "not-the-password"})
    assert refused.returncode == 1
    assert "ldap source 'corp'" in refused.stderr and "invalid credentials" in refused.stderr
    assert "Traceback" not in refused.stderr and "not-the-password" not in refused.stdout + refused.stderr
