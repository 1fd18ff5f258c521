"""Notifications after plan and apply: email over SMTP (STARTTLS) and a Slack-compatible JSON webhook.

A `Message` is built from a plan (and an apply's result); `notify()` delivers it and returns one
`Delivery` per channel instead of raising, so a failed notification never changes apply's exit status.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from reconcile.plan import Plan
from reconcile.render import clean, mask_email, plan_sentence
from reconcile.settings import (
    EmailSettings,
    NotifySettings,
    NotifyWhen,
    Secret,
    SmtpSecurity,
    WebhookSettings,
)
from reconcile.targets.base import Result

if TYPE_CHECKING:
    from reconcile.apply import ApplyResult

__all__ = [
    "ApplyCounts", "Delivery", "EmailSettings", "Event", "Message", "NotifySettings", "Phase", "SmtpSecurity",
    "WebhookSettings", "When", "build_message", "notify", "send_email", "send_webhook", "should_send",
    "slack_payload",
]

log = logging.getLogger(__name__)


class Phase(StrEnum):
    PLAN = "plan"
    APPLY = "apply"


When = NotifyWhen  # the name notify.py has always used


@dataclass(frozen=True, slots=True)
class ApplyCounts:
    done: int = 0
    already: int = 0
    failed: int = 0
    not_run: int = 0
    drift: int = 0
    failures: tuple[str, ...] = ()  # one sentence per failed action


@dataclass(frozen=True, slots=True)
class Event:
    """What happened: a plan was computed, a plan was applied (with its counts), or a run stopped.

    A run that stopped (`error` set) was refused for safety (`refused`: limits, empty source, stale
    plan, approval mismatch; nothing changed) or failed with an error; `plan` is there when known.
    """

    phase: Phase
    plan: Plan | None
    applied: ApplyCounts | None = None
    target: Mapping[str, str] = field(default_factory=dict)  # when there is no plan to take it from
    error: str | None = None
    refused: bool = False

    @staticmethod
    def planned(plan: Plan) -> Event:
        return Event(Phase.PLAN, plan)

    @staticmethod
    def from_apply(plan: Plan, result: ApplyResult) -> Event:
        failures = tuple(f"{r.action.describe()}: {r.outcome.message}" for r in result.failures)
        counts = ApplyCounts(
            done=result.count(Result.DONE), already=result.count(Result.ALREADY),
            failed=len(result.failures), not_run=len(result.not_run), drift=len(result.drift),
            failures=failures,
        )
        return Event(Phase.APPLY, plan, counts)

    @staticmethod
    def nothing_to_apply(plan: Plan) -> Event:
        """An apply that found nothing to do (no changes, or every action already done)."""
        return Event(Phase.APPLY, plan, ApplyCounts())

    @staticmethod
    def stopped(phase: Phase, error: str, *, refused: bool, plan: Plan | None = None,
                target: Mapping[str, str] | None = None) -> Event:
        return Event(phase, plan, target=dict(target or {}), error=error, refused=refused)

    @property
    def failed(self) -> bool:
        if self.error is not None:
            return True
        return self.applied is not None and (self.applied.failed > 0 or self.applied.drift > 0)

    @property
    def changed(self) -> bool:
        if self.applied is not None:
            return self.applied.done > 0
        return self.error is None and self.plan is not None and not self.plan.empty


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of one channel: never raised, reported by the CLI without changing the exit code."""

    channel: str  # "email" | "webhook"
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"notification by {self.channel}: {'sent' if self.ok else 'FAILED'}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Message:
    subject: str
    summary: tuple[str, ...]
    actions: tuple[str, ...]
    more: int  # actions not listed
    footer: str
    failed: bool = False

    def text(self) -> str:
        lines = [*self.summary, ""]
        if self.actions:
            lines += ["Actions:", *(f"  {a}" for a in self.actions)]
            if self.more:
                lines.append(f"  ... and {self.more} more")
            lines.append("")
        return "\n".join([*lines, self.footer]) + "\n"


def should_send(settings: NotifySettings, event: Event) -> bool:
    on = settings.on
    return (When.ALWAYS in on or (When.CHANGES in on and event.changed)
            or (When.FAILURE in on and event.failed))


