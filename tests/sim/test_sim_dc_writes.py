"""The simulated Confluence DC write API: idempotent membership, read-only refusals, disable/enable,
deletion as serialized long tasks."""

from __future__ import annotations

import pytest

from tests.support.sim import make_sim

pytestmark = pytest.mark.anyio

READ_ONLY_GROUP = ("com.atlassian.crowd.exception.runtime.OperationFailedException: ApplicationPermissionException: "
                   "Cannot update group 'ldap-eng' because directory 'Corporate LDAP' does not allow updates.")


def members(sim_state: dict[str, object], group: str) -> list[str]:
    groups = sim_state["groups"]
    assert isinstance(groups, list)
    return next(g["members"] for g in groups if g["name"] == group)


async def test_membership_put_and_delete_are_idempotent_204s() -> None:
    sim = make_sim()
    async with sim.client() as client:
        for _ in range(2):
            response = await client.put("/rest/api/user/dave/group/team-docs")
            assert (response.status_code, response.content) == (204, b"")
        assert members(sim.state(), "team-docs") == ["alice", "bob", "dave"]
        for _ in range(2):
            assert (await client.delete("/rest/api/user/alice/group/team-docs")).status_code == 204
        assert members(sim.state(), "team-docs") == ["bob", "dave"]
    sim.check_contract()


async def test_membership_of_unknown_user_or_group_is_404() -> None:
    sim = make_sim()
    async with sim.client() as client:
        assert (await client.put("/rest/api/user/nobody/group/team-docs")).json()["message"] == "User nobody not found"
        assert (await client.put("/rest/api/user/dave/group/nope")).json()["message"] == "Group nope not found"
        # an unsynced entry is not in any directory: it cannot join a group
        assert (await client.put("/rest/api/user/jsmith/group/team-docs")).status_code == 404
    sim.check_contract()


async def test_membership_of_a_read_only_directory_group_is_refused_with_the_crowd_error() -> None:
    sim = make_sim()
    async with sim.client() as client:
        added = await client.put("/rest/api/user/dave/group/ldap-eng")
        removed = await client.delete("/rest/api/user/carol/group/ldap-eng")
    for response in (added, removed):
        assert response.status_code == 500
        assert response.json()["message"] == READ_ONLY_GROUP
    assert members(sim.state(), "ldap-eng") == ["carol"]
    sim.check_contract()


async def test_disable_and_enable() -> None:
    sim = make_sim()
    async with sim.client() as client:
        for _ in range(2):  # idempotent
            assert (await client.put("/rest/api/admin/user/dave/disable")).status_code == 204
        dave = (await client.get("/rest/api/user", params={"username": "dave", "expand": "status"})).json()
        assert dave["status"] == "Deactivated"
        assert (await client.put("/rest/api/admin/user/dave/enable")).status_code == 204
        assert (await client.put("/rest/api/admin/user/bob/enable")).status_code == 204
        unknown = await client.put("/rest/api/admin/user/nobody/disable")
        assert (unknown.status_code, unknown.json()["message"]) == (404, "No User exists for the provided username")
        read_only = await client.put("/rest/api/admin/user/carol/disable")
        assert read_only.status_code == 500
        assert "Cannot update user 'carol' because directory 'Corporate LDAP' does not allow updates." in (
            read_only.json()["message"])
        assert (await client.put("/rest/api/admin/user/admin/disable")).status_code == 403
    active = {u["username"]: u["active"] for u in sim.state()["users"]}
    assert active == {"admin": True, "alice": True, "bob": True, "carol": True, "dave": True,
                      "jsmith": False}
    sim.check_contract()


