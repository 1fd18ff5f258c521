"""The `notify:` section: its format (email over SMTP, a Slack-compatible webhook) and its typed value.

Credentials (SMTP password, webhook URL, webhook header values) are `${VAR}` / `*_file` only; a
webhook URL must be https, or http to a loopback address.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from reconcile.config.into import Into, check_into
from reconcile.config.into import build as build_into
from reconcile.config.nodes import At, Context, Fields, Invalid, ListOf, MapOf
from reconcile.config.records import Forbid, Record
from reconcile.config.references import FilePath, SecretFile, SecretRef
from reconcile.config.scalars import Boolean, Choice, Integer, Number, Text
from reconcile.settings import (
    EmailSettings,
    NotifySettings,
    NotifyWhen,
    SmtpSecurity,
    WebhookSettings,
)

EMAIL = r"[^@\s]+@[^@\s]+\.[^@\s]+"
HEADER_NAME = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
HOST = r"^[^\s/@]+$"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
DEFAULT_PORTS = {SmtpSecurity.STARTTLS: 587, SmtpSecurity.TLS: 465, SmtpSecurity.NONE: 25}


def _webhook_url(secret: Any, at: At, ctx: Context) -> Any:
    """Refuse a webhook URL that would travel in clear; the URL itself is never echoed (a credential)."""
    if isinstance(secret, Invalid) or not secret.reveal():  # empty: a variable validate does not need
        return secret
    parts = urlsplit(secret.reveal())
    if parts.scheme == "https" and parts.hostname:
        return secret
    if parts.scheme == "http" and parts.hostname in LOOPBACK:
        return secret
    return ctx.problem(at.loc, f"{at.path}: {secret.reference} is not an https:// URL (plain http only to "
                       "127.0.0.1, localhost or ::1): the URL and the message are credentials and personal data")


class WebhookUrl(SecretRef):
    def check(self, value: Any, at: At, ctx: Context) -> Any:
        return _webhook_url(super().check(value, at, ctx), at, ctx)


class WebhookUrlFile(SecretFile):
    def check(self, value: Any, at: At, ctx: Context) -> Any:
        return _webhook_url(super().check(value, at, ctx), at, ctx)


def _email(doc: str) -> Text:
    return Text(f"^{EMAIL}$", "invalid email '{value}'", expand=True, doc=doc)


EMAIL_CHANNEL = Record(
    {
        "host": Text(HOST, "'{value}' is not a host name (no scheme or path; the port goes under port:)",
                     expand=True, doc="SMTP server"),
        "port": Integer(minimum=1, maximum=65535,
                        doc="default: 587 with starttls, 465 with tls, 25 with none"),
        "security": Choice([str(s) for s in SmtpSecurity], default="starttls",
                           doc="starttls: upgrade before anything else; tls: TLS from the first byte; "
                           "none: a local relay, never with credentials"),
        "username": Text(expand=True, doc="SMTP login, with password or password_file"),
        "password": SecretRef("password", doc="SMTP password: a ${ENV_VAR} reference, never the value"),
        "password_file": SecretFile(doc="SMTP password: a file holding it (relative to the desired directory)"),
        "from": _email("sender address"),
        "to": ListOf(_email("recipient"), min_items=1, doc="recipients"),
        "ca_file": FilePath(doc="PEM bundle to verify the server with (default: system store)"),
        "timeout": Number(above=0, doc="seconds", default=30.0),
    },
    required=["host", "from", "to"],
    choices=[[], ["username", "password"], ["username", "password_file"]],
    choices_message="give username with password or password_file, or none of them",
    forbids=[Forbid("security", "none", ("username", "password", "password_file"),
                    "credentials are never sent without TLS; use security: starttls or tls, or drop them")],
    doc="send an email over SMTP",
    into=Into(EmailSettings, keys={"sender": ("from",), "recipients": ("to",),
                                   "password": ("password", "password_file")}),
)

WEBHOOK_CHANNEL = Record(
    {
        "url": WebhookUrl("url", doc="webhook URL (a credential): a ${ENV_VAR} reference; https, or http to "
                          "loopback"),
        "url_file": WebhookUrlFile(doc="webhook URL: a file holding it (relative to the desired directory)"),
        "headers": MapOf(Text(HEADER_NAME, "'{value}' is not an HTTP header name"),
                         SecretRef("header", doc="header value: a ${ENV_VAR} reference", file_key=None),
                         doc="extra request headers; every value is a secret written as ${VAR}"),
        "ca_file": FilePath(doc="PEM bundle to verify the server with (default: system store)"),
        "timeout": Number(above=0, doc="seconds", default=10.0),
    },
    choices=[["url"], ["url_file"]],
    choices_message="give exactly one of: url, url_file",
    doc="POST a Slack-compatible JSON message",
    into=Into(WebhookSettings, keys={"url": ("url", "url_file")}),
)

NOTIFY = Record(
    {
        "on": ListOf(Choice([str(w) for w in NotifyWhen]), min_items=1, default=["changes", "failure"],
                     doc="changes: a plan with actions or an apply that changed something; failure: failed "
                     "actions, residual drift, or a refused or failed run; always: every run"),
        "mask_emails": Boolean(doc="a***@example.com in messages", default=True),
        "max_actions": Integer(minimum=0, doc="actions (after apply: failures) listed in a message", default=50),
        "email": EMAIL_CHANNEL,
        "webhook": WEBHOOK_CHANNEL,
    },
    choices=[["email"], ["webhook"], ["email", "webhook"]],
    choices_message="give email, webhook or both",
    doc="notifications after `apply` (and `plan --notify`)",
    into=Into(NotifySettings),
)
check_into(NOTIFY)


def build(fields: Fields) -> NotifySettings:
    """The typed value of a checked `notify:` section."""
    settings = build_into(NOTIFY, NotifySettings, fields)
    email = settings.email
    if email is not None and "port" not in fields["email"].value:  # the port follows `security`
        settings = replace(settings, email=replace(email, port=DEFAULT_PORTS[email.security]))
    return settings
