"""Whatever a desired file holds, load() returns a Config or raises ConfigError: never a traceback."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from reconcile import config
from reconcile.config.format import FILE
from reconcile.config.nodes import ListOf, MapOf, Node, Nullable
from reconcile.config.records import Record, Tagged
from reconcile.errors import ConfigError
from reconcile.settings import Config
from tests.support.examples import examples


def vocabulary(node: Node, out: set[str]) -> set[str]:
    """Every key and enum word of the format, so that generated files get deep into it."""
    if isinstance(node, Record):
        out.update(node.fields)
        for child in node.fields.values():
            vocabulary(child, out)
    elif isinstance(node, Tagged):
        out.update(node.variants)
        for record in node.variants.values():
            vocabulary(record, out)
    elif isinstance(node, ListOf):
        vocabulary(node.item, out)
    elif isinstance(node, MapOf):
        vocabulary(node.value, out)
    elif isinstance(node, Nullable):
        vocabulary(node.inner, out)
    values = getattr(node, "values", ())
    out.update(values)
    return out


WORDS = sorted(vocabulary(FILE, set()))
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 200), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(WORDS), st.sampled_from(["${TOKEN}", "${MISSING}", "a@example.com", "team-[", "10%", "*",
                                            "ldaps://x", "https://x", "(uid=*)", "x.csv"]),
    st.text(max_size=8),
)
keys = st.one_of(st.sampled_from(WORDS), st.sampled_from(["a@example.com", "team-a", "corp"]), st.text(max_size=6))
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=25,
)
documents = st.dictionaries(st.sampled_from(list(FILE.fields)) | keys, values, max_size=7)
PIECES = [*"ab:-{}[]\"' \n\t#&*!|>%@`,?\\$", "\n  ", "${X}", "target", "users", "version: 1\n"]


def dump(data: Any) -> str:
    stream = io.StringIO()
    YAML(typ="safe", pure=True).dump(data, stream)
    return stream.getvalue()


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(documents, min_size=1, max_size=3))
def test_any_document_gives_a_config_or_config_error(docs: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for i, doc in enumerate(docs):
            (Path(tmp) / f"f{i}.yaml").write_text(dump(doc))
        try:
            result = config.load(tmp, {"TOKEN": "t"})
        except ConfigError as exc:
            assert exc.problems and all(p.startswith(tmp) for p in exc.problems)
        else:
            assert isinstance(result, Config)


@settings(max_examples=examples(150), deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40).map("".join))
def test_any_text_gives_a_config_or_config_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "main.yaml").write_text(text)
        try:
            config.load(tmp, {})
        except ConfigError as exc:
            assert exc.problems
