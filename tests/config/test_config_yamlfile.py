"""The desired-file parser: YAML 1.2 core-schema values with positions, the same whichever parser
(libyaml or ruamel's pure YAML 1.2 parser) produced the events.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from reconcile.config import yamlfile
from reconcile.config.yamlfile import YamlMap, YamlProblem

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted([*(ROOT / "tests" / "data" / "config" / "good").glob("*/*.yaml"), *(ROOT / "desired").rglob("*.yaml")])


def with_positions(value: Any) -> Any:
    """A value with every position spelled out, to compare two parses completely.

    An empty value has no position of its own (the parsers disagree on it; problems use its key's).
    """
    if isinstance(value, dict):
        marks: Any = value.lc  # type: ignore[attr-defined] # ruamel's CommentedMap, a dict to mypy
        return {k: (marks.key(k), v is not None and marks.value(k), with_positions(v))
                for k, v in value.items()}
    if isinstance(value, list):
        items: Any = value.lc  # type: ignore[attr-defined] # ruamel's CommentedSeq, a list to mypy
        return [(items.item(i), with_positions(v)) for i, v in enumerate(value)]
    return (type(value).__name__, value)


def pure(text: str) -> Any:
    return yamlfile._Composer(iter(YAML(typ="safe", pure=True).parse(text))).document()


@pytest.mark.skipif(not yamlfile.FAST, reason="ruamel.yaml.clib is not installed")
@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_libyaml_and_the_pure_parser_agree(path: Path) -> None:
    text = path.read_text()
    fast = yamlfile._Composer(yamlfile._libyaml_events(text)).document()
    assert with_positions(fast) == with_positions(pure(text))


def test_values_follow_the_yaml_1_2_core_schema() -> None:
    data = yamlfile.load(
        "a: no\nb: on\nc: 0o17\nd: 0x1F\ne: 012\nf: 1.5e3\ng: .inf\nh: ~\ni:\nj: 'true'\nk: True\n"
        "l: !!str 25\nm: -.5\nn: .NaN\n"
    )
    assert {k: v for k, v in data.items() if k != "n"} == {
        "a": "no", "b": "on", "c": 15, "d": 31, "e": 12, "f": 1500.0, "g": math.inf, "h": None, "i": None,
        "j": "true", "k": True, "l": "25", "m": -0.5}
    assert math.isnan(data["n"])


def test_positions_of_keys_values_and_items() -> None:
    data = yamlfile.load("target:\n  url: 'https://x'\nscope:\n  groups: [a, \"b\"]\n")
    assert isinstance(data, YamlMap)
    assert data.lc.key("scope") == (2, 0)
    assert data["target"].lc.value("url") == (1, 7)
    assert [data["scope"]["groups"].lc.item(i) for i in range(2)] == [(3, 11), (3, 14)]


def test_anchors_aliases_and_merge_keys() -> None:
    data = yamlfile.load("base: &b {status: disabled, groups: [x]}\nu1: *b\nu2:\n  <<: *b\n  status: active\n")
    assert data["u1"] == {"status": "disabled", "groups": ["x"]}
    assert data["u2"] == {"status": "active", "groups": ["x"]}
    assert data["u2"].lc.key("groups") == (0, 28)  # where the merged key was written


def test_a_url_in_a_flow_mapping_is_yaml_1_2() -> None:
    # libyaml (YAML 1.1) refuses the ':' inside the plain scalar; the YAML 1.2 parser accepts it.
    assert yamlfile.load("site: {url: https://acme.atlassian.net, email: a@example.com}\n") == {
        "site": {"url": "https://acme.atlassian.net", "email": "a@example.com"}}


@pytest.mark.parametrize(("text", "problem", "line"), [
    ("a: 1\na: 2\n", "duplicate key 'a' in this mapping (first at line 1, column 1); write each key once", 1),
    ("a: 1\n---\nb: 2\n", "but found another document (---); write one document per file", 1),
    ("a: *nothing\n", "found undefined alias '*nothing'", 0),
    ("a: !secret x\n", "unsupported tag !secret; remove it", 0),
    ("? [a]\n: 1\n", "a mapping or list cannot be a key", 0),
])
def test_composition_problems(text: str, problem: str, line: int) -> None:
    with pytest.raises(YamlProblem) as caught:
        yamlfile.load(text)
    assert caught.value.problem == problem
    assert caught.value.problem_mark is not None and caught.value.problem_mark.line == line


def test_syntax_errors_come_from_the_yaml_1_2_parser() -> None:
    with pytest.raises(MarkedYAMLError) as caught:
        yamlfile.load("a: {t: ${X}}\n")
    assert caught.value.problem == "expected ',' or '}', but got '{'"
