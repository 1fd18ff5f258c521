"""Recorded Cloud exchanges (cassettes/test_cloud_cassettes/), replayed with the network blocked.

Recorded from the in-process simulator with `--record-mode=rewrite`; `make test` replays them
(`--record-mode=none --block-network`). Authorization headers are scrubbed by tests/conftest.py; the
last test proves no credential reached a cassette.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconcile.model import Globs, Scope, Status
from reconcile.plan import Action, ActionKind, Subject
from reconcile.settings import CloudDelete, CloudDisable
from reconcile.targets.base import Result
from tests.support.cloud import ALICE, BOB, CAROL, HAL, ORG_KEY, SITE_TOKEN, rig
from tests.support.contract import validate_response

pytestmark = pytest.mark.anyio
CASSETTES = Path(__file__).resolve().parents[2] / "cassettes" / "test_cloud_cassettes"
ALL = Scope(users=Globs(("*",)), groups=Globs(("*",)))


def act(kind: ActionKind, ref: str, group: str | None = None) -> Action:
    return Action(kind=kind, subject=Subject(identity=ref, ref=ref), group=group)


@pytest.mark.vcr
async def test_fetch() -> None:
    r = rig()
    state = await r.target.fetch(ALL)
    await r.target.aclose()
    assert state.users[BOB].status is Status.DISABLED and state.users[ALICE].status is Status.ACTIVE
    assert state.members["team-docs"] == {ALICE}


@pytest.mark.vcr
@pytest.mark.parametrize(
    ("kind", "ref", "group", "config"),
    [
        (ActionKind.ADD_MEMBER, HAL, "team-docs", {}),
        (ActionKind.REMOVE_MEMBER, ALICE, "team-docs", {}),
        (ActionKind.DISABLE, HAL, None, {}),
        (ActionKind.DISABLE, HAL, None, {"disable": CloudDisable.DEACTIVATE}),
        (ActionKind.ENABLE, BOB, None, {}),
        (ActionKind.ENABLE, CAROL, None, {}),
        (ActionKind.DELETE, HAL, None, {}),
        (ActionKind.DELETE, HAL, None, {"delete": CloudDelete.DELETE_ACCOUNT}),
        (ActionKind.DELETE, HAL, None, {"delete": CloudDelete.REMOVE_FROM_SITE}),
    ],
    ids=["add_member", "remove_member", "suspend", "deactivate", "restore", "lifecycle_enable",
         "remove_from_directory", "delete_account", "remove_from_site"],
)
async def test_action(kind: ActionKind, ref: str, group: str | None, config: dict[str, object]) -> None:
    r = rig(**config)  # type: ignore[arg-type]
    await r.target.fetch(ALL)
    outcome = await r.target.perform(act(kind, ref, group))
    await r.target.aclose()
    assert outcome.result is Result.DONE, outcome.message


def test_cassettes_hold_no_secret_and_valid_responses() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert len(files) >= 10
    yaml = pytest.importorskip("yaml")
    for file in files:
        text = file.read_text()
        assert ORG_KEY not in text and SITE_TOKEN not in text, file.name
        assert "authorization" not in text.lower(), file.name
        for exchange in yaml.safe_load(text)["interactions"]:
            req, resp = exchange["request"], exchange["response"]
            body = resp["body"]["string"]
            problems = validate_response(req["method"], req["uri"], resp["status"]["code"],
                                         {k: v[0] for k, v in resp["headers"].items()},
                                         body.encode() if isinstance(body, str) else body)
            assert problems == [], (file.name, problems)
