"""Notifications through the real CLI: a real SMTP server (aiosmtpd, STARTTLS + AUTH) and a local
webhook receiver. `apply` notifies whenever `notify:` is configured, `plan` only with `--notify`;
a failed notification is reported on stderr and never changes what was applied nor the exit code.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.apply import read_world, status_of, world, write_world
from tests.support.cli import Cli, make_cli
from tests.support.net import free_port
from tests.support.notify import PASSWORD, Inbox, Receiver

HOOK_PATH = "/services/T000/B000/cli-hook-s3cr3t"
NOTIFY = """\
notify:
  on: [{on}]
  email:
    host: 127.0.0.1
    port: {smtp_port}
    username: reconcile
    password: ${{SMTP_PASSWORD}}
    from: reconcile@example.com
    to: [iam-team@example.com]
    ca_file: {ca}
    timeout: 10
  webhook:
    url: ${{HOOK_URL}}
    timeout: 10
"""


def notifying_cli(tmp: Path, smtp_port: int, hook_port: int, ca: Path, on: str = "changes, failure") -> Cli:
    cli = make_cli(tmp, env={"SMTP_PASSWORD": PASSWORD, "HOOK_URL": f"http://127.0.0.1:{hook_port}{HOOK_PATH}"})
    (cli.desired / "notify.yaml").write_text(NOTIFY.format(on=on, smtp_port=smtp_port, ca=ca))
    return cli


@pytest.fixture
def cli(tmp_path: Path, smtp_starttls: tuple[Inbox, int], receiver: tuple[Receiver, int],
        certificate: tuple[Path, Path]) -> Cli:
    return notifying_cli(tmp_path, smtp_starttls[1], receiver[1], certificate[0])


def no_secret(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text and HOOK_PATH not in text


def test_apply_notifies_by_email_and_webhook(cli: Cli, smtp_starttls: tuple[Inbox, int],
                                             receiver: tuple[Receiver, int]) -> None:
    inbox, _ = smtp_starttls
    hook, _ = receiver
    path, plan = cli.plan_file()
    assert inbox.messages == [] and hook.posts == []  # plan without --notify sends nothing

    result = cli("apply", str(path), "--approve", plan.digest, "--report", str(cli.tmp / "report.json"))

    assert result.exit_code == 0, result.output
    assert "notification by email: sent" in result.stderr and "notification by webhook: sent" in result.stderr
    [envelope] = inbox.messages
    assert envelope.rcpt_tos == ["iam-team@example.com"] and inbox.logins == ["reconcile"]
    mail = inbox.parsed()
    assert mail["Subject"] == f"[reconcile] applied: 5 changed, 0 failed on memory {cli.state}"
    body = mail.get_content()
    assert "Applied: 5 done, 0 already in effect, 0 failed, 0 left for a later apply, 0 residual drift." in body
    [(path_seen, _, payload)] = hook.posts
    assert path_seen == HOOK_PATH and payload["text"] == mail["Subject"]
    assert [(n["channel"], n["ok"]) for n in cli.report()["notifications"]] == [("email", True), ("webhook", True)]
    no_secret(result.stdout, result.stderr, body, (cli.tmp / "report.json").read_text())


def test_plan_notifies_only_with_the_flag(cli: Cli, smtp_starttls: tuple[Inbox, int],
                                          receiver: tuple[Receiver, int]) -> None:
    inbox, _ = smtp_starttls
    hook, _ = receiver
    result = cli("plan", "--notify", "--detailed-exitcode")
    assert result.exit_code == 3, result.output
    assert inbox.parsed()["Subject"] == f"[reconcile] 5 changes planned for memory {cli.state}"
    body = inbox.parsed().get_content()
    assert "enable e***@example.com (u-erin)" in body  # emails masked by default
    assert "erin@example.com" not in body
    assert len(hook.posts) == 1


def test_validate_names_the_channels(cli: Cli, smtp_starttls: tuple[Inbox, int]) -> None:
    result = cli("validate")
    assert result.exit_code == 0, result.output
    assert "notify: email, webhook" in result.stdout
    assert smtp_starttls[0].messages == []  # validate makes no network call


def test_plan_notify_without_a_notify_section_is_a_usage_error(tmp_path: Path) -> None:
    cli = make_cli(tmp_path)
    result = cli("plan", "--notify")
    assert result.exit_code == 2
    assert "no `notify:` section" in result.stderr


def test_a_failing_channel_changes_neither_the_apply_nor_the_exit_code(
        cli: Cli, smtp_starttls: tuple[Inbox, int], receiver: tuple[Receiver, int]) -> None:
    inbox, _ = smtp_starttls
    hook, _ = receiver
    hook.status = 500
    path, plan = cli.plan_file()
    result = cli("apply", str(path), "--approve", plan.digest, "--report", str(cli.tmp / "report.json"))
    assert result.exit_code == 0, result.output
    assert "notification by webhook: FAILED: POST http://127.0.0.1:" in result.stderr
    assert "-> 500: invalid_payload" in result.stderr
    assert len(inbox.messages) == 1  # the other channel still delivered
    assert status_of(read_world(cli.state), "u-erin") == "active"
    report = cli.report()
    assert report["status"] == "applied" and report["exit_code"] == 0
    assert [(n["channel"], n["ok"]) for n in report["notifications"]] == [("email", True), ("webhook", False)]
    no_secret(result.stderr, (cli.tmp / "report.json").read_text())


def test_unreachable_servers_do_not_change_the_exit_code(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    cli = notifying_cli(tmp_path, free_port(), free_port(), certificate[0])
    result = cli("apply", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert "notification by email: FAILED" in result.stderr and "notification by webhook: FAILED" in result.stderr
    assert "5 done" in result.stdout
    no_secret(result.stdout, result.stderr)


def test_a_refused_apply_sends_a_failure_notification(cli: Cli, smtp_starttls: tuple[Inbox, int],
                                                     receiver: tuple[Receiver, int]) -> None:
    inbox, _ = smtp_starttls
    hook, _ = receiver
    (cli.desired / "policy.yaml").write_text("policy:\n  limits:\n    add_member: 1\n")
    before = cli.state.read_text()
    result = cli("apply", "--auto-approve")
    assert result.exit_code == 4
    assert cli.state.read_text() == before
    subject = inbox.parsed()["Subject"]
    assert subject.startswith(f"[reconcile] apply REFUSED for memory {cli.state}: refused: the plan exceeds")
    body = inbox.parsed().get_content()
    assert "add_member: 2 exceeds the limit of 1" in body and "Nothing was changed." in body
    assert hook.posts[0][2]["text"].startswith("[reconcile] apply REFUSED")
    # the error comes first on stderr, then what became of the notifications
    assert result.stderr.index("Error: refused") < result.stderr.index("notification by email: sent")


def test_failed_actions_notify_with_each_failure(cli: Cli, smtp_starttls: tuple[Inbox, int]) -> None:
    inbox, _ = smtp_starttls
    broken = world()
    broken["groups"][2]["readonly"] = True  # team-eng refuses writes
    write_world(cli.state, broken)
    result = cli("apply", "--auto-approve")
    assert result.exit_code == 1
    mail = inbox.parsed()
    assert mail["Subject"] == f"[reconcile] FAILED: 3 changed, 1 failed on memory {cli.state}"  # dave disabled too
    assert "add a***@example.com (u-alice) to team-eng: " in mail.get_content()


def test_on_failure_only_stays_quiet_after_a_good_apply(tmp_path: Path, smtp_starttls: tuple[Inbox, int],
                                                        receiver: tuple[Receiver, int],
                                                        certificate: tuple[Path, Path]) -> None:
    cli = notifying_cli(tmp_path, smtp_starttls[1], receiver[1], certificate[0], on="failure")
    result = cli("apply", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert smtp_starttls[0].messages == [] and receiver[0].posts == []
    assert "notification" not in result.stderr


def test_dry_run_and_nothing_to_do(cli: Cli, smtp_starttls: tuple[Inbox, int]) -> None:
    inbox, _ = smtp_starttls
    path, _ = cli.plan_file()
    assert cli("apply", str(path), "--dry-run").exit_code == 0
    assert inbox.messages == []  # a dry run changes nothing and tells nobody
    assert cli("apply", "--auto-approve").exit_code == 0
    assert len(inbox.messages) == 1
    assert cli("apply", "--auto-approve").exit_code == 0  # converged: no change, `on: [changes, failure]`
    assert len(inbox.messages) == 1
