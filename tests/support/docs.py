"""Reading the docs as data: the pages, their fenced blocks, links, GitHub-style anchors and shell commands."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHELL_LANGUAGES = {"sh", "bash", "console", "shell"}


def pages() -> list[Path]:
    """README.md, CONTRIBUTING.md and every page under docs/."""
    return [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> Iterator[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    start, language, body = 0, "", list[str]()
    for number, line in enumerate(lines, 1):
        fence = re.match(r"^(\s*)```(\S*)", line)
        if fence and not start:
            start, language, body = number, fence.group(2), []
        elif fence and start:
            yield Block(path, start, language, "\n".join(body))
            start = 0
        elif start:
            body.append(line)


def prose(path: Path) -> list[str]:
    """The lines outside fenced blocks and indented code, with inline code spans blanked."""
    out, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if re.match(r"^\s*```", line):
            fenced = not fenced
        elif not fenced and not line.startswith("    "):
            out.append(re.sub(r"`[^`]*`", "``", line))
    return out


def github_slug(heading: str) -> str:
    """The anchor GitHub (and, for these headings, mkdocs) gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of the page's headings; a repeated heading gets `-1`, `-2`, … as on GitHub."""
    found, counts = set(), dict[str, int]()
    for line in prose_with_code(path):
        if m := re.match(r"^#{1,6} (.+)$", line):
            slug = github_slug(m.group(1))
            n = counts.get(slug, 0)
            counts[slug] = n + 1
            found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def prose_with_code(path: Path) -> list[str]:
    """The lines outside fenced blocks, inline code kept (headings use it)."""
    out, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if re.match(r"^\s*```", line):
            fenced = not fenced
        elif not fenced:
            out.append(line)
    return out


def links(path: Path) -> Iterator[tuple[int, str]]:
    """(line number among the prose lines, target) of every inline Markdown link."""
    for number, line in enumerate(prose(path), 1):
        for target in re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", line):
            yield number, target


def broken_links(path: Path) -> list[str]:
    """Each relative link of the page whose file or anchor does not exist, as `page: target (why)`."""
    problems = []
    for _, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: — not checked here
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        name = f"{path.relative_to(ROOT)}: {target}"
        if not linked.exists():
            problems.append(f"{name} (no such file)")
        elif ROOT not in linked.parents and linked != ROOT:
            problems.append(f"{name} (outside the repository)")
        elif anchor and (linked.suffix != ".md" or anchor not in anchors(linked)):
            problems.append(f"{name} (no heading with that anchor)")
    return problems


def commands(block: Block) -> list[str]:
    """The shell commands of a block: `$ ` lines of a console block, every non-comment line of a script
    block; continuation lines joined, trailing comments dropped."""
    lines = block.text.splitlines()
    if block.language == "console":
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    joined, current = [], ""
    for line in lines:
        current += line
        if current.endswith("\\"):
            current = current[:-1]
            continue
        command = strip_comment(current).strip()
        current = ""
        if command:
            joined.append(command)
    return joined


def strip_comment(line: str) -> str:
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line
