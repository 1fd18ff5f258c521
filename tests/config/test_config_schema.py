"""The JSON Schema and load() agree: both accept the good directories, both reject the bad cases that
are schema-level (and the schema accepts the ones only load() can judge: cross-file, env, scope).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from reconcile.config import json_schema
from tests.config.test_config_problems import CASES, Case
from tests.support.config import as_json, load, write

ROOT = Path(__file__).resolve().parents[2]
GOOD = sorted(p for p in (ROOT / "tests" / "data" / "config" / "good").iterdir() if p.is_dir())
# The shipped example configurations must stay valid too.
SHIPPED = [d for d in (ROOT / "desired", *sorted((ROOT / "desired" / "examples").glob("*")))
           if d.is_dir() and any(d.glob("*.yaml"))]
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json_schema())


def schema_errors(directory: Path) -> list[str]:
    out = []
    for path in sorted(directory.glob("*.yaml")):
        for error in validator().iter_errors(as_json(path)):
            out.append(f"{path.name}: {'/'.join(map(str, error.absolute_path))}: {error.message}")
    return out


def env_for(directory: Path, scratch: Path) -> dict[str, str]:
    """A plausible value for every ${VAR} the directory references (a real file for `*_FILE`)."""
    (scratch / "file").write_text("contents\n")
    names = {m for p in directory.glob("*.yaml") for m in ENV_REF.findall(p.read_text())}
    plausible = {"_FILE": str(scratch / "file"), "LDAP_URL": "ldap://ldap.example.com", "_URL": "https://example.com"}
    return {n: next((v for end, v in plausible.items() if n.endswith(end)), f"value-of-{n}") for n in names}


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(json_schema())


def test_shipped_schema_file_is_current() -> None:
    shipped = json.loads((ROOT / "reconcile" / "schema.json").read_text())
    assert shipped == json_schema(), "regenerate it: reconcile schema > reconcile/schema.json"


@pytest.mark.parametrize("directory", GOOD + SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_good_directories_pass_both(directory: Path, tmp_path: Path) -> None:
    assert schema_errors(directory) == []
    load(directory, env_for(directory, tmp_path))


SCHEMA_CASES = [c for c in CASES if c.schema is not None]


@pytest.mark.parametrize("case", SCHEMA_CASES, ids=[c.id for c in SCHEMA_CASES])
def test_schema_rejects_exactly_the_schema_level_cases(case: Case, tmp_path: Path) -> None:
    directory = write(tmp_path / "desired", case.files)
    errors = schema_errors(directory)
    if case.schema:
        assert errors, "load() rejects this, the schema should too"
    else:
        assert errors == [], "only load() can judge this case (cross-file, environment or scope)"


def test_schema_documents_defaults_and_choices() -> None:
    target = json_schema()["properties"]["target"]  # type: ignore[index]
    dc = next(b["then"] for b in target["allOf"] if b["if"]["properties"]["type"]["const"] == "confluence-dc")
    assert dc["properties"]["admin_groups"]["default"] == ["confluence-administrators"]
    assert dc["required"] == ["type", "url", "auth"]
    assert {tuple(b["required"]) for b in dc["properties"]["auth"]["oneOf"]} == {
        ("token",), ("token_file",), ("password", "username"), ("password_file", "username")}
