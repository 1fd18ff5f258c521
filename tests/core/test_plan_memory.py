"""The planner's memory (issue 15, item 6): what it allocates on top of both states stays small per user.

- the state digests are hashed a chunk of rows at a time, with the very digest of the whole document;
- a key already in normal form is kept as itself, not as a lower-cased copy (norm, User.keys, CSV emails);
- `diff` of a few thousand users allocates a bounded number of bytes per user at its peak (tracemalloc).
"""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from reconcile import aio, digest
from reconcile.diff import diff
from reconcile.digest import desired_digest, fingerprint, sha256_streamed
from reconcile.model import (
    ActualState,
    DesiredState,
    DesiredUser,
    Globs,
    Group,
    Policy,
    Scope,
    Status,
    User,
    norm,
)
from reconcile.plan import raw, sha256_canonical
from reconcile.settings import CsvSourceSettings
from reconcile.sources.csv import CsvSource
from tests.support.builders import NOW, TARGET

SCOPE = Scope(users=Globs(("*",)), groups=Globs(("team-*",)))


def fresh(text: str) -> str:
    """A string object of its own (a literal would be shared with the test's constants)."""
    return "".join(list(text))


def world(users: int, groups: int = 60, seed: int = 3) -> tuple[DesiredState, ActualState]:
    """An actual state and a desired state ~1% apart (as bench/planner.py builds the bench's)."""
    rnd = random.Random(seed)
    names = [f"team-{i:03}" for i in range(groups)]
    people = [User(ref=f"{i:032x}", username=f"user{i:06}", email=f"user{i:06}@example.com",
                   status=Status.DISABLED if i % 50 == 0 else Status.ACTIVE) for i in range(users)]
    members: dict[str, set[str]] = {g: set() for g in names}
    for user in people:
        for g in rnd.sample(names, 4):
            members[g].add(user.ref)
    actual = ActualState(users={u.ref: u for u in people}, groups={g: Group(g, ref=g) for g in names},
                         members={g: frozenset(refs) for g, refs in members.items()})
    wanted = [DesiredUser(key=u.email or "", groups=frozenset(g for g in names if u.ref in members[g]))
              for i, u in enumerate(people) if i % 200 != 7]
    return DesiredState.build(wanted), actual


@pytest.mark.parametrize("rows", [0, 1, 5, 2047, 2048, 2049, 4100])
@pytest.mark.parametrize("chunk", [1, 7, 2048])
def test_streamed_digest_is_the_whole_documents(rows: int, chunk: int) -> None:
    items = [[str(i), "x", i % 3 == 0, [str(j) for j in range(i % 4)], None] for i in range(rows)]
    fields = {"b": [1, 2], "z": raw({"q": 1.5}), "m": {"k": "v"}}
    whole = sha256_canonical({**fields, "a": items, "y": items[:3]})
    assert sha256_streamed(fields, {"a": (iter(items), chunk), "y": (items[:3], chunk)}) == whole


def test_normal_keys_are_kept_as_themselves() -> None:
    name, email, mixed = fresh("alice"), fresh("alice@example.com"), fresh(" Bob@Example.com")
    assert norm(name) is name
    assert norm(mixed) == "bob@example.com"
    user = User(ref="a1", username=name, email=email)
    assert all(kept is given for kept, given in zip(user.keys(), (name, email), strict=True))
    cloud = User(ref="a2", email=email, account_id=fresh("712020:abc"))
    assert cloud.keys()[0] is email
    assert cloud.keys()[1] is cloud.account_id


def test_csv_emails_are_not_copied(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_text("User id,email,User status,Group name\nu1,carol@example.com,Active,team-a\n"
                    "u2,Dave@Example.com,Active,team-a\n,erin@example.com,Active,team-a\n", encoding="utf-8")
    source = CsvSource(CsvSourceSettings(name="export", path=str(path)))
    state = aio.run(source.read())
    carol, dave = state.users["u1"], state.users["u2"]
    assert carol.identity.email == "carol@example.com"
    assert dave.identity.email == "dave@example.com"
    erin = state.users["erin@example.com"]  # no user id: the email is the key, and the same string
    assert erin.identity.email is erin.key


def peak_bytes(work: Callable[[], object]) -> int:
    """The most bytes `work` had allocated (and not yet freed) at once."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        work()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


USERS = 6_000


def test_state_digests_hold_no_row_per_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digest, "ROWS", 64)  # chunks far smaller than the world, as 2,048 are of 100,000 users
    desired, actual = world(USERS)
    # Whole-document encoding held every user's row and the encoded text: 360 and 680 bytes per user.
    assert peak_bytes(lambda: desired_digest(desired, SCOPE, Policy())) < 40 * USERS
    assert peak_bytes(lambda: fingerprint(actual, SCOPE)) < 150 * USERS  # with the scoped users' keys


def test_diff_peak_per_user_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digest, "ROWS", 64)
    desired, actual = world(USERS)
    plan = diff(desired, actual, scope=SCOPE, policy=Policy(), target=TARGET, now=NOW)
    assert plan.actions  # ~1% of the users differ: a real plan, not an empty one
    # Was ~1,000 bytes per user (every digest row, lower-cased copies of every key); now ~370: the identity
    # index, the matches and the scoped users' keys (copies of the keys alone would add ~240).
    peak = peak_bytes(lambda: diff(desired, actual, scope=SCOPE, policy=Policy(), target=TARGET, now=NOW))
    assert peak < 500 * USERS, f"{peak / USERS:.0f} bytes per user"
