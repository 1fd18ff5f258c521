"""The Confluence DC admin UI pages the tool needs: websudo, the unsynced-users list and its delete.

`POST /doauthenticate.action` (password) starts a websudo session (JSESSIONID cookie, 10-minute
rolling). `GET /admin/users/showallunsyncedusers.action` lists unsynced entries 100 per page with
an `atl_token`; `POST /admin/users/removeunsynceduser-confirm.action` deletes one by userKey.
"""

from __future__ import annotations

from html import escape
from urllib.parse import parse_qs, quote, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from reconcile.sim.confluence_dc.common import WEBSUDO_SECONDS, Caller, Session, Unauthorized, identify, sessions
from reconcile.sim.confluence_dc.longtask import queue
from reconcile.sim.context import SimContext

UNSYNCED_PAGE = "/admin/users/showallunsyncedusers.action"
PAGE_SIZE = 100


async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (what browsers and the tool send to .action pages)."""
    fields = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in fields.items()}


def _html(title: str, body: str, status: int = 200, token: str | None = None) -> HTMLResponse:
    meta = f'<meta name="ajs-atl-token" content="{escape(token)}">' if token else ""
    return HTMLResponse(
        f"<!DOCTYPE html><html><head><title>{escape(title)} - Confluence</title>{meta}</head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>",
        status_code=status,
    )


def routes(ctx: SimContext) -> list[BaseRoute]:
    world = ctx.dc
    store = sessions(ctx)
    deletions = queue(ctx)

    def session_for(caller: Caller, response_cookies: list[tuple[str, str]]) -> Session:
        """The caller's session; header-authenticated callers get a new one (cookie set)."""
        assert caller.user is not None
        if caller.session_id is not None:
            return store.by_id[caller.session_id]
        sid, session = store.create(caller.user.key)
        response_cookies.append(("JSESSIONID", sid))
        return session

    def finish(response: Response, cookies: list[tuple[str, str]]) -> Response:
        for name, value in cookies:
            response.set_cookie(name, value, path="/", httponly=True)
        return response

    def admin_gate(request: Request, destination: str) -> tuple[Caller, Session, list[tuple[str, str]]] | Response:
        """Logged in, administrator, websudo (when enabled); else the page the real server shows."""
        ctx.tick()
        try:
            caller = identify(request, ctx)
        except Unauthorized:
            return _html("Log in", "<p class='error'>Sorry, your username and password are incorrect.</p>", 401)
        if caller.user is None:
            return RedirectResponse(f"/login.action?os_destination={quote(destination)}", status_code=302)
        if not world.is_admin(caller.user.key):
            return _html("Not permitted", "<p class='error'>You are not permitted to perform this operation.</p>",
                         403)
        cookies: list[tuple[str, str]] = []
        session = session_for(caller, cookies)
        now = ctx.clock()
        if world.websudo:
            if session.websudo_until <= now:
                target = f"/authenticate.action?{urlencode({'destination': destination})}"
                return finish(RedirectResponse(target, status_code=302), cookies)
            session.websudo_until = now + WEBSUDO_SECONDS  # rolling timeout
        return caller, session, cookies

    async def authenticate_form(request: Request) -> Response:
        destination = request.query_params.get("destination", "/")
        return _html(
            "Administrator Access",
            "<form method='post' action='/doauthenticate.action'>"
            "<input type='password' name='password'>"
            f"<input type='hidden' name='destination' value='{escape(destination)}'>"
            "<input type='submit' name='authenticate' value='Confirm'></form>",
        )

    async def do_authenticate(request: Request) -> Response:
        try:
            caller = identify(request, ctx)
        except Unauthorized:
            return _html("Log in", "<p class='error'>Sorry, your username and password are incorrect.</p>", 401)
        if caller.user is None:
            return RedirectResponse("/login.action", status_code=302)
        form = await _form(request)
        password = str(form.get("password", ""))
        destination = str(form.get("destination", "/")) or "/"
        if not destination.startswith("/"):
            destination = "/"
        cookies: list[tuple[str, str]] = []
        session = session_for(caller, cookies)
        if caller.user.password is None or password != caller.user.password:
            return finish(_html("Administrator Access",
                                "<div class='aui-message error'>The password you entered is incorrect.</div>"),
                          cookies)
        session.websudo_until = ctx.clock() + WEBSUDO_SECONDS
        return finish(RedirectResponse(destination, status_code=302), cookies)

    async def unsynced_page(request: Request) -> Response:
        gate = admin_gate(request, str(request.url.path))
        if isinstance(gate, Response):
            return gate
        _, session, cookies = gate
        try:
            start = max(0, int(request.query_params.get("startIndex", "0")))
        except ValueError:
            start = 0
        entries = world.unsynced_list()
        rows = "".join(
            "<tr>"
            f"<td class='username'><a href='/admin/users/viewuser.action?userKey={u.key}'>{escape(u.username)}</a></td>"
            f"<td class='fullname'>{escape(u.display_name)}</td>"
            f"<td class='directory'>{escape(u.directory)}</td>"
            f"<td class='operations'><a class='remove-unsynced-user' "
            f"href='/admin/users/removeunsynceduser.action?userKey={u.key}'>Delete</a></td>"
            "</tr>"
            for u in entries[start:start + PAGE_SIZE]
        )
        pager = ""
        if start + PAGE_SIZE < len(entries):
            pager = (f"<div class='pagination'><a class='pagination-next' "
                     f"href='{UNSYNCED_PAGE}?startIndex={start + PAGE_SIZE}'>Next</a></div>")
        body = (
            f"<form id='unsynced-users'><input type='hidden' name='atl_token' value='{session.atl_token}'></form>"
            f"<p class='total'>{len(entries)} unsynced users</p>"
            "<table id='browse-user-table' class='aui'><thead><tr><th>Username</th><th>Full name</th>"
            f"<th>Directory</th><th>Operations</th></tr></thead><tbody>{rows}</tbody></table>{pager}"
        )
        return finish(_html("Unsynced from Directory", body, token=session.atl_token), cookies)

    async def remove_unsynced(request: Request) -> Response:
        gate = admin_gate(request, UNSYNCED_PAGE)
        if isinstance(gate, Response):
            return gate
        _, session, cookies = gate
        form = await _form(request)
        token_ok = str(form.get("atl_token", "")) == session.atl_token or (
            request.headers.get("x-atlassian-token", "").lower() == "no-check")
        if not token_ok:
            return finish(_html("XSRF Security Token Missing",
                                "<p class='error'>Your session has expired or the atl_token is missing.</p>", 403),
                          cookies)
        key = str(form.get("userKey", ""))
        user = world.users.get(key)
        if user is None:
            reason = "user.already.deleted" if key in world.deleted else "user.doesnt.exist"
            return finish(_html("Error", f"<div class='aui-message error' data-error='{reason}'>"
                                         f"The user {escape(key)} does not exist.</div>", 404), cookies)
        if not user.unsynced:
            return finish(_html("Error", "<div class='aui-message error' data-error='user.not.unsynced'>"
                                         f"The user {escape(user.username)} is not unsynced.</div>", 400), cookies)
        task = deletions.submit(user, method="POST", path=str(request.url.path))
        body = (f"<div id='task' data-task-id='{task.id}'>Deleting {escape(user.username)}</div>"
                f"<input type='hidden' name='taskId' value='{task.id}'>"
                f"<a href='/rest/api/longtask/{task.id}'>progress</a>")
        return finish(_html("Delete User", body), cookies)

    return [
        Route("/authenticate.action", authenticate_form, methods=["GET"]),
        Route("/doauthenticate.action", do_authenticate, methods=["POST"]),
        Route(UNSYNCED_PAGE, unsynced_page, methods=["GET"]),
        Route("/admin/users/removeunsynceduser-confirm.action", remove_unsynced, methods=["POST"]),
    ]
