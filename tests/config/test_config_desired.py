"""read_desired(): inline users merged with every configured source, conflicts, empty-source guards.

Sources here are small in-test objects satisfying sources.base.Source, injected through the factory;
one test runs the real CSV source through the default factory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from reconcile.desired import SourceFactory, read_desired
from reconcile.errors import ConfigError, EmptySource
from reconcile.model import DesiredState, DesiredUser, Identity, Location, Status
from reconcile.settings import Config, SourceSettings
from reconcile.sources.base import Source
from tests.support.config import HEAD, load, write

GOOD = Path(__file__).resolve().parents[1] / "data" / "config" / "good"


@dataclass
class ListSource:
    """A source that returns the users it was given."""

    name: str
    users: list[DesiredUser]

    async def read(self) -> DesiredState:
        return DesiredState.build(self.users)


def configure(tmp_path: Path, inline: str = "", *, sources: dict[str, str] | None = None,
              policy: str = "") -> Config:
    """A confluence-dc configuration with csv-typed sources (stand-ins: the factory replaces them)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "x.csv").write_text("email\n")
    text = HEAD.replace('["team-*"]', '["team-*", "confluence-*"]')
    if sources:
        text += "sources:\n" + "".join(f"  {name}: {{type: csv, path: x.csv{extra}}}\n"
                                       for name, extra in sources.items())
    if policy:
        text += f"policy:\n  {policy}\n"
    return load(write(tmp_path, {"main.yaml": text + inline}))


def factory(*sources: ListSource) -> SourceFactory:
    by_name = {s.name: s for s in sources}

    def make(config: SourceSettings) -> Source:
        return by_name[config.name]

    return make


def test_users_named_by_several_sources_get_the_union(tmp_path: Path) -> None:
    config = configure(tmp_path, "users:\n  alice@example.com: {groups: [team-a]}\n", sources={"corp": ""})
    corp = ListSource("corp", [
        DesiredUser("alice", identity=Identity(username="alice", email="alice@example.com"),
                    groups=frozenset({"team-b"}), display_name="Alice"),
        DesiredUser("bob", identity=Identity(username="bob", email="bob@example.com"), status=Status.DISABLED),
    ])
    state = read_desired(config, factory=factory(corp))
    alice = state.users["alice@example.com"]
    assert (alice.key, alice.identity) == ("alice@example.com", Identity(username="alice", email="alice@example.com"))
    assert alice.groups == {"team-a", "team-b"} and alice.display_name == "Alice"
    assert alice.source == "yaml+corp"
    assert alice.origin is not None and alice.origin.line == 13  # after the sources section
    assert state.users["bob"].status is Status.DISABLED and state.users["bob"].identity.email == "bob@example.com"
    assert state.groups == {"team-a", "team-b"}


def test_unstated_inline_status_yields_to_a_source(tmp_path: Path) -> None:
    config = configure(tmp_path, "users:\n  bob@example.com: {groups: [team-a]}\n", sources={"corp": ""})
    corp = ListSource("corp", [DesiredUser("bob@example.com", status=Status.DISABLED)])
    state = read_desired(config, factory=factory(corp))
    assert state.users["bob@example.com"].status is Status.DISABLED


def test_two_sources_stating_different_statuses_conflict(tmp_path: Path) -> None:
    config = configure(tmp_path, sources={"corp": "", "hr": ""})
    corp = ListSource("corp", [DesiredUser("carol", identity=Identity(username="carol", email="carol@example.com"))])
    hr = ListSource("hr", [DesiredUser("carol@example.com", status=Status.DISABLED)])
    with pytest.raises(ConfigError) as caught:
        read_desired(config, factory=factory(corp, hr))
    assert caught.value.problems == [
        f"{tmp_path}/main.yaml:12:3: user 'carol@example.com': source 'hr' says disabled, source 'corp' says "
        f"active (for 'carol', from {tmp_path}/main.yaml:11:3); make the sources agree"]


def test_inline_disabled_against_a_source_saying_active_conflicts(tmp_path: Path) -> None:
    config = configure(tmp_path, "users:\n  dave: {status: disabled}\n", sources={"corp": ""})
    corp = ListSource("corp", [DesiredUser("dave", identity=Identity(username="dave", email="dave@example.com"))])
    with pytest.raises(ConfigError, match="user 'dave': source 'corp' says active, source 'yaml' says disabled"):
        read_desired(config, factory=factory(corp))


def test_different_emails_for_one_username_conflict(tmp_path: Path) -> None:
    config = configure(tmp_path, "users:\n  erin: {email: erin@example.com}\n", sources={"corp": ""})
    corp = ListSource("corp", [DesiredUser("erin", identity=Identity(username="erin", email="erin@example.org"))])
    with pytest.raises(ConfigError) as caught:
        read_desired(config, factory=factory(corp))
    assert caught.value.problems == [
        f"{tmp_path}/main.yaml:11:3: user 'erin': source 'corp' gives email 'erin@example.org', source 'yaml' "
        f"gives 'erin@example.com' (for 'erin', from {tmp_path}/main.yaml:13:3); make the sources agree"]


