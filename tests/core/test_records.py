"""`quick_init` records: the same constructor as the dataclass one, still frozen, and refused for shapes it
cannot reproduce."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from reconcile.model import DesiredUser, Identity, Location, Status, User
from reconcile.records import field_setter, quick_init


@pytest.mark.parametrize("cls", [User, Identity, DesiredUser, Location])
def test_quick_records_keep_signature_defaults_and_immutability(cls: Any) -> None:
    init = vars(cls)["__init__"]
    assert init.__qualname__ == f"{cls.__qualname__}.__init__"
    assert "__setattr__" not in init.__code__.co_names  # ours, not the generated one
    params = list(inspect.signature(cls).parameters.values())
    assert [p.name for p in params] == [f.name for f in dataclasses.fields(cls)]
    assert [p.default for p in params] == [
        inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default for f in dataclasses.fields(cls)]
    made = cls(*(["x"] if params[0].default is inspect.Parameter.empty else []))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.__setattr__(params[0].name, "y")


def test_quick_records_equal_and_hash_as_before() -> None:
    u = User("k", username="u", status=Status.DISABLED)
    assert u == User(ref="k", username="u", email=None, status=Status.DISABLED) and u.status is Status.DISABLED
    assert hash(u) == hash(User("k", "u", None, None, None, Status.DISABLED))
    assert dataclasses.replace(u, email="e@x").email == "e@x"
    d = DesiredUser("K", groups=frozenset({"a"}))
    assert d.identity == Identity() and d.keys() == ("k",)
    with pytest.raises(TypeError):
        DesiredUser()  # type: ignore[call-arg]


def test_quick_init_refuses_what_it_cannot_reproduce() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Factory:
        items: list[str] = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError, match=r"Factory\.items"):
        quick_init(Factory)


def test_desired_user_keys_keep_first_seen_order() -> None:
    d = DesiredUser(" Bob ", identity=Identity(username="bob", email="Bob@X.org", account_id="bob@x.org"))
    assert d.keys() == ("bob", "bob@x.org")
    assert DesiredUser("a@x", identity=Identity(account_id="A1", email="a@x")).keys() == ("a@x", "a1")


def test_desired_user_fields_keep_the_order_the_readers_build_them_in() -> None:
    # the okta, entra_id, scim, google_workspace and csv sources call DesiredUser positionally (100,000 times a
    # read): a field added or moved must fail here, not label a display name as a source
    assert [f.name for f in dataclasses.fields(DesiredUser)] == [
        "key", "status", "groups", "identity", "display_name", "source", "origin", "fact"]
    # the csv source builds Identity positionally, the Confluence DC target User (issue 15)
    assert [f.name for f in dataclasses.fields(Identity)] == ["username", "email", "account_id", "external_id"]
    assert [f.name for f in dataclasses.fields(User)] == [
        "ref", "username", "email", "account_id", "display_name", "status", "unsynced", "idp_managed", "admin",
        "last_active", "billable", "added_to_org"]


def test_a_field_setter_fills_a_record_its_maker_holds_and_the_record_is_as_if_built_with_it() -> None:
    set_groups = field_setter(DesiredUser, "groups")
    made = DesiredUser("k", Status.DISABLED, frozenset(), Identity(email="k@x"), "K", "entra", Location("u"), "f")
    set_groups(made, frozenset({"a", "b"}))
    built = DesiredUser("k", Status.DISABLED, frozenset({"a", "b"}), Identity(email="k@x"), "K", "entra",
                        Location("u"), "f")
    assert made == built and hash(made) == hash(built) and made.groups == frozenset({"a", "b"})
    with pytest.raises(dataclasses.FrozenInstanceError):  # still frozen to everyone else
        made.groups = frozenset()  # type: ignore[misc]
    with pytest.raises(TypeError, match="not a slot"):
        field_setter(DesiredUser, "keys")
