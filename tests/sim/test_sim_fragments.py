"""`Fragments.many` (reconcile/sim/fragments.py): a page's objects encoded once, again when they change."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from reconcile.sim.fragments import Fragments


@dataclass
class Person:
    id: str
    name: str


def test_a_page_is_encoded_once_and_again_only_for_what_changed() -> None:
    people = {p.id: p for p in (Person("a", "Ann"), Person("b", "Bo"))}
    rendered: list[str] = []

    def render(pid: str) -> dict[str, str]:
        rendered.append(pid)
        return {"id": pid, "name": people[pid].name}

    fragments = Fragments()
    page = fragments.many("base", ["a", "b"], lambda pid: people[pid].name, render)
    assert msgspec.json.decode(msgspec.json.encode(page)) == [{"id": "a", "name": "Ann"}, {"id": "b", "name": "Bo"}]
    people["b"].name = "Bob"  # a mutation in place: its fragment must not outlive it
    again = fragments.many("base", ["a", "b"], lambda pid: people[pid].name, render)
    assert msgspec.json.decode(msgspec.json.encode(again))[1] == {"id": "b", "name": "Bob"}
    assert rendered == ["a", "b", "b"]
    fragments.many("other", ["a"], lambda pid: people[pid].name, render)  # another scope: its own table
    assert rendered == ["a", "b", "b", "a"]


def test_items_keyed_by_a_function_share_a_fragment_per_key() -> None:
    fragments = Fragments()
    items = [Person("a", "Ann"), Person("a", "Ann")]  # equal, but unhashable: keyed by id
    page = fragments.many("base", items, lambda p: p.name, lambda p: {"id": p.id}, key=lambda p: p.id)
    assert page[0] is page[1]


def test_rows_that_depend_on_the_key_alone_are_rendered_once_and_never_versioned() -> None:
    fragments = Fragments()
    rendered: list[str] = []

    def render(pid: str) -> dict[str, str]:
        rendered.append(pid)
        return {"id": pid}

    first = fragments.many(("member", ("id",)), ["a", "b", "a"], None, render)
    again = fragments.many(("member", ("id",)), ["b", "c"], None, render)
    assert [msgspec.json.decode(r) for r in (*first, *again)] == [{"id": k} for k in "abab" + "c"]
    assert rendered == ["a", "b", "c"] and first[0] is first[2] and again[0] is first[1]


def test_rows_with_versions_given_serve_a_current_page_as_is_and_rerender_only_the_stale_rows() -> None:
    fragments = Fragments()
    rendered: list[str] = []

    def render(person: Person) -> dict[str, str]:
        rendered.append(person.id)
        return {"id": person.id, "name": person.name}

    people = [Person("a", "Ann"), Person("b", "Bo"), Person("a", "Ann")]  # a row twice on one page: rendered once

    def page() -> list[msgspec.Raw]:
        return fragments.rows("scope", people, [p.id for p in people], [p.name for p in people], render)

    first = page()
    assert rendered == ["a", "b"] and first[0] is first[2]
    again = page()  # every row cached and current: the same fragments, nothing rendered
    assert rendered == ["a", "b"] and all(x is y for x, y in zip(first, again, strict=True))
    people[1].name = "Bob"  # a mutation in place: a new version, that row alone rendered again
    changed = page()
    assert rendered == ["a", "b", "b"] and changed[0] is first[0]
    assert msgspec.json.decode(changed[1]) == {"id": "b", "name": "Bob"}
