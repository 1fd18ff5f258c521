"""How a notification travels: email over SMTP (STARTTLS or TLS, never credentials in clear) and a
Slack-compatible JSON webhook (one POST, https or loopback). Each returns a `Delivery`, never raises.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import urlsplit

import httpx

from reconcile.notify.message import Message
from reconcile.settings import EmailSettings, Secret, SmtpSecurity, WebhookSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of one channel: never raised, reported by the CLI without changing the exit code."""

    channel: str  # "email" | "webhook"
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"notification by {self.channel}: {'sent' if self.ok else 'FAILED'}: {self.detail}"


def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)  # verification is never off


def send_email(settings: EmailSettings, message: Message) -> Delivery:
    where = f"SMTP {settings.host}:{settings.port}"
    if settings.password is not None and settings.security is SmtpSecurity.NONE:
        return Delivery("email", False, f"{where}: refusing to send credentials without TLS; "
                        "set notify.email.security to starttls or tls")
    mail = EmailMessage()
    mail["Subject"] = " ".join(message.subject.split())  # no header injection through a name
    mail["From"] = settings.sender
    mail["To"] = ", ".join(settings.recipients)
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain="reconcile.invalid")
    mail.set_content(message.text())
    try:
        if settings.security is SmtpSecurity.TLS:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout,
                                                  context=_tls_context(settings.ca_file))
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        with smtp:
            smtp.ehlo()
            if settings.security is SmtpSecurity.STARTTLS:
                if not smtp.has_extn("starttls"):
                    return Delivery("email", False, f"{where}: the server does not offer STARTTLS; use "
                                    "security: tls (port 465) or another relay")
                smtp.starttls(context=_tls_context(settings.ca_file))
                smtp.ehlo()
            if settings.username is not None and settings.password is not None:
                if not smtp.has_extn("auth"):
                    return Delivery("email", False, f"{where}: the server offers no AUTH (over TLS); "
                                    "check notify.email.host, port and security")
                smtp.login(settings.username, settings.password.reveal())
            refused = smtp.send_message(mail)
    except smtplib.SMTPAuthenticationError as exc:
        return Delivery("email", False, f"{where} -> {exc.smtp_code}: authentication failed; check "
                        f"notify.email.username and {_ref(settings.password)}")
    except smtplib.SMTPResponseException as exc:
        return Delivery("email", False, f"{where} -> {exc.smtp_code}: {_decode(exc.smtp_error)}")
    except smtplib.SMTPRecipientsRefused as exc:
        return Delivery("email", False, f"{where}: every recipient was refused: {', '.join(exc.recipients)}")
    except (ssl.SSLError, ssl.CertificateError) as exc:
        return Delivery("email", False, f"{where}: TLS failed ({exc.__class__.__name__}: {exc}); "
                        "set notify.email.ca_file to the server's CA")
    except (OSError, smtplib.SMTPException) as exc:
        return Delivery("email", False, f"{where}: {exc.__class__.__name__}: {exc}; check host, port "
                        "and network")
    if refused:
        return Delivery("email", False, f"{where}: refused recipients: {', '.join(sorted(refused))}")
    log.debug("notification sent by email through %s to %d recipients", where, len(settings.recipients))
    return Delivery("email", True, f"sent to {len(settings.recipients)} recipients through {where}")


def _ref(secret: Secret | None) -> str:
    return secret.reference if secret is not None and secret.reference else "notify.email.password"


def _decode(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _slack_escape(value: str) -> str:
    # Slack mrkdwn: these three make links and <!channel>/<@user> mentions.
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _chunks(lines: Sequence[str], limit: int) -> list[str]:
    """Join lines into code blocks of at most `limit` characters (Slack: 3000 per section)."""
    out: list[str] = []
    current: list[str] = []
    size = 0
    for whole in lines:
        line = whole[: limit - 8]
        if current and size + len(line) + 1 > limit - 8:
            out.append("```" + "\n".join(current) + "```")
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        out.append("```" + "\n".join(current) + "```")
    return out


def slack_payload(message: Message) -> dict[str, Any]:
    """A Slack incoming-webhook body (`text` fallback + Block Kit blocks); generic receivers read `text`."""
    text = _slack_escape(message.subject)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": message.subject[:150]}},
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": _slack_escape("\n".join(message.summary))[:3000]}},
    ]
    listed = [*message.actions, *([f"... and {message.more} more"] if message.more else [])]
    for chunk in _chunks([_slack_escape(a) for a in listed], 3000)[:45]:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": chunk}})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn",
                                                    "text": _slack_escape(message.footer)[:3000]}]})
    return {"text": text, "blocks": blocks}


_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _safe_url(url: str) -> str:
    """The webhook URL without its path and query, which often hold the credential."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}{':' + str(parts.port) if parts.port else ''}/…"


def send_webhook(
    settings: WebhookSettings, message: Message, *, transport: httpx.BaseTransport | None = None
) -> Delivery:
    # One POST, no retry: a webhook post is not idempotent (a retry can post the message twice).
    where = f"POST {_safe_url(settings.url.reveal())}"
    parts = urlsplit(settings.url.reveal())
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        return Delivery("webhook", False, f"{where}: refusing to send over {parts.scheme or 'no scheme'}: "
                        "the URL and the message are credentials and personal data; use https://")
    headers = {name: value.reveal() for name, value in settings.headers}
    try:
        with httpx.Client(timeout=settings.timeout, verify=_tls_context(settings.ca_file),
                          transport=transport) as client:
            response = client.post(settings.url.reveal(), json=slack_payload(message), headers=headers)
    except httpx.HTTPError as exc:
        reason = str(exc).replace(settings.url.reveal(), _safe_url(settings.url.reveal()))
        return Delivery("webhook", False, f"{where}: {exc.__class__.__name__}: {reason}; check "
                        "notify.webhook.url and the network")
    if response.is_success:
        return Delivery("webhook", True, f"{where} -> {response.status_code}")
    body = " ".join(response.text.split())[:200]
    return Delivery("webhook", False, f"{where} -> {response.status_code}: {body}")
