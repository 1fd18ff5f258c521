"""The docs hold together: the CLI reference is the CLI's own --help, the site builds with
`mkdocs build --strict`, and every relative link and anchor of README.md, CONTRIBUTING.md and docs/ resolves.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reconcile.cli import reference
from tests.support.docs import ROOT, broken_links, github_slug, pages


def test_the_cli_reference_is_what_the_cli_prints() -> None:
    generated = reference.generate()
    written = reference.DOC.read_text(encoding="utf-8") if reference.DOC.exists() else ""
    assert written == generated, f"docs/cli.md differs from the CLI's --help; regenerate it: {reference.REGENERATE}"


def test_the_reference_covers_every_command_at_a_fixed_width_without_colour() -> None:
    text = reference.generate()
    for name in ["apply", "validate", "plan", "show", "export", "schema", "sim"]:
        assert f"## reconcile {name}\n" in text
        assert name in reference.command_names()
    assert "\x1b[" not in text
    assert max(len(line) for line in text.splitlines() if line.startswith(("│", "╭", "╰"))) == reference.WIDTH


def test_the_site_builds_with_mkdocs_strict(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
                          capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site" / "cli" / "index.html").exists()


def test_every_page_is_in_the_site_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in (ROOT / "docs").rglob("*.md"):
        assert f": {page.relative_to(ROOT / 'docs').as_posix()}\n" in nav, page


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_the_link_checker_finds_what_is_broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tests.support.docs.ROOT", tmp_path)
    (tmp_path / "a.md").write_text("# Title: here (too)\n\n## Same\n\n## Same\n", encoding="utf-8")
    page = tmp_path / "b.md"
    page.write_text("[ok](a.md#title-here-too) [dup](a.md#same-1) [self](#top) [gone](c.md) [bad](a.md#nope)\n"
                    "`[code](x.md)` [web](https://example.com/x.md)\n```sh\n[fenced](y.md)\n```\n# Top\n",
                    encoding="utf-8")
    assert broken_links(page) == ["b.md: c.md (no such file)", "b.md: a.md#nope (no heading with that anchor)"]
    assert github_slug("`--desired` on each command") == "--desired-on-each-command"
    assert github_slug("LDAP / Active Directory") == "ldap--active-directory"


def test_the_readme_stays_a_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 350, "README.md is for newcomers: move details into docs/"
    assert readme.index("make demo") < readme.index("## A five-minute tour")
