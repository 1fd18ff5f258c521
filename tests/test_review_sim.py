"""Review finding in the simulator: a request whose client went away before sending its whole body
was handed to the API with the partial body, as if complete (a real server never dispatches it).

Found by tests/apply/test_crash_resume.py: a `kill -9` between a POST's headers and its body made the
simulator log a 400 "write" with no body, which the crash test counted as a write of its own.
"""

from __future__ import annotations

import asyncio
from typing import Any

from reconcile.sim.app import build_app


def call(app: Any, method: str, path: str, messages: list[dict[str, Any]], token: str) -> list[dict[str, Any]]:
    """One raw ASGI request whose `receive` yields `messages`, then waits (the connection is gone)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"sim"), (b"authorization", f"Bearer {token}".encode()),
                         (b"content-type", b"application/json"), (b"x-atlassian-token", b"no-check")],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8990)}
    queue = list(messages)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if queue:
            return queue.pop(0)
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(asyncio.wait_for(app(scope, receive, send), 5))
    return sent


def test_a_request_cut_before_its_body_ends_reaches_no_handler() -> None:
    app = build_app()  # the example world: grace is not in team-docs
    dc = app.state.ctx.dc
    grace = dc.by_username["grace"]
    path = "/rest/api/user/grace/group/team-docs"
    cut = [{"type": "http.request", "body": b'{"partial', "more_body": True}, {"type": "http.disconnect"}]
    call(app, "PUT", path, cut, "example-admin-token")
    assert grace not in dc.members["team-docs"], "the handler ran on half a request"
    entries = [e for e in app.state.ctx.log.entries if e.path == path]
    assert [(e.kind, e.note) for e in entries] == [("fault", "client disconnected before the body was complete")]
    # the same request, complete, is handled
    whole = [{"type": "http.request", "body": b"", "more_body": False}]
    sent = call(app, "PUT", path, whole, "example-admin-token")
    assert sent[0]["status"] == 204 and grace in dc.members["team-docs"]
