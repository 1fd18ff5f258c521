"""Notifications after plan and apply: email over SMTP (STARTTLS) and a Slack-compatible JSON webhook.

A `Message` is built from an event (`message`); `notify()` delivers it on every configured channel
(`delivery`) and returns one `Delivery` per channel instead of raising, so a failed notification never
changes what was applied nor the exit status.
"""

from __future__ import annotations

import logging

import httpx

from reconcile.notify.delivery import Delivery, send_email, send_webhook, slack_payload
from reconcile.notify.message import ApplyCounts, Event, Message, Phase, When, build_message, should_send
from reconcile.settings import EmailSettings, NotifySettings, SmtpSecurity, WebhookSettings

__all__ = [
    "ApplyCounts", "Delivery", "EmailSettings", "Event", "Message", "NotifySettings", "Phase", "SmtpSecurity",
    "WebhookSettings", "When", "build_message", "notify", "send_email", "send_webhook", "should_send",
    "slack_payload",
]

log = logging.getLogger(__name__)


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
