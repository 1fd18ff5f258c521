"""Real local servers for the notification tests: aiosmtpd (STARTTLS / TLS, AUTH) and an HTTP webhook
receiver, with a self-signed certificate made by openssl.

Import the fixtures explicitly: `from fixtures_notify import certificate_fixture, smtp_fixture,
receiver_fixture  # noqa: F401` provides `certificate`, `smtp_starttls` and `receiver`.
"""

from __future__ import annotations

import email
import email.policy
import json
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.net import free_port

PASSWORD = "smtp-pa55-Zq8x"  # the SMTP server's password: never in a message, a delivery detail or a log
LOGIN = "reconcile"


@pytest.fixture(scope="module", name="certificate")
def certificate_fixture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost (openssl, as on every Debian machine)."""
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
        check=True, capture_output=True,
    )
    return d / "cert.pem", d / "key.pem"


@dataclass
class Inbox:
    messages: list[Envelope] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope)
        return "250 OK"

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                     auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        self.logins.append(auth_data.login.decode())
        ok = auth_data.login == LOGIN.encode() and auth_data.password == PASSWORD.encode()
        return AuthResult(success=ok, handled=False)

    def parsed(self, i: int = 0) -> email.message.EmailMessage:
        content = self.messages[i].original_content
        assert content is not None
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        return message


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(certificate[0]), str(certificate[1]))
    return ctx


@pytest.fixture(name="smtp_starttls")
def smtp_fixture(certificate: tuple[Path, Path]) -> Iterator[tuple[Inbox, int]]:
    """An SMTP server on a loopback port that requires STARTTLS before AUTH and mail."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=server_context(certificate),
                            require_starttls=True, auth_require_tls=True, authenticator=inbox.authenticate)
    controller.start()
    yield inbox, port
    controller.stop()


@dataclass
class Receiver:
    status: int = 200
    posts: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)


@pytest.fixture(name="receiver")
def receiver_fixture() -> Iterator[tuple[Receiver, int]]:
    """A webhook receiver on a loopback port: records every POST, answers `status`."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            state.posts.append((self.path, dict(self.headers), json.loads(self.rfile.read(length))))
            self.send_response(state.status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if state.status < 400 else b"invalid_payload")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # polled often: shutdown() waits for the next poll (0.5 s by default, after every test)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield state, int(server.server_address[1])
    server.shutdown()
    server.server_close()
