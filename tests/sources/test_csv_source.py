"""The `csv` source against realistic admin.atlassian.com "Export users" files (tests/data/csv/)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from reconcile.errors import SourceError
from reconcile.model import DesiredState, Identity, Location, Status
from reconcile.settings import CsvSourceSettings
from reconcile.sources.csv import CsvSource

DATA = Path(__file__).parents[1] / "data" / "csv"


def read(name: str) -> DesiredState:
    return asyncio.run(CsvSource(CsvSourceSettings(name="export", path=str(DATA / name))).read())


def test_group_list_export_with_bom_and_product_columns() -> None:
    state = read("export-users-groups.csv")
    assert sorted(state.users) == [
        "557058:f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9",
        "5b10ac8d82e05b22cc7d4ef5",
        "712020:2c1f9a8e-6a51-4bde-9f4e-7d0b1c2e3a41",
        "712020:8e0c6f1d-3b5a-4f7e-a1c2-9d8e7f6a5b4c",
    ]
    alice = state.users["712020:2c1f9a8e-6a51-4bde-9f4e-7d0b1c2e3a41"]
    assert alice.key == "712020:2c1f9a8e-6a51-4bde-9f4e-7d0b1c2e3a41"
    assert alice.identity.email == "alice@example.com"
    assert alice.display_name == "Alice Archer"
    assert alice.status is Status.ACTIVE
    assert alice.groups == {"confluence-users", "team-docs"}
    assert alice.source == "export"
    assert alice.origin == Location(str(DATA / "export-users-groups.csv"), 2)
    bob = state.users["5b10ac8d82e05b22cc7d4ef5"]
    assert (bob.identity.email, bob.status, bob.groups) == (
        "bob@example.com", Status.DISABLED, frozenset({"confluence-users"}))
    carol = state.users["712020:8e0c6f1d-3b5a-4f7e-a1c2-9d8e7f6a5b4c"]
    assert (carol.status, carol.groups) == (Status.DISABLED, frozenset())
    dan = state.users["557058:f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9"]
    assert dan.display_name == "Dan \"D\" O'Neil"
    assert dan.status is Status.DISABLED
    assert state.groups == {"confluence-users", "team-docs", "jira-software-users"}


def test_pivoted_group_columns_and_blank_lines() -> None:
    state = read("export-users-pivot.csv")
    alice = state.users["712020:2c1f9a8e-6a51-4bde-9f4e-7d0b1c2e3a41"]
    assert alice.groups == {"confluence-users", "team-docs", "team-platform"}
    erin = state.users["712020:0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"]
    assert erin.groups == {"confluence-users"}
    bob = state.users["5b10ac8d82e05b22cc7d4ef5"]
    assert bob.groups == frozenset()
    assert bob.origin is not None and bob.origin.line == 5  # the blank line 4 is skipped, not miscounted


def test_columns_in_any_order_and_email_when_the_user_id_is_missing() -> None:
    state = read("suspend-list.csv")
    frank = state.users["712020:11111111-2222-4333-8444-555555555555"]
    assert (frank.identity.email, frank.status) == ("frank@example.com", Status.ACTIVE)
    grace = state.users["grace@example.com"]
    assert (grace.key, grace.identity, grace.status) == ("grace@example.com", Identity(email="grace@example.com"),
                                                        Status.DISABLED)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("bad-status.csv", "bad-status.csv:3: unknown user status 'On leave'"),
        ("duplicate-user.csv", "duplicate-user.csv:4: user 712020:2C1F9A8E"),
        ("not-an-export.csv", "not-an-export.csv:1: neither a `User id` nor an `email` column"),
        ("malformed-quote.csv", "malformed-quote.csv:2: malformed CSV"),
    ],
)
def test_bad_files_name_the_file_and_line(name: str, fragment: str) -> None:
    with pytest.raises(SourceError) as caught:
        read(name)
    assert fragment in str(caught.value)


def test_duplicate_names_the_first_line() -> None:
    with pytest.raises(SourceError, match=r"also on line 2"):
        read("duplicate-user.csv")


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"cannot read .*nope\.csv"):
        asyncio.run(CsvSource(CsvSourceSettings(name="x", path=str(tmp_path / "nope.csv"))).read())
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(SourceError, match=r"empty\.csv: the file is empty"):
        asyncio.run(CsvSource(CsvSourceSettings(name="x", path=str(empty))).read())
    latin = tmp_path / "latin.csv"
    latin.write_bytes("email,User name\nzoe@example.com,Zo\xeb\n".encode("latin-1"))
    with pytest.raises(SourceError, match=r"latin\.csv: not UTF-8"):
        asyncio.run(CsvSource(CsvSourceSettings(name="x", path=str(latin))).read())


def test_header_only_export_yields_no_users(tmp_path: Path) -> None:
    only = tmp_path / "only.csv"
    only.write_text("User id,User name,email,User status\n")
    state = asyncio.run(CsvSource(CsvSourceSettings(name="x", path=str(only))).read())
    assert dict(state.users) == {}


def test_group_names_are_one_string_each(tmp_path: Path) -> None:
    """Issue 15: 400,000 memberships of 2,000 groups hold 2,000 group-name strings, not 400,000."""
    path = tmp_path / "export.csv"
    path.write_text("User id,email,Group name\na1,a@example.com,\"Team-X, team-y\"\nb2,b@example.com,team-x\n",
                    encoding="utf-8")
    state = asyncio.run(CsvSource(CsvSourceSettings(name="export", path=str(path))).read())
    a, b = state.users["a1"], state.users["b2"]
    assert a.groups == {"team-x", "team-y"} and b.groups == {"team-x"}
    assert next(g for g in a.groups if g == "team-x") is next(iter(b.groups))


@pytest.mark.parametrize("name", ["export-users-groups.csv", "export-users-pivot.csv", "suspend-list.csv"])
def test_the_state_is_the_one_desired_state_build_makes(name: str) -> None:
    """Issue 15: the rows are keyed and grouped as they are read, with no second pass; the result must be the
    state `DesiredState.build` makes of the same users (keys, order, groups, each group name one string)."""
    state = read(name)
    built = DesiredState.build(state.users.values())
    assert state == built and list(state.users) == list(built.users)
    names = {g: g for g in state.groups}
    assert all(names[g] is g for u in state.users.values() for g in u.groups)


def test_short_rows_and_whitespace_cells(tmp_path: Path) -> None:
    """Rows shorter than the header read their missing cells as empty; cells are stripped, group names too."""
    path = tmp_path / "export.csv"
    path.write_text("User id,email,User name,User status,Group name,Group 1\n"
                    " a1 , A@Example.com ,  Ann  , Suspended ,\" Team-X , ,team-y\", team-z \n"
                    "b2,b@example.com\n"
                    " , , , , \n"
                    ",c@example.com,,,,\n", encoding="utf-8")
    state = asyncio.run(CsvSource(CsvSourceSettings(name="export", path=str(path))).read())
    a, b, c = state.users["a1"], state.users["b2"], state.users["c@example.com"]
    assert (a.key, a.identity, a.display_name, a.status) == (
        "a1", Identity(email="a@example.com", account_id="a1"), "Ann", Status.DISABLED)
    assert a.groups == {"team-x", "team-y", "team-z"} and a.origin == Location(str(path), 2)
    assert (b.groups, b.display_name, b.status, b.identity) == (
        frozenset(), None, Status.ACTIVE, Identity(email="b@example.com", account_id="b2"))
    assert c.identity == Identity(email="c@example.com") and c.origin == Location(str(path), 5)
    assert state.groups == {"team-x", "team-y", "team-z"}