def build_message(event: Event, *, mask_emails: bool = True, max_actions: int = 50) -> Message:
    """The words of a notification; emails masked unless told otherwise, names cleaned of control chars."""

    def fmt(value: str) -> str:
        value = clean(value)
        return mask_email(value) if mask_emails else value

    plan = event.plan
    where = plan.target if plan is not None else event.target
    target = fmt(" ".join(v for k in ("type", "url", "org") if (v := where.get(k)))) or "an unknown target"
    summary = [f"Target: {target}"]
    if plan is not None:
        summary.append(plan_sentence(plan))
        warnings: dict[str, int] = {}
        for w in plan.warnings:
            warnings[str(w.kind)] = warnings.get(str(w.kind), 0) + 1
        if warnings:
            summary.append(f"{len(plan.warnings)} warnings: "
                           + ", ".join(f"{n} {k}" for k, n in sorted(warnings.items())))
    if event.error is not None:
        return _stopped(event, target, summary, fmt, max_actions)
    assert plan is not None  # only a stopped run may lack a plan
    digest = plan.digest
    shown = plan.actions[:max_actions]
    applied = event.applied
    if applied is None:
        n = len(plan.actions)
        subject = (f"[reconcile] {n} change{'s' if n != 1 else ''} planned for {target}" if n
                   else f"[reconcile] no changes for {target}")
        footer = (f"Plan {digest}. Apply it with: reconcile apply PLAN_FILE --approve {digest}" if n
                  else f"Plan {digest}.")
        return Message(subject, tuple(summary), tuple(fmt(a.describe()) for a in shown),
                       len(plan.actions) - len(shown), footer)
    state = "FAILED" if event.failed else "applied"
    subject = f"[reconcile] {state}: {applied.done} changed, {applied.failed} failed on {target}"
    summary.insert(1, f"Applied: {applied.done} done, {applied.already} already in effect, "
                      f"{applied.failed} failed, {applied.not_run} left for a later apply, "
                      f"{applied.drift} residual drift.")
    failures = tuple(fmt(f) for f in applied.failures[:max_actions])
    return Message(subject, tuple(summary), failures, len(applied.failures) - len(failures),
                   f"Plan {digest}. A later apply of the same plan retries only what is not done.",
                   failed=event.failed)


def _stopped(event: Event, target: str, summary: list[str], fmt: Callable[[str], str],
             max_actions: int) -> Message:
    """A refused or failed run: the reason (each line cleaned and masked), and the plan's actions if any."""
    assert event.error is not None
    state = "REFUSED" if event.refused else "FAILED"
    reason = [fmt(line) for line in event.error.splitlines() if line.strip()] or ["(no message)"]
    subject = f"[reconcile] {event.phase} {state} for {target}: {reason[0]}"[:200]
    listed = reason[:max(max_actions, 1)]
    more_reason = len(reason) - len(listed)
    summary = [*summary, "Reason:", *(f"  {line}" for line in listed)]
    if more_reason:
        summary.append(f"  ... and {more_reason} more lines")
    actions = event.plan.actions if event.plan is not None else ()
    shown = actions[:max_actions]
    if event.refused:
        footer = "Nothing was changed."
    elif event.phase is Phase.APPLY:
        footer = "A later apply of the same plan resumes where this one stopped."
    else:
        footer = "Nothing was changed."
    return Message(subject, tuple(summary), tuple(fmt(a.describe()) for a in shown), len(actions) - len(shown),
                   footer, failed=True)


# ------------------------------------------------------------------------------------ delivery


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


def notify(
    settings: NotifySettings, event: Event, *, transport: httpx.BaseTransport | None = None
) -> tuple[Delivery, ...]:
    """Send `event` on every configured channel that `settings.on` selects; never raises."""
    if not should_send(settings, event):
        return ()
    message = build_message(event, mask_emails=settings.mask_emails, max_actions=settings.max_actions)
    out: list[Delivery] = []
    if settings.email is not None:
        out.append(send_email(settings.email, message))
    if settings.webhook is not None:
        out.append(send_webhook(settings.webhook, message, transport=transport))
    for delivery in out:
        if not delivery.ok:
            log.warning("%s", delivery)
    return tuple(out)
