"""Every Confluence DC operation the simulator serves, validated against confluence-dc-10.0.3.json.

Only statuses the document declares for each operation are accepted here (no allowance for the
undocumented 404/500 the real server also sends; those are covered in the other test_sim_* files).
"""

from __future__ import annotations

import pytest

from tests.support.sim import ALICE_TOKEN, make_sim

pytestmark = pytest.mark.anyio

SERVED = {
    "GET /rest/api/user/current",
    "GET /rest/api/user/anonymous",
    "GET /rest/api/user",
    "GET /rest/api/user/list",
    "GET /rest/api/user/memberof",
    "GET /rest/api/group",
    "GET /rest/api/group/{groupName}",
    "GET /rest/api/group/{groupName}/member",
    "GET /rest/api/admin/users/list/active",
    "GET /rest/api/longtask",
    "GET /rest/api/longtask/{id}",
    "GET /rest/api/server-information",
    "PUT /rest/api/user/{username}/group/{groupName}",
    "DELETE /rest/api/user/{username}/group/{groupName}",
    "PUT /rest/api/admin/user/{username}/disable",
    "PUT /rest/api/admin/user/{username}/enable",
    "DELETE /rest/api/admin/user/{username}",
    "POST /rest/api/admin/group",
    "DELETE /rest/api/admin/group/{groupName}",
}


async def test_a_tour_of_every_served_operation_validates() -> None:
    sim = make_sim()
    admin = sim.client(allowed=())
    alice = sim.client(ALICE_TOKEN, allowed=())
    async with admin, alice:
        bob_key = sim.ctx.dc.by_username["bob"]
        for path in ("/rest/api/user/current", "/rest/api/user/anonymous", "/rest/api/server-information",
                     "/rest/api/user/list?expand=status", "/rest/api/group", "/rest/api/group/team-docs",
                     "/rest/api/group/team-docs/member?expand=status",
                     "/rest/api/admin/users/list/active?expand=lastLogin"):
            assert (await admin.get(path)).status_code == 200, path
        assert (await admin.get("/rest/api/user", params={"key": bob_key})).status_code == 200
        assert (await admin.get("/rest/api/user", params={"username": "nobody"})).status_code == 404
        assert (await admin.get("/rest/api/user/memberof", params={"username": "bob"})).status_code == 200
        assert (await admin.put("/rest/api/user/dave/group/team-docs")).status_code == 204
        assert (await admin.delete("/rest/api/user/dave/group/team-docs")).status_code == 204
        assert (await admin.put("/rest/api/admin/user/dave/disable")).status_code == 204
        assert (await admin.put("/rest/api/admin/user/dave/enable")).status_code == 204
        assert (await admin.put("/rest/api/admin/user/nobody/enable")).status_code == 404
        assert (await alice.put("/rest/api/admin/user/dave/disable")).status_code == 403
        task = (await admin.delete("/rest/api/admin/user/dave")).json()["id"]
        assert (await admin.delete("/rest/api/admin/user/nobody")).status_code == 404
        sim.clock.advance(30)
        assert (await admin.get(f"/rest/api/longtask/{task}")).status_code == 200
        assert (await admin.get("/rest/api/longtask/unknown")).status_code == 404
        assert (await admin.get("/rest/api/longtask")).status_code == 200
        assert (await admin.post("/rest/api/admin/group", json={"name": "team-new"})).status_code == 200
        assert (await admin.post("/rest/api/admin/group", json={"name": "team-new"})).status_code == 409
        assert (await admin.delete("/rest/api/admin/group/team-new")).status_code == 204
        assert (await admin.delete("/rest/api/admin/group/team-new")).status_code == 404
        assert (await alice.get("/rest/api/group/team-docs/member")).status_code == 403
    sim.check_contract()
    validated = {op for transport in sim.transports for op in transport.recorder.operations}
    assert validated == SERVED
