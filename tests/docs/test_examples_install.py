"""Supply chain: no example installs the unrelated `reconcile` distribution; each installs a vetted commit of ours."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted({*ROOT.glob("examples/**/*"), *ROOT.glob("examples/**/.*"), ROOT / "README.md", ROOT / "CONTRIBUTING.md",
               *ROOT.glob("docs/**/*.md"),
               ROOT / ".pre-commit-hooks.yaml"} - {p for p in ROOT.glob("examples/**/*") if p.is_dir()})
WORKFLOWS = ["examples/github-actions/reconcile-plan.yml", "examples/github-actions/reconcile-apply.yml",
             "examples/nightly-drift.yml"]
SHA = "0123456789abcdef0123456789abcdef01234567"
BARE = re.compile(r"reconcile\s*(?:\[[^\]]*\])?\s*(?:[=<>!~]=?.*)?", re.IGNORECASE)  # PEP 508: names ignore case


def requirements(text: str) -> list[str]:
    """What the text asks pip to install: the arguments of each `pip install` and each *PIP_SPEC value."""
    found = []
    for line in re.sub(r"\\\n\s*", " ", text).splitlines():
        if m := re.search(r"pip3?\s+install\s+(.*)", line):
            rest = re.split(r"\s#|\s*(?:&&|\|\||;|\|)|\s[0-9]?[<>]|`", m.group(1))[0]  # up to a comment or operator
            try:
                tokens = shlex.split(rest)
            except ValueError:
                tokens = rest.split()
            found += [t for t in tokens if not t.startswith("-")]
        elif m := re.search(r"PIP_SPEC\s*[:=]\s*(\"[^\"]*\"|'[^']*'|\S+)", line):
            found.append(m.group(1).strip("\"'"))
    return found


def test_our_distribution_is_not_named_reconcile_but_the_command_still_is() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == "atlassian-reconcile"
    assert project["scripts"] == {"reconcile": "reconcile.cli:main"}


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_example_or_doc_installs_the_bare_reconcile_name(path: Path) -> None:
    for spec in requirements(path.read_text(encoding="utf-8")):
        assert not BARE.fullmatch(spec), f"{path.relative_to(ROOT)}: installs `{spec}` from the index (another project)"


def test_the_checker_finds_what_it_must_refuse() -> None:
    for bad in ["pip install reconcile", "pip install -q reconcile==0.1.0 # pinned", 'pip install "reconcile>=0.1"',
                "python -m pip install --quiet Reconcile[ldap] && reconcile plan",
                '  RECONCILE_PIP_SPEC: "reconcile==0.1.0" # pin what you install: a version',
                "pip install \\\n   reconcile"]:
        assert any(BARE.fullmatch(spec) for spec in requirements(bad)), bad
    for good in ['pip install "atlassian-reconcile @ git+https://github.com/reconcile-tool/reconcile@' + SHA + '"',
                 "pip install -e .", "pip install -e '.[test,dev]'", "pip install --require-hashes -r ci.txt",
                 "`reconcile validate` needs no pip install"]:
        assert not any(BARE.fullmatch(spec) for spec in requirements(good)), good


def _step(workflow: str) -> tuple[str, dict[str, str]]:
    doc = YAML(typ="safe").load((ROOT / workflow).read_text(encoding="utf-8"))
    env = {k: str(v) for k, v in doc["env"].items() if k.startswith("RECONCILE_")}
    for job in doc["jobs"].values():
        for step in job["steps"]:
            if "pip install" in str(step.get("run", "")):
                return str(step["run"]), env
    raise AssertionError(f"{workflow}: no install step")


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_each_workflow_installs_exactly_the_vetted_commit_or_refuses(workflow: str, tmp_path: Path) -> None:
    script, env = _step(workflow)
    # A stand-in `python` that records its arguments: the step must call pip with exactly our pinned URL.
    fake = tmp_path / "bin"
    fake.mkdir()
    record = tmp_path / "argv"
    (fake / "python").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\n', encoding="utf-8")
    (fake / "python").chmod(0o755)
    base = {"PATH": f"{fake}:{os.environ.get('PATH', '/usr/bin:/bin')}", **env}

    unset = subprocess.run(["bash", "-eo", "pipefail", "-c", script], env=base, capture_output=True, text=True,
                           check=False)
    assert unset.returncode == 1
    assert "set RECONCILE_COMMIT to the full 40-character commit sha you vetted" in unset.stdout
    assert not record.exists()  # nothing installed

    pinned = subprocess.run(["bash", "-eo", "pipefail", "-c", script], env={**base, "RECONCILE_COMMIT": SHA},
                            capture_output=True, text=True, check=False)
    assert pinned.returncode == 0, pinned.stderr
    assert record.read_text().splitlines() == [
        "-m", "pip", "install", "--quiet", f"atlassian-reconcile @ git+https://github.com/reconcile-tool/reconcile@{SHA}"]


def test_gitlab_installs_the_vetted_commit_in_an_image_with_git() -> None:
    doc = YAML(typ="safe").load((ROOT / "examples/gitlab-ci/.gitlab-ci.yml").read_text(encoding="utf-8"))
    assert doc["default"]["image"] == "python:3.11"  # -slim has no git
    lines = doc["default"]["before_script"]
    assert "grep -Eqx '[0-9a-f]{40}'" in lines[0] and "exit 1" in lines[0]
    assert lines[1] == 'python -m pip install --quiet "atlassian-reconcile @ git+$RECONCILE_REPO@$RECONCILE_COMMIT"'
    assert doc["variables"]["RECONCILE_REPO"] == "https://github.com/reconcile-tool/reconcile"
