"""Notifications against real local servers: aiosmtpd (STARTTLS / TLS, AUTH) and an HTTP webhook receiver."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from reconcile.apply import ActionOutcome, ApplyResult
from reconcile.notify import (
    EmailSettings,
    Event,
    NotifySettings,
    Phase,
    SmtpSecurity,
    WebhookSettings,
    When,
    build_message,
    notify,
    slack_payload,
)
from reconcile.plan import Action, ActionKind, Subject
from reconcile.settings import Secret
from reconcile.targets.base import Outcome, Result
from tests.support.net import free_port
from tests.support.notify import PASSWORD, Inbox, Receiver, server_context
from tests.support.render import empty_plan, huge_plan, realistic_plan

HOOK_PATH = "/services/T000/B000/hook-s3cr3t-Path"


def _email(port: int, ca: Path | None, *, password: str = PASSWORD,
           security: SmtpSecurity = SmtpSecurity.STARTTLS) -> EmailSettings:
    return EmailSettings(host="127.0.0.1", port=port, sender="reconcile@example.com",
                         recipients=("iam-team@example.com", "audit@example.com"), security=security,
                         username="reconcile", password=Secret(password, reference="${SMTP_PASSWORD}"),
                         ca_file=str(ca) if ca else None, timeout=10)


def test_plan_email_over_starttls_with_login(smtp_starttls: tuple[Inbox, int], certificate: tuple[Path, Path],
                                            caplog: pytest.LogCaptureFixture) -> None:
    inbox, port = smtp_starttls
    caplog.set_level(logging.DEBUG)
    plan = realistic_plan()
    deliveries = notify(NotifySettings(email=_email(port, certificate[0])), Event.planned(plan))
    assert [d.ok for d in deliveries] == [True], deliveries
    assert inbox.logins == ["reconcile"]
    assert len(inbox.messages) == 1
    envelope = inbox.messages[0]
    assert envelope.rcpt_tos == ["iam-team@example.com", "audit@example.com"]
    message = inbox.parsed()
    assert message["Subject"] == "[reconcile] 10 changes planned for confluence-dc https://confluence.example.com"
    body = message.get_content()
    assert "Plan: 1 to enable, 3 to add, 1 to remove, 2 to disable, 3 to delete." in body
    assert "6 warnings: 1 missing_group, 1 missing_user, 2 protected, 1 readonly, 1 synced" in body
    assert "add a***@example.com (8a7f80a1) to team-docs" in body  # emails masked by default
    assert "alice@example.com" not in body
    assert f"--approve {plan.digest}" in body
    everything = body + str(deliveries) + caplog.text
    assert PASSWORD not in everything


def test_wrong_smtp_password_is_a_clear_failed_delivery(smtp_starttls: tuple[Inbox, int],
                                                        certificate: tuple[Path, Path]) -> None:
    inbox, port = smtp_starttls
    [delivery] = notify(NotifySettings(email=_email(port, certificate[0], password="wrong-Pw-123")),
                        Event.planned(realistic_plan()))
    assert not delivery.ok
    assert "-> 535: authentication failed" in delivery.detail
    assert "${SMTP_PASSWORD}" in delivery.detail and "wrong-Pw-123" not in delivery.detail
    assert inbox.messages == []


def test_an_untrusted_certificate_is_refused(smtp_starttls: tuple[Inbox, int]) -> None:
    inbox, port = smtp_starttls
    [delivery] = notify(NotifySettings(email=_email(port, None)), Event.planned(realistic_plan()))
    assert not delivery.ok
    assert "TLS failed" in delivery.detail and "ca_file" in delivery.detail
    assert inbox.logins == [] and inbox.messages == []


def test_a_server_without_starttls_gets_no_credentials() -> None:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, auth_require_tls=False,
                            authenticator=inbox.authenticate)
    controller.start()
    try:
        [delivery] = notify(NotifySettings(email=_email(port, None)), Event.planned(realistic_plan()))
    finally:
        controller.stop()
    assert not delivery.ok
    assert "does not offer STARTTLS" in delivery.detail
    assert inbox.logins == [] and inbox.messages == []


def test_credentials_are_never_sent_without_tls() -> None:
    port = free_port()  # nothing listens: a connection attempt would fail differently
    [delivery] = notify(NotifySettings(email=_email(port, None, security=SmtpSecurity.NONE)),
                        Event.planned(realistic_plan()))
    assert not delivery.ok
    assert "refusing to send credentials without TLS" in delivery.detail


def test_implicit_tls_on_connect(certificate: tuple[Path, Path]) -> None:
    inbox = Inbox()
    port = free_port()
    # aiosmtpd does not count implicit TLS as TLS for its AUTH rule; the client side is what is tested.
    controller = Controller(inbox, hostname="127.0.0.1", port=port, ssl_context=server_context(certificate),
                            authenticator=inbox.authenticate, auth_require_tls=False)
    controller.start()
    try:
        settings = _email(port, certificate[0], security=SmtpSecurity.TLS)
        [delivery] = notify(NotifySettings(email=settings), Event.planned(realistic_plan()))
    finally:
        controller.stop()
    assert delivery.ok, delivery
    assert len(inbox.messages) == 1


# ----------------------------------------------------------------------------------------- webhook


def _hook(port: int) -> WebhookSettings:
    return WebhookSettings(url=Secret(f"http://127.0.0.1:{port}{HOOK_PATH}", reference="${SLACK_WEBHOOK_URL}"),
                           headers=(("Authorization", Secret("Bearer hook-token-77", "${HOOK_TOKEN}")),))


def test_webhook_posts_a_slack_compatible_payload(receiver: tuple[Receiver, int]) -> None:
    state, port = receiver
    deliveries = notify(NotifySettings(webhook=_hook(port), mask_emails=False), Event.planned(realistic_plan()))
    assert [d.ok for d in deliveries] == [True]
    [(path, headers, payload)] = state.posts
    assert path == HOOK_PATH
    assert headers["Authorization"] == "Bearer hook-token-77"
    assert payload["text"] == "[reconcile] 10 changes planned for confluence-dc https://confluence.example.com"
    types = [b["type"] for b in payload["blocks"]]
    assert types[0] == "header" and types[-1] == "context" and "section" in types
    listing = "\n".join(b["text"]["text"] for b in payload["blocks"] if b["type"] == "section")
    assert "add alice@example.com (8a7f80a1) to team-docs" in listing
    assert all(len(b["text"]["text"]) <= 3000 for b in payload["blocks"] if b["type"] == "section")
    assert HOOK_PATH not in deliveries[0].detail and "hook-token-77" not in deliveries[0].detail


def test_webhook_failure_is_reported_without_the_secret_url(receiver: tuple[Receiver, int]) -> None:
    state, port = receiver
    state.status = 500
    [delivery] = notify(NotifySettings(webhook=_hook(port)), Event.planned(realistic_plan()))
    assert not delivery.ok
    assert delivery.detail == f"POST http://127.0.0.1:{port}/… -> 500: invalid_payload"
    assert "failed" in str(delivery).lower()


def test_webhook_to_a_closed_port_fails_cleanly() -> None:
    [delivery] = notify(NotifySettings(webhook=_hook(free_port())), Event.planned(realistic_plan()))
    assert not delivery.ok
    assert "ConnectError" in delivery.detail and HOOK_PATH not in delivery.detail


def test_webhook_refuses_plain_http_beyond_loopback() -> None:
    hook = WebhookSettings(url=Secret("http://hooks.example.com/services/T0/B0/s3cr3t", "${HOOK}"))
    [delivery] = notify(NotifySettings(webhook=hook), Event.planned(realistic_plan()))
    assert not delivery.ok
    assert delivery.detail.startswith("POST http://hooks.example.com/…: refusing to send over http")
    assert "s3cr3t" not in delivery.detail


def test_nothing_is_sent_for_a_plan_without_changes_unless_always(receiver: tuple[Receiver, int]) -> None:
    state, port = receiver
    assert notify(NotifySettings(webhook=_hook(port)), Event.planned(empty_plan())) == ()
    assert state.posts == []
    [delivery] = notify(NotifySettings(webhook=_hook(port), on=frozenset({When.ALWAYS})),
                        Event.planned(empty_plan()))
    assert delivery.ok
    assert state.posts[0][2]["text"] == "[reconcile] no changes for confluence-dc https://confluence.example.com"


# -------------------------------------------------------------------------------------- messages


def test_apply_failure_message_lists_the_failed_actions() -> None:
    plan = realistic_plan()
    outcomes = tuple(
        ActionOutcome(a, Outcome(Result.FAILED, "PUT /rest/api/user/x/group/ldap-staff -> 403: read-only")
                     if a.kind is ActionKind.ADD_MEMBER else Outcome(Result.DONE), 0.01)
        for a in plan.actions[:6]
    )
    result = ApplyResult(digest=plan.digest, outcomes=outcomes, not_run=plan.actions[6:])
    event = Event.from_apply(plan, result)
    assert event.failed and event.changed
    settings = NotifySettings(on=frozenset({When.FAILURE}))
    message = build_message(event, mask_emails=True)
    assert message.subject.startswith("[reconcile] FAILED: 3 changed, 3 failed on confluence-dc")
    assert "Applied: 3 done, 0 already in effect, 3 failed, 4 left for a later apply" in message.text()
    assert "add a***@example.com (8a7f80a1) to team-docs: PUT /rest/api/user/x/group/ldap-staff -> 403" \
        in message.text()
    assert notify(settings, Event.planned(plan)) == ()  # on: [failure] ignores a plan


def test_a_huge_plan_makes_a_bounded_message() -> None:
    message = build_message(Event.planned(huge_plan()), max_actions=50)
    assert len(message.actions) == 50 and message.more == 99_950
    payload = slack_payload(message)
    assert len(payload["blocks"]) <= 50
    assert len(json.dumps(payload)) < 40_000


def test_names_cannot_inject_headers_or_slack_mentions() -> None:
    plan = realistic_plan()
    evil = Action(ActionKind.DISABLE, Subject("<!channel> x\r\nBcc: all@example.com", "r9"))
    hostile = type(plan)(target={"type": "confluence-dc", "url": "https://c.example.com\r\nX: y"},
                         desired_digest=plan.desired_digest, actual_fingerprint=plan.actual_fingerprint,
                         actions=(evil,))
    message = build_message(Event.planned(hostile))
    assert "\r" not in message.subject and "\n" not in message.subject
    payload = json.dumps(slack_payload(message))
    assert "<!channel>" not in payload and "&lt;!channel&gt;" in payload


def test_a_refused_run_names_the_reason_masked_and_lists_what_was_refused() -> None:
    plan = realistic_plan()
    reason = ("refused: the plan is stale, nothing was changed:\n"
              "  action no longer needed: enable dave@example.com (8a7f80a4)\n"
              "  → run `reconcile plan` again, review it, and approve the new digest")
    event = Event.stopped(Phase.APPLY, reason, refused=True, plan=plan)
    assert event.failed and not event.changed
    message = build_message(event, max_actions=3)
    assert message.subject == ("[reconcile] apply REFUSED for confluence-dc https://confluence.example.com: "
                               "refused: the plan is stale, nothing was changed:")
    text = message.text()
    assert "action no longer needed: enable d***@example.com (8a7f80a4)" in text
    assert "dave@example.com" not in text
    assert len(message.actions) == 3 and message.more == len(plan.actions) - 3
    assert message.footer == "Nothing was changed."
    assert notify(NotifySettings(on=frozenset({When.CHANGES})), event) == ()  # only `failure`/`always` send it


def test_an_error_before_any_plan_still_names_the_target() -> None:
    event = Event.stopped(Phase.PLAN, "GET http://ldap.example.com -> timeout", refused=False,
                          target={"type": "atlassian-cloud", "url": "https://api.atlassian.com", "org": "o-1"})
    message = build_message(event)
    assert message.subject == ("[reconcile] plan FAILED for atlassian-cloud https://api.atlassian.com org o-1: "
                               "GET http://ldap.example.com -> timeout")
    assert message.actions == () and message.failed
