"""The unsynced-users admin pages: websudo, the atl_token, deleting entries by userKey."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.sim import ADMIN_PASSWORD, ALICE_TOKEN, Sim, make_sim

pytestmark = pytest.mark.anyio

PAGE = "/admin/users/showallunsyncedusers.action"
REMOVE = "/admin/users/removeunsynceduser-confirm.action"


def page_keys(html: str) -> list[str]:
    return re.findall(r"viewuser\.action\?userKey=([0-9a-f]{32})", html)


def atl_token(html: str) -> str:
    found = re.search(r"name='atl_token' value='([0-9a-f]+)'", html)
    assert found, html
    return found.group(1)


async def websudo(client: httpx.AsyncClient, password: str = ADMIN_PASSWORD) -> httpx.Response:
    return await client.post("/doauthenticate.action",
                             data={"password": password, "authenticate": "Confirm", "destination": PAGE})


async def test_the_page_needs_a_websudo_session() -> None:
    sim = make_sim()
    async with sim.client() as client:
        first = await client.get(PAGE)
        assert first.status_code == 302
        assert first.headers["location"] == "/authenticate.action?destination=" + PAGE.replace("/", "%2F")
        wrong = await websudo(client, "not-the-password")
        assert wrong.status_code == 200 and "incorrect" in wrong.text
        assert (await client.get(PAGE)).status_code == 302
        confirmed = await websudo(client)
        assert (confirmed.status_code, confirmed.headers["location"]) == (302, PAGE)
        assert "JSESSIONID" in client.cookies
        listed = await client.get(PAGE)
    assert listed.status_code == 200
    assert page_keys(listed.text) == ["00000000000000000000000000000a01", "00000000000000000000000000000a02"]


async def test_websudo_expires_after_ten_idle_minutes() -> None:
    sim = make_sim()
    async with sim.client() as client:
        await websudo(client)
        sim.clock.advance(599)
        assert (await client.get(PAGE)).status_code == 200  # rolling: this renews it
        sim.clock.advance(599)
        assert (await client.get(PAGE)).status_code == 200
        sim.clock.advance(601)
        assert (await client.get(PAGE)).status_code == 302


async def test_non_admins_and_anonymous_callers_are_turned_away() -> None:
    sim = make_sim()
    async with sim.client(ALICE_TOKEN) as alice, sim.client("bogus") as anonymous:
        assert (await alice.get(PAGE)).status_code == 403
        redirected = await anonymous.get(PAGE)
        assert redirected.status_code == 302 and redirected.headers["location"].startswith("/login.action")


async def test_delete_an_unsynced_entry_by_user_key() -> None:
    sim = make_sim()
    async with sim.client() as client:
        await websudo(client)
        html = (await client.get(PAGE)).text
        form = {"userKey": "00000000000000000000000000000a02", "atl_token": atl_token(html), "confirm": "Delete"}
        response = await client.post(REMOVE, data=form, headers={"X-Atlassian-Token": ""})
        assert response.status_code == 200
        task = re.search(r"data-task-id='([^']+)'", response.text)
        assert task
        sim.clock.advance(10)
        status = (await client.get(f"/rest/api/longtask/{task.group(1)}")).json()
        assert (status["percentageComplete"], status["successful"]) == (100, True)
        assert page_keys((await client.get(PAGE)).text) == ["00000000000000000000000000000a01"]
        again = await client.post(REMOVE, data=form, headers={"X-Atlassian-Token": ""})
        assert again.status_code == 404 and "user.already.deleted" in again.text
    assert sim.ctx.log.violations() == []


async def test_the_delete_form_checks_the_atl_token_and_the_entry() -> None:
    sim = make_sim()
    async with sim.client() as client:
        await websudo(client)
        token = atl_token((await client.get(PAGE)).text)
        no_header = {"X-Atlassian-Token": ""}
        forged = await client.post(REMOVE, data={"userKey": "00000000000000000000000000000a01",
                                                 "atl_token": "forged"}, headers=no_header)
        assert forged.status_code == 403
        live_key = sim.ctx.dc.by_username["dave"]
        live = await client.post(REMOVE, data={"userKey": live_key, "atl_token": token}, headers=no_header)
        assert live.status_code == 400 and "user.not.unsynced" in live.text
        unknown = await client.post(REMOVE, data={"userKey": "f" * 32, "atl_token": token}, headers=no_header)
        assert unknown.status_code == 404 and "user.doesnt.exist" in unknown.text
    assert len([u for u in sim.state()["users"] if u["unsynced"]]) == 2


async def test_the_page_lists_100_entries_per_page() -> None:
    lines = "\n".join(f"    - {{username: gone{i:03d}}}" for i in range(130))
    sim = make_sim(f"""
confluence_dc:
  users:
    - {{username: admin, password: pw, tokens: [t]}}
  groups:
    - {{name: confluence-administrators, members: [admin]}}
  unsynced:
{lines}
""")
    assert isinstance(sim, Sim)
    async with sim.client("t") as client:
        await websudo(client, "pw")
        first = (await client.get(PAGE)).text
        assert len(page_keys(first)) == 100
        next_page = re.search(r"class='pagination-next' href='([^']+)'", first)
        assert next_page
        second = (await client.get(next_page.group(1))).text
    assert len(page_keys(second)) == 30
    assert "pagination-next" not in second
    assert set(page_keys(first)).isdisjoint(page_keys(second))