def test_an_empty_source_is_refused_and_says_how_to_allow_it(tmp_path: Path) -> None:
    config = configure(tmp_path, "users:\n  a@example.com:\n", sources={"corp": ""})
    with pytest.raises(EmptySource) as caught:
        read_desired(config, factory=factory(ListSource("corp", [])))
    assert caught.value.exit_code == 4
    assert caught.value.message.startswith(f"{tmp_path}/main.yaml:11:3: source 'corp' (csv) returned no users")
    assert "`allow_empty: true` on source 'corp'" in str(caught.value)
    assert "--force does not lift this guard" in str(caught.value)


@pytest.mark.parametrize(("extra", "policy"), [(", allow_empty: true", ""), ("", "allow_empty: true")])
def test_allow_empty_lifts_the_source_guard(tmp_path: Path, extra: str, policy: str) -> None:
    config = configure(tmp_path, "users:\n  a@example.com:\n", sources={"corp": extra}, policy=policy)
    state = read_desired(config, factory=factory(ListSource("corp", [])))
    assert list(state.users) == ["a@example.com"]


def test_an_empty_merged_state_is_refused_unless_policy_allows(tmp_path: Path) -> None:
    with pytest.raises(EmptySource, match="the desired state has no users") as caught:
        read_desired(configure(tmp_path / "a"))
    assert "`policy: {allow_empty: true}`" in str(caught.value)
    state = read_desired(configure(tmp_path / "b", policy="allow_empty: true"))
    assert state.users == {}


def test_the_default_factory_reads_a_real_csv_source() -> None:
    config = load(GOOD / "memory-csv", {})
    state = read_desired(config)
    assert set(state.users) == {"erin@example.com", "5b10ac8d82e05b22cc7d4ef5"}
    erin = state.users["erin@example.com"]
    assert erin.identity.account_id == "70121:1c2d" and erin.groups == {"confluence-users", "team-ops"}
    assert erin.source == "yaml+export"
    bob = state.users["5b10ac8d82e05b22cc7d4ef5"]
    assert bob.status is Status.DISABLED and bob.identity.email == "bob@example.org"


def test_a_user_only_one_source_names_is_kept_not_rebuilt(tmp_path: Path) -> None:
    """Issue 15: each desired user is built once; the merge reuses what its one source built."""
    config = configure(tmp_path, "users:\n  alice@example.com: {groups: [team-a]}\n", sources={"corp": ""})
    carol = DesiredUser("carol", identity=Identity(username="carol", email="carol@example.com"),
                        groups=frozenset({"team-b"}), source="corp", origin=Location("corp.csv", 2))
    alice = DesiredUser("alice@example.com", identity=Identity(email="alice@example.com"), source="corp")
    state = read_desired(config, factory=factory(ListSource("corp", [carol, alice])))
    assert state.users["carol"] is carol
    merged = state.users["alice@example.com"]  # named inline too: merged anew
    assert merged is not alice and merged.groups == {"team-a"} and merged.source == "yaml+corp"


def test_users_kept_as_they_are_still_merge_and_conflict_with_a_later_source(tmp_path: Path) -> None:
    """Issue 15: a user only its source named so far is kept as it is, not as a merge entry; a later source naming it
    merges with it, or conflicts, exactly as with an entry (statuses, the guard's keys, 'is both')."""
    config = configure(tmp_path, sources={"corp": "", "hr": ""})
    at = Location("corp.csv", 2)
    kept = [DesiredUser("gil", identity=Identity(username="gil", email="gil@example.com"), source="corp", origin=at,
                        groups=frozenset({"team-a"})),
            DesiredUser("hal", identity=Identity(username="hal"), source="corp", origin=at)]
    hr = ListSource("hr", [DesiredUser("gil@example.com", groups=frozenset({"team-b"}), source="hr")])
    state = read_desired(config, factory=factory(ListSource("corp", kept), hr))
    gil = state.users["gil"]
    assert gil.groups == {"team-a", "team-b"} and (gil.source, gil.status, gil.origin) == ("corp+hr", Status.ACTIVE, at)
    assert state.users["hal"] is kept[1]
    assert state.guarded == {"corp": frozenset({"gil", "hal"}), "hr": frozenset({"gil"})}

    both = ListSource("hr", [DesiredUser("x", identity=Identity(username="hal", email="gil@example.com"), source="hr"),
                             DesiredUser("hal@example.com", identity=Identity(username="hal"), source="hr",
                                         status=Status.DISABLED)])
    with pytest.raises(ConfigError) as caught:
        read_desired(config, factory=factory(ListSource("corp", kept), both))
    where = f"{tmp_path}/main.yaml:12:3"
    assert caught.value.problems == [
        f"{where}: user 'x' from source 'hr' is both 'gil' (from corp) and 'hal' (from corp); make the sources "
        "agree on its username and email",
        f"{where}: user 'hal@example.com': source 'hr' says disabled, source 'corp' says active (for 'hal', from "
        "corp.csv:2:0); make the sources agree"]
