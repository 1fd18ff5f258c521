"""Secrets come only from ${ENV} or *_file, and their values never show: not in problems, not in the
repr of the configuration, not in the schema, not in logs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from reconcile import config as config_module
from reconcile.errors import ConfigError
from reconcile.settings import AtlassianCloudSettings, ConfluenceDcSettings
from tests.support.config import HEAD, load, problems, write

ENV_SECRET = "S3CRET-from-env"
FILE_SECRET = "S3CRET-from-file"
LITERALS = ["S3CRET-literal-token", "S3CRET-literal-password", "S3CRET-dup-value", "S3CRET-site"]


def test_env_and_file_secrets_resolve(tmp_path: Path) -> None:
    (tmp_path / "key").write_text(FILE_SECRET + "\n")
    directory = write(tmp_path, {"main.yaml": """\
        version: 1
        target:
          type: atlassian-cloud
          org_id: org-1
          auth:
            api_key_file: key
          delete: remove-from-site
          site:
            url: https://acme.atlassian.net
            email: admin@example.com
            token: ${SITE}
        scope:
          users: ["*"]
        """})
    config = load(directory, {"SITE": ENV_SECRET})
    assert isinstance(config.target, AtlassianCloudSettings)
    assert config.target.api_key.reveal() == FILE_SECRET
    assert config.target.api_key.reference == f"file:{tmp_path / 'key'}"
    assert config.target.site is not None
    assert config.target.site.token.reveal() == ENV_SECRET
    assert config.target.site.token.reference == "${SITE}"
    assert ENV_SECRET not in repr(config) and FILE_SECRET not in repr(config)
    assert ENV_SECRET not in str(config) and FILE_SECRET not in str(config)


def test_no_secret_value_in_any_problem(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "empty").write_text("\n")
    directory = write(tmp_path, {
        "a.yaml": HEAD.replace("${TOKEN}", LITERALS[0]) + f"""\
sources:
  corp:
    type: ldap
    url: ldap://ldap.example.com
    bind:
      dn: cn=x
      password: {LITERALS[1]}
    users: {{base: "dc=example", filter: "(uid=*"}}
  other:
    type: ldap
    url: ldap://ldap.example.com
    bind: {{dn: cn=y, password: 12345678}}
    users: {{base: "dc=example"}}
""",
        "b.yaml": f"version: 1\ntarget:\n  type: atlassian-cloud\n  org_id: o\n  auth:\n    api_key_file: empty\n"
                  f"  site: {{url: https://x.atlassian.net, email: a@example.com, token: {LITERALS[3]}}}\n",
        "c.yaml": f"users:\n  token: {{name: a}}\n  token: {{name: {LITERALS[2]}}}\n",
    })
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError) as caught:
        config_module.load(directory, {"TOKEN": ENV_SECRET})
    shown = str(caught.value) + repr(caught.value) + caplog.text
    assert len(caught.value.problems) >= 7
    for secret in [*LITERALS, "12345678", ENV_SECRET]:
        assert secret not in shown
    assert "literal secret: use ${ENV_VAR} or password_file:" in shown
    assert "literal secret: use ${ENV_VAR} or token_file:" in shown


def test_schema_output_holds_no_secret() -> None:
    text = json.dumps(config_module.json_schema())
    for secret in [*LITERALS, ENV_SECRET, FILE_SECRET]:
        assert secret not in text


def test_a_secret_that_resolves_to_nothing_is_a_problem(tmp_path: Path) -> None:
    assert problems(write(tmp_path, {"main.yaml": HEAD}), {"TOKEN": "  "}) == [
        f"{tmp_path}/main.yaml:6:12: target.auth.token: ${{TOKEN}} is empty; set it to the credential"]


def test_a_missing_secret_file_is_a_problem(tmp_path: Path) -> None:
    directory = write(tmp_path, {"main.yaml": HEAD.replace("token: ${TOKEN}", "token_file: /nonexistent/tok")})
    assert problems(directory) == [
        f"{tmp_path}/main.yaml:6:17: target.auth.token_file: no such file /nonexistent/tok; fix the path "
        "(relative paths start at the desired directory)"]


def test_secret_from_env_is_not_in_the_config_repr(tmp_path: Path) -> None:
    config = load(write(tmp_path, {"main.yaml": HEAD}), {"TOKEN": ENV_SECRET})
    assert isinstance(config.target, ConfluenceDcSettings)
    assert config.target.token is not None and config.target.token.reveal() == ENV_SECRET
    assert ENV_SECRET not in repr(config)
