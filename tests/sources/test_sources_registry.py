"""The source and target registries: a new source type is one registry entry plus its module (shown by
a tiny one defined here and planned through the CLI), unknown types are errors, keys are checked against
the settings dataclasses at import, and sources are read concurrently with deterministic errors.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconcile.config.into import Into, IntoError, check_into
from reconcile.config.nodes import ListOf, Node
from reconcile.config.records import Record
from reconcile.config.registry import Kind
from reconcile.config.scalars import Boolean, Number, Text
from reconcile.desired import gather_desired, open_source
from reconcile.errors import ConfigError, SourceError
from reconcile.model import DesiredState, DesiredUser, Identity, Location
from reconcile.settings import HttpSettings
from reconcile.sources.registry import SOURCES
from reconcile.targets.registry import TARGETS
from tests.config.test_config_desired import configure, factory
from tests.support.apply import EXPECTED
from tests.support.cli import make_cli, reconcile

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- a tiny source type, complete in 30 lines


@dataclass(frozen=True, slots=True)
class RosterSettings:
    """`type: roster`: people (emails) who are all members of one team."""

    name: str
    people: tuple[str, ...]
    team: str
    allow_empty: bool = False
    origin: Location | None = None
    type: str = "roster"


ROSTER = Record(
    {"people": ListOf(Text(r"^[^@\s]+@[^@\s]+$", "'{value}' is not an email"), doc="emails"),
     "team": Text(doc="the group they are all in"),
     "allow_empty": Boolean(default=False)},
    required=["people", "team"],
    doc="a roster of one team",
    into=Into(RosterSettings, given=("name", "origin")),
)


class RosterSource:
    def __init__(self, config: RosterSettings) -> None:
        self.config = config
        self.name = config.name

    async def read(self) -> DesiredState:
        return DesiredState.build(
            DesiredUser(p, groups=frozenset({self.config.team}), identity=Identity(email=p), source=self.name)
            for p in self.config.people)


ROSTER_KIND: Kind[RosterSettings, RosterSource] = Kind("roster", ROSTER, RosterSettings, RosterSource)
STAFF = "sources:\n  staff:\n    type: roster\n    people: [dave@example.com]\n    team: team-docs\n"


def test_a_new_source_type_is_one_registry_entry_plus_its_module(tmp_path: Path) -> None:
    cli = make_cli(tmp_path, STAFF)
    before = SOURCES.names()
    refused = cli("plan")  # not registered: an unknown type, with where it is written
    assert refused.exit_code == 1, refused.output
    assert "reconcile.yaml:18:11: sources.staff.type: unknown value 'roster'; allowed: ldap, csv" in refused.output
    with SOURCES.registered(ROSTER_KIND):  # type: ignore[arg-type]
        planned = cli("plan")
        schema = json.loads(reconcile("schema").output)
    assert planned.exit_code == 0, planned.output
    # dave, named only by the roster, is no longer disabled as absent; he stays in team-docs
    assert "disable dave (u-dave)" in EXPECTED
    for line in EXPECTED:
        assert (line in planned.output) is (line != "disable dave (u-dave)"), line
    assert "Plan: 1 to enable, 2 to add, 1 to remove, 0 to disable, 0 to delete." in planned.output
    sources = schema["properties"]["sources"]["anyOf"][1]["additionalProperties"]
    assert sources["properties"]["type"]["enum"] == [*before, "roster"]
    assert before[:4] == ("ldap", "csv", "confluence-dc", "atlassian-cloud")
    roster = next(r["then"] for r in sources["allOf"] if r["if"]["properties"]["type"]["const"] == "roster")
    assert roster["required"] == ["type", "people", "team"] and roster["additionalProperties"] is False
    assert SOURCES.names() == before  # unregistered again


def test_schema_output_is_byte_identical_to_the_committed_file() -> None:
    result = reconcile("schema")
    assert result.exit_code == 0
    assert result.output == (ROOT / "reconcile" / "schema.json").read_text(encoding="utf-8")


def test_type_enums_come_from_the_registries() -> None:
    schema = json.loads((ROOT / "reconcile" / "schema.json").read_text(encoding="utf-8"))
    assert schema["properties"]["target"]["properties"]["type"]["enum"] == list(TARGETS.names())
    sources = schema["properties"]["sources"]["anyOf"][1]["additionalProperties"]
    assert sources["properties"]["type"]["enum"] == list(SOURCES.names())


def test_an_unknown_type_is_an_error_never_a_default() -> None:
    with pytest.raises(ConfigError, match="unknown source type 'roster'; known: ldap, csv"):
        SOURCES.get("roster")
    config = RosterSettings(name="staff", people=("a@example.com",), team="t")
    with pytest.raises(ConfigError, match="unknown source type 'roster'"):
        open_source(config)
    with pytest.raises(ConfigError, match="unknown target type 'jira'; known: confluence-dc, atlassian-cloud, memory"):
        TARGETS.get("jira")
    with pytest.raises(ValueError, match="already registered"):
        SOURCES.register(SOURCES.get("csv"))


def test_a_misspelt_key_or_field_fails_when_the_record_is_declared() -> None:
    def http(**keys: Node) -> Record:
        fields = {"timeout": Number(above=0), "concurrency": Number(above=0), "max_retries": Number(above=0),
                  "ca_file": Text(), **keys}
        return Record(fields, into=Into(HttpSettings, fixed=("verify_tls",)))

    check_into(http())
    with pytest.raises(IntoError, match="key 'timout' lands in no field of HttpSettings"):
        check_into(http(timout=Number(above=0)))
    with pytest.raises(IntoError, match=r"HttpSettings\.verify_tls: the record has no key 'verify_tls'"):
        check_into(Record(http().fields, into=Into(HttpSettings)))
    with pytest.raises(IntoError, match="RosterSettings has no field 'poeple'"):
        check_into(Record(ROSTER.fields, into=Into(RosterSettings, keys={"poeple": ("people",)})))
    with pytest.raises(IntoError, match="key 'teams' lands in no field of RosterSettings"):
        SOURCES.register(Kind("roster", Record({**ROSTER.fields, "teams": Text()}, into=ROSTER.into),
                              RosterSettings, RosterSource))
    assert "roster" not in SOURCES.names()


# ---------------------------------------------------------------- concurrent reads, deterministic errors


@dataclass
class Gate:
    """A source that finishes only after `waits_for` has started: read one at a time, they would hang."""

    name: str
    started: dict[str, asyncio.Event]
    waits_for: str
    fail: bool = False

    async def read(self) -> DesiredState:
        self.started[self.name].set()
        await self.started[self.waits_for].wait()
        if self.fail:
            raise SourceError(f"source {self.name} failed")
        return DesiredState.build([DesiredUser(f"{self.name}@example.com")])


def gates(fail: tuple[str, ...] = ()) -> tuple[Gate, Gate]:
    started = {"corp": asyncio.Event(), "hr": asyncio.Event()}
    return (Gate("corp", started, "hr", "corp" in fail), Gate("hr", started, "corp", "hr" in fail))


def test_sources_are_read_concurrently(tmp_path: Path) -> None:
    config = configure(tmp_path, sources={"corp": "", "hr": ""})

    async def run() -> DesiredState:
        return await asyncio.wait_for(gather_desired(config, factory=factory(*gates())), 10)  # type: ignore[arg-type]

    state = asyncio.run(run())
    assert set(state.users) == {"corp@example.com", "hr@example.com"}


@pytest.mark.parametrize("order", [{"corp": "", "hr": ""}, {"hr": "", "corp": ""}])
def test_the_first_failing_source_by_name_is_reported(tmp_path: Path, order: dict[str, str]) -> None:
    config = configure(tmp_path, sources=order)

    async def run() -> DesiredState:
        return await gather_desired(config, factory=factory(*gates(fail=("corp", "hr"))))  # type: ignore[arg-type]

    with pytest.raises(SourceError, match=r"^source corp failed$"):
        asyncio.run(run())