async def test_delete_is_a_long_task_that_finishes_after_delete_seconds() -> None:
    sim = make_sim()  # delete_seconds: 10
    dave_key = sim.ctx.dc.by_username["dave"]
    async with sim.client() as client:
        submitted = await client.delete("/rest/api/admin/user/dave")
        assert submitted.status_code == 202
        task = submitted.json()
        assert task["links"]["status"] == f"http://confluence.test/rest/api/longtask/{task['id']}"
        sim.clock.advance(5)
        running = (await client.get(f"/rest/api/longtask/{task['id']}")).json()
        assert running["percentageComplete"] == 50
        assert running["elapsedTime"] == 5000
        assert (await client.get("/rest/api/user", params={"username": "dave"})).status_code == 200
        sim.clock.advance(5)
        done = (await client.get(f"/rest/api/longtask/{task['id']}")).json()
        assert (done["percentageComplete"], done["successful"]) == (100, True)
        assert (await client.get("/rest/api/user", params={"username": "dave"})).status_code == 404
        alias = (await client.get("/rest/api/user", params={"key": dave_key})).json()
        assert alias["username"] == dave_key  # the anonymised mapping survives the deletion
        assert (await client.delete("/rest/api/admin/user/dave")).status_code == 404
        assert (await client.get("/rest/api/longtask/no-such-task")).status_code == 404
    assert sim.ctx.log.violations() == []
    sim.check_contract()


async def test_overlapping_deletions_are_queued_and_recorded_as_violations() -> None:
    sim = make_sim()
    async with sim.client() as client:
        first = (await client.delete("/rest/api/admin/user/dave")).json()["id"]
        second = (await client.delete("/rest/api/admin/user/alice")).json()["id"]
        sim.clock.advance(10)
        assert (await client.get(f"/rest/api/longtask/{first}")).json()["percentageComplete"] == 100
        assert (await client.get(f"/rest/api/longtask/{second}")).json()["percentageComplete"] == 15
        sim.clock.advance(10)
        assert (await client.get(f"/rest/api/longtask/{second}")).json()["successful"] is True
    [violation] = sim.ctx.log.violations()
    assert "deletion of alice" in violation.note and "must run one at a time" in violation.note
    assert {u["username"] for u in sim.state()["users"]} == {"admin", "alice", "bob", "carol", "dave",
                                                             "jsmith"} - {"alice", "dave"}
    sim.check_contract()


async def test_delete_refusals() -> None:
    sim = make_sim()
    async with sim.client() as client:
        read_only = await client.delete("/rest/api/admin/user/carol")
        assert read_only.status_code == 403
        assert "User is not removable" in read_only.json()["message"]
        assert (await client.delete("/rest/api/admin/user/admin")).status_code == 403
    sim.check_contract()


async def test_rest_delete_of_a_shared_unsynced_username_hits_the_first_entry_only() -> None:
    sim = make_sim()
    async with sim.client() as client:
        task = (await client.delete("/rest/api/admin/user/jsmith")).json()["id"]
        sim.clock.advance(10)
        assert (await client.get(f"/rest/api/longtask/{task}")).json()["successful"] is True
    left = [u["key"] for u in sim.state()["users"] if u["unsynced"]]
    assert left == ["00000000000000000000000000000a02"]  # why the tool deletes unsynced entries by userKey
    sim.check_contract()


async def test_admin_groups_create_and_delete() -> None:
    sim = make_sim()
    async with sim.client() as client:
        created = await client.post("/rest/api/admin/group", json={"name": "Team-New"})
        assert (created.status_code, created.json()["name"]) == (200, "team-new")
        assert (await client.post("/rest/api/admin/group", json={"name": "team-new"})).status_code == 409
        assert (await client.post("/rest/api/admin/group", json={})).status_code == 400
        assert (await client.delete("/rest/api/admin/group/team-new")).status_code == 204
        assert (await client.delete("/rest/api/admin/group/team-new")).status_code == 404
        assert (await client.delete("/rest/api/admin/group/confluence-administrators")).status_code == 400
    sim.check_contract()


async def test_writes_do_not_exist_before_8_2() -> None:
    from tests.support.sim import WORLD

    sim = make_sim(WORLD.replace('version: "9.4"', 'version: "8.1"'))
    async with sim.client() as client:
        assert (await client.put("/rest/api/user/dave/group/team-docs")).status_code == 404
        assert (await client.get("/rest/api/user/list")).status_code == 404
    assert members(sim.state(), "team-docs") == ["alice", "bob"]
