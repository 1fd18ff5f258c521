"""Item 19(a, g) on Confluence DC: a finished deletion task that the server has forgotten (404), and
JSON answered as `application/json;charset=UTF-8`. Time is a fake clock shared by the target and the
simulator, so long-task polling never sleeps for real."""

from __future__ import annotations

import pytest

from reconcile.model import Globs, Scope
from reconcile.plan import Action, ActionKind, Subject
from reconcile.sim.control import Faults, SimSettings
from reconcile.targets.base import Result
from reconcile.targets.confluence_dc import ConfluenceDcTarget
from tests.support.dc import DcSim, run
from tests.support.fake_clock import FakeClock

SCOPE = Scope(groups=Globs(("team-*", "confluence-users")))


def dc(settings: SimSettings, fake: FakeClock) -> tuple[DcSim, ConfluenceDcTarget]:
    sim = DcSim.from_yaml()
    sim.ctx.apply_settings(settings)
    sim.ctx.clock = fake.monotonic
    sim.world.delete_seconds = 3.0
    target = ConfluenceDcTarget(sim.config(), transport=sim.transport(), clock=fake.clock(), poll_interval=0.5)
    return sim, target


@pytest.mark.parametrize("forget", [False, True])
def test_a_finished_task_that_answers_404_is_settled_by_re_reading_the_user(forget: bool) -> None:
    fake = FakeClock()
    sim, target = dc(SimSettings(faults=Faults(forget_finished_tasks=forget)), fake)
    key = sim.key("dave")

    async def go() -> Result:
        await target.fetch(SCOPE)
        outcome = await target.perform(Action(ActionKind.DELETE, Subject("dave", key)))
        await target.aclose()
        return outcome.result

    assert run(go()) is Result.DONE
    assert key not in sim.world.users
    polls = [(path, status) for method, path, status in sim.sent("/rest/api/longtask/")]
    assert polls[0][1] == 200  # still running when first asked
    assert polls[-1][1] == (404 if forget else 200)
    after = sim.sent("/rest/api/user?key=")
    assert bool(after) is forget  # only a forgotten task needs the user re-read
    assert sum(fake.sleeps) >= 3.0  # polled until the task's end, in fake time only
    sim.check_contracts()
    assert [v for c in sim.contracts for v in c.violations] == []  # the 404 is the documented one


def test_json_with_a_charset_parameter_is_read_by_the_dc_target() -> None:
    fake = FakeClock()
    sim, target = dc(SimSettings(faults=Faults(json_charset=True)), fake)

    async def go() -> tuple[str, int]:
        response = await target.client.request("GET", "/rest/api/user/current")
        state = await target.fetch(SCOPE)
        await target.aclose()
        return response.headers["content-type"], len(state.users)

    content_type, users = run(go())
    assert content_type == "application/json;charset=UTF-8"
    assert users >= 5
    assert [v for c in sim.contracts for v in c.violations] == []
