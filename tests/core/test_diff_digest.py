"""The desired digest covers every field of scope and policy (walked from the dataclasses), and only them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from enum import Enum
from fractions import Fraction

import pytest

from reconcile.diff import diff
from reconcile.digest import canonical, desired_digest
from reconcile.model import AbsentPolicy, Globs, Limit, Policy, Scope, UnsyncedPolicy
from reconcile.policies import (
    DeleteGuard,
    Exemption,
    ExemptionRules,
    InactiveAction,
    InactivePolicy,
    LicencePolicy,
    SeatThreshold,
)
from tests.support.builders import NOW, TARGET, actual, dc_user, desired

# Not the defaults: every field holds something, so that changing it is visible (limits has an entry).
SCOPE = Scope(users=Globs(("*@example.com", "svc-*")), groups=Globs(("team-*",)), protect=Globs(("admin",)))
POLICY = Policy(absent=AbsentPolicy.DISABLE, unsynced=UnsyncedPolicy.IGNORE,
                limits={"delete": Limit(10, percent=True), "add_member": Limit(25)}, allow_empty=False,
                inactive=InactivePolicy(action=InactiveAction.REMOVE_LICENCE, after=timedelta(days=90),
                                        never_active_after=timedelta(days=30), activity=frozenset({"confluence"}),
                                        warn_before=timedelta(days=7)),
                licences=LicencePolicy(groups=("confluence-users",), warn_at=SeatThreshold(seats=45),
                                       fail_at=SeatThreshold(percent=Fraction(95, 100))),
                delete_guard=DeleteGuard(content_over=5),
                exemption_rules=ExemptionRules(),
                exemptions=(Exemption(user="bob@example.com", reason="on leave", owner="alice@example.com",
                                      until=date(2027, 1, 31)),))
WANT = desired({"alice@example.com": {"groups": ["team-docs"]}, "bob@example.com": {}})


def variants(value: object, path: str = "") -> Iterator[tuple[str, object]]:
    """Every single-field change of `value`, recursively, as (dotted path, changed value)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type) and not isinstance(value, Globs):
        for f in dataclasses.fields(value):
            for where, changed in variants(getattr(value, f.name), f"{path}.{f.name}" if path else f.name):
                yield where, dataclasses.replace(value, **{f.name: changed})
    elif isinstance(value, Globs):
        yield f"{path} (one more pattern)", Globs((*value.patterns, "zz-changed-*"))
        for i in range(len(value.patterns)):
            patterns = list(value.patterns)
            patterns[i] += "-changed"
            yield f"{path}[{i}]", Globs(tuple(patterns))
    elif isinstance(value, Mapping):
        assert value, f"{path}: give the mapping an entry so its values are walked too"
        yield f"{path} (one more key)", {**value, "zz-new-key": next(iter(value.values()))}
        yield f"{path} (one key fewer)", dict(list(value.items())[1:])
        for key, item in value.items():
            for where, changed in variants(item, f"{path}[{key}]"):
                yield where, {**value, key: changed}
    elif value is None:
        pass  # an optional field left unset in one nested value: the other fields carry the walk
    elif isinstance(value, timedelta | date):
        yield path, value + timedelta(days=1)
    elif isinstance(value, Fraction):
        yield path, value + 1
    elif isinstance(value, frozenset):
        yield f"{path} (one more)", frozenset({*value, "zz-changed"})
    elif isinstance(value, tuple):
        assert value, f"{path}: give the tuple an item so its items are walked too"
        yield f"{path} (one fewer)", value[1:]
        for i, item in enumerate(value):
            for where, changed in variants(item, f"{path}[{i}]"):
                yield where, (*value[:i], changed, *value[i + 1:])
    elif isinstance(value, Enum):
        yield path, next(m for m in type(value) if m is not value)
    elif value is None:  # an unset option: setting it must show (the digest sees the value, not the type)
        yield f"{path} (set)", 1
    elif isinstance(value, timedelta | date):
        yield path, value + timedelta(days=1)
    elif isinstance(value, Fraction):
        yield path, value + Fraction(1, 100)
    elif isinstance(value, frozenset):
        yield f"{path} (one more)", value | {"zz-changed"}
        if value:
            yield f"{path} (one fewer)", value - {sorted(value, key=str)[0]}
    elif isinstance(value, tuple):
        yield f"{path} (one more)", (*value, *value[:1]) if value else ("zz-changed",)
        for i, item in enumerate(value):
            for where, changed in variants(item, f"{path}[{i}]"):
                yield where, (*value[:i], changed, *value[i + 1:])
    elif isinstance(value, bool):
        yield path, not value
    elif isinstance(value, int | float):
        yield path, value + 1
    elif isinstance(value, str):
        yield path, value + "-changed"
    else:
        pytest.fail(f"{path}: no way to change a {type(value).__name__}; teach variants() this field's type")


