"""The `notify:` section: its typed value, and every problem located as file:line:col — with the JSON
Schema agreeing on what it can judge (a ${VAR}'s value and the cross-file rule only load() can).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from reconcile.config import json_schema
from reconcile.settings import NotifySettings, NotifyWhen, SmtpSecurity
from tests.support.config import ENV, HEAD, as_json, load, problems, write

SMTP_PASSWORD = "smtp-pa55-never-shown"
HOOK = "https://hooks.slack.com/services/T0/B0/s3cr3t-hook-path"
SECRETS = {**ENV, "SMTP_PASSWORD": SMTP_PASSWORD, "SLACK_WEBHOOK_URL": HOOK, "HOOK_AUTH": "Bearer hdr-val-9"}

FULL = HEAD + """\
notify:
  on: [failure, always]
  mask_emails: false
  max_actions: 5
  email:
    host: smtp.example.com
    security: tls
    username: reconcile@example.com
    password: ${SMTP_PASSWORD}
    from: reconcile@example.com
    to: [iam@example.com, audit@example.com]
    timeout: 12
  webhook:
    url: ${SLACK_WEBHOOK_URL}
    headers:
      Authorization: ${HOOK_AUTH}
"""


def schema_errors(directory: Path) -> list[str]:
    validator = jsonschema.Draft202012Validator(json_schema())
    return [e.message for p in sorted(directory.glob("*.yaml")) for e in validator.iter_errors(as_json(p))]


def test_a_full_section_becomes_typed_settings(tmp_path: Path) -> None:
    directory = write(tmp_path / "desired", {"main.yaml": FULL})
    assert schema_errors(directory) == []
    notify = load(directory, SECRETS).notify
    assert notify is not None
    assert notify.on == frozenset({NotifyWhen.FAILURE, NotifyWhen.ALWAYS})
    assert (notify.mask_emails, notify.max_actions) == (False, 5)
    email = notify.email
    assert email is not None
    assert (email.host, email.port, email.security) == ("smtp.example.com", 465, SmtpSecurity.TLS)  # tls: 465
    assert (email.sender, email.recipients) == ("reconcile@example.com", ("iam@example.com", "audit@example.com"))
    assert email.username == "reconcile@example.com" and email.timeout == 12.0
    assert email.password is not None and email.password.reveal() == SMTP_PASSWORD
    assert SMTP_PASSWORD not in repr(notify)  # secrets stay out of reprs (and so out of logs)
    hook = notify.webhook
    assert hook is not None and hook.url.reveal() == HOOK and hook.url.reference == "${SLACK_WEBHOOK_URL}"
    assert [(name, value.reveal()) for name, value in hook.headers] == [("Authorization", "Bearer hdr-val-9")]
    assert HOOK not in repr(notify)


def test_defaults_and_no_section(tmp_path: Path) -> None:
    minimal = HEAD + "notify:\n  email:\n    host: localhost\n    from: r@example.com\n    to: [a@example.com]\n"
    notify = load(write(tmp_path / "a", {"main.yaml": minimal})).notify
    assert notify is not None and notify.email is not None
    assert (notify.email.port, notify.email.security, notify.email.password) == (587, SmtpSecurity.STARTTLS, None)
    assert notify.on == NotifySettings().on and notify.mask_emails and notify.webhook is None
    assert load(write(tmp_path / "b", {"main.yaml": HEAD})).notify is None


def test_secret_files(tmp_path: Path) -> None:
    directory = write(tmp_path / "desired", {"main.yaml": HEAD + (
        "notify:\n  email:\n    host: smtp.example.com\n    username: r\n    password_file: smtp.pw\n"
        "    from: r@example.com\n    to: [a@example.com]\n  webhook:\n    url_file: hook.url\n")})
    (directory / "smtp.pw").write_text(SMTP_PASSWORD + "\n")
    (directory / "hook.url").write_text(HOOK + "\n")
    notify = load(directory).notify
    assert notify is not None and notify.email is not None and notify.webhook is not None
    assert notify.email.password is not None and notify.email.password.reveal() == SMTP_PASSWORD
    assert notify.webhook.url.reveal() == HOOK and notify.webhook.url.reference.startswith("file:")


@dataclass(frozen=True)
class Case:
    id: str
    notify: str  # the section, from line 9 of main.yaml
    expected: list[str]
    schema: bool  # whether the schema (which sees ${VAR} unexpanded) rejects it too


EMAIL = "  email:\n    host: smtp.example.com\n    from: r@example.com\n    to: [a@example.com]\n"
CASES = [
    Case("no channel", "notify:\n  on: [always]\n", [
        "desired/main.yaml:10:1: notify: give email, webhook or both"], True),
    Case("empty section", "notify:\n", [
        "desired/main.yaml:10:1: notify: expected a mapping, got nothing (null)"], True),
    Case("unknown key with hint", "notify:\n  webhok:\n    url: ${SLACK_WEBHOOK_URL}\n", [
        "desired/main.yaml:10:1: notify: give email, webhook or both",
        "desired/main.yaml:11:3: unknown key 'webhok' in notify; did you mean 'webhook'?"], True),
    Case("unknown event", "notify:\n  on: [change]\n" + EMAIL, [
        "desired/main.yaml:11:8: notify.on[0]: unknown value 'change'; did you mean 'changes'? "
        "(allowed: always, changes, failure)"], True),
    Case("no events", "notify:\n  on: []\n" + EMAIL, [
        "desired/main.yaml:11:7: notify.on: give at least 1 item"], True),
    Case("no recipients", "notify:\n  email:\n    host: smtp.example.com\n    from: r@example.com\n    to: []\n", [
        "desired/main.yaml:14:9: notify.email.to: give at least 1 item"], True),
    Case("bad addresses", "notify:\n  email:\n    host: smtp.example.com\n    from: reconcile\n"
         "    to: [a@example.com, 'b at example.com']\n", [
        "desired/main.yaml:13:11: notify.email.from: invalid email 'reconcile'",
        "desired/main.yaml:14:25: notify.email.to[1]: invalid email 'b at example.com'"], True),
    Case("missing host", "notify:\n  email:\n    from: r@example.com\n    to: [a@example.com]\n", [
        "desired/main.yaml:11:3: notify.email: missing required key 'host'"], True),
    Case("host with a scheme", "notify:\n  email:\n    host: smtp://smtp.example.com\n"
         "    from: r@example.com\n    to: [a@example.com]\n", [
        "desired/main.yaml:12:11: notify.email.host: 'smtp://smtp.example.com' is not a host name (no scheme "
        "or path; the port goes under port:)"], True),
    Case("port out of range", "notify:\n" + EMAIL + "    port: 70000\n", [
        "desired/main.yaml:15:11: notify.email.port: must be at most 65535, got 70000"], True),
    Case("literal password", "notify:\n" + EMAIL + "    username: r\n    password: hunter2-literal\n", [
        "desired/main.yaml:16:15: notify.email.password: literal secret: use ${ENV_VAR} or password_file:"], True),
    Case("password without username", "notify:\n" + EMAIL + "    password: ${SMTP_PASSWORD}\n", [
        "desired/main.yaml:11:3: notify.email: give username with password or password_file, or none of them"],
         True),
    Case("credentials without TLS", "notify:\n" + EMAIL + "    security: none\n    username: r\n"
         "    password: ${SMTP_PASSWORD}\n", [
        "desired/main.yaml:16:5: notify.email.username: credentials are never sent without TLS; use security: "
        "starttls or tls, or drop them",
        "desired/main.yaml:17:5: notify.email.password: credentials are never sent without TLS; use security: "
        "starttls or tls, or drop them"], True),
    Case("literal webhook url", f"notify:\n  webhook:\n    url: {HOOK}\n", [
        "desired/main.yaml:12:10: notify.webhook.url: literal secret: use ${ENV_VAR} or url_file:"], True),
    Case("webhook url and url_file", "notify:\n  webhook:\n    url: ${SLACK_WEBHOOK_URL}\n    url_file: x\n", [
        "desired/main.yaml:11:3: notify.webhook: give exactly one of: url, url_file",
        f"desired/main.yaml:13:15: notify.webhook.url_file: no such file {Path('desired/x')}; fix the path "
        "(relative paths start at the desired directory)"], True),
    Case("webhook over plain http", "notify:\n  webhook:\n    url: ${PLAIN_HOOK}\n", [
        "desired/main.yaml:12:10: notify.webhook.url: ${PLAIN_HOOK} is not an https:// URL (plain http only to "
        "127.0.0.1, localhost or ::1): the URL and the message are credentials and personal data"], False),
    Case("unset variable", "notify:\n  webhook:\n    url: ${NOT_SET_ANYWHERE}\n", [
        "desired/main.yaml:12:10: notify.webhook.url: environment variable NOT_SET_ANYWHERE is not set; "
        "export it, or change the reference"], False),
    Case("literal header value", "notify:\n  webhook:\n    url: ${SLACK_WEBHOOK_URL}\n    headers:\n"
         "      Authorization: Bearer abc\n", [
        "desired/main.yaml:14:22: notify.webhook.headers.Authorization: literal secret: use ${ENV_VAR}"], True),
    Case("bad header name", "notify:\n  webhook:\n    url: ${SLACK_WEBHOOK_URL}\n    headers:\n"
         "      'X Token': ${HOOK_AUTH}\n", [
        "desired/main.yaml:14:7: notify.webhook.headers: 'X Token' is not an HTTP header name"], True),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_problem_located_and_schema_agrees(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    directory = write(tmp_path / "desired", {"main.yaml": HEAD + case.notify})
    env = {**SECRETS, "PLAIN_HOOK": "http://hooks.example.com/services/T0/B0/plain-s3cr3t"}
    found = problems("desired", env)
    assert found == case.expected
    for secret in (SMTP_PASSWORD, HOOK, "plain-s3cr3t", "hunter2-literal", "Bearer abc"):
        assert all(secret not in p for p in found)
    assert bool(schema_errors(directory)) is case.schema


def test_notify_is_written_once_across_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "desired", {"main.yaml": HEAD, "a.yaml": "notify:\n" + EMAIL, "b.yaml": "notify:\n" + EMAIL})
    assert problems("desired", SECRETS) == [
        "desired/b.yaml:1:1: 'notify' is already defined at desired/a.yaml:1:1; write it once across the "
        "desired files"]