def test_every_field_of_scope_and_policy_changes_the_digest() -> None:
    base = desired_digest(WANT, SCOPE, POLICY)
    seen: set[str] = set()
    for where, scope in variants(SCOPE):
        assert desired_digest(WANT, scope, POLICY) != base, f"scope.{where} is not covered by the digest"  # type: ignore[arg-type]
        seen.add(where.split(".")[0].split(" ")[0].split("[")[0])
    for where, policy in variants(POLICY):
        assert desired_digest(WANT, SCOPE, policy) != base, f"policy.{where} is not covered by the digest"  # type: ignore[arg-type]
        seen.add(where.split(".")[0].split(" ")[0].split("[")[0])
    names = {f.name for f in dataclasses.fields(Scope)} | {f.name for f in dataclasses.fields(Policy)}
    assert names <= seen  # every field was walked, and a new one will be
    limit_fields = {f.name for f in dataclasses.fields(Limit)}
    assert limit_fields == {"value", "percent"}  # walked inside policy.limits above


@dataclasses.dataclass(frozen=True, slots=True)
class FuturePolicy(Policy):
    """Policy with a field added later (as issue 14's `inactive` will be): nobody touched the digest code."""

    inactive_after_days: int = 90


def test_a_field_added_later_is_covered_without_touching_the_digest() -> None:
    base = desired_digest(WANT, SCOPE, FuturePolicy(limits=POLICY.limits))
    assert desired_digest(WANT, SCOPE, FuturePolicy(limits=POLICY.limits, inactive_after_days=30)) != base
    assert desired_digest(WANT, SCOPE, FuturePolicy(limits=POLICY.limits)) == base


def test_digest_is_deterministic_and_normalised() -> None:
    again = Scope(users=Globs(("SVC-*", "*@Example.com")), groups=Globs(("team-*",)), protect=Globs(("Admin",)))
    limits = dict(reversed(list(POLICY.limits.items())))
    reordered = dataclasses.replace(POLICY, limits=limits)
    assert desired_digest(WANT, SCOPE, POLICY) == desired_digest(WANT, again, reordered)
    assert desired_digest(WANT, SCOPE, POLICY) == desired_digest(WANT, SCOPE, POLICY)


def test_the_plan_carries_the_digest_and_evaluated_at_stays_outside_the_plan_digest() -> None:
    state = actual([dc_user("alice", email="alice@example.com"), dc_user("bob", email="bob@example.com")],
                   {"team-docs": []})
    first = diff(WANT, state, scope=SCOPE, policy=POLICY, target=TARGET, now=NOW)
    later = diff(WANT, state, scope=SCOPE, policy=POLICY, target=TARGET, now=NOW + timedelta(hours=7))
    assert first.desired_digest == desired_digest(WANT, SCOPE, POLICY)
    assert (first.evaluated_at, later.evaluated_at) == (NOW, NOW + timedelta(hours=7))
    assert first.digest == later.digest  # plans made the same day are identical (issue 14 truncates cutoffs)


def test_planning_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        diff(WANT, actual([]), scope=SCOPE, policy=POLICY, target=TARGET, now=datetime(2026, 1, 1))


def test_canonical_encodes_each_kind_of_value_and_refuses_the_unknown() -> None:
    east = timezone(timedelta(hours=2))
    assert canonical(datetime(2026, 1, 1, 2, 0, tzinfo=east)) == "2026-01-01T00:00:00Z"
    assert canonical(datetime(2026, 1, 1, tzinfo=UTC)) == canonical(datetime(2026, 1, 1, 2, tzinfo=east))
    assert canonical(Fraction(1, 3)) == "1/3"
    assert canonical(frozenset({"b", "a"})) == ["a", "b"]
    assert canonical(("b", "a")) == ["b", "a"]  # order of a tuple is meaning
    assert canonical(AbsentPolicy.DELETE) == "delete"
    with pytest.raises(TypeError, match="naive datetime"):
        canonical(datetime(2026, 1, 1))
    with pytest.raises(TypeError, match="no canonical form for object"):
        canonical(object())
