"""Read a desired directory: parse every `*.yaml` in it, check each file, merge, and either return
the typed `Config` or raise ConfigError with every problem as `file:line:col: message`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ruamel.yaml.error import MarkedYAMLError, YAMLError

from reconcile.config import build, policy_rules, yamlfile
from reconcile.config import notify as notifying
from reconcile.config.format import FILE, SCOPE_USERS_HINT
from reconcile.config.nodes import At, Context, Fields, Invalid
from reconcile.errors import ConfigError
from reconcile.model import Location
from reconcile.settings import Config

FLOW_HINT = ('an unquoted ${VAR} inside a flow mapping {...} or list [...] is not valid YAML: quote it '
             '(token: "${VAR}") or use block style')


def load(directory: str | Path, env: Mapping[str, str] | None = None, *, require_env: bool = True,
         now: datetime | None = None) -> Config:
    """The merged, validated configuration of the `*.yaml` files directly in `directory`.

    `require_env=False` is for validation only: a `${VAR}` that is not set goes unchecked (listed in
    `Config.unset`) and the Config must not be used to connect. `now` (timezone-aware; default: the
    wall clock) is what an exemption's `until` is measured from; the CLI passes its `--now`.
    """
    if now is not None and now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    environment: Mapping[str, str] = os.environ if env is None else env
    root = Path(directory)
    if not root.is_dir():
        raise ConfigError([f"{directory}: no such directory; point --desired (or RECONCILE_DESIRED) "
                           "at the directory holding your desired *.yaml files"])
    files = sorted(p for p in root.glob("*.yaml") if p.is_file())
    problems: build.Problems = [
        (Location(str(p)), "ignored: desired files must end in .yaml; rename it")
        for p in sorted(root.glob("*.yml"))
    ]
    if not files:
        raise ConfigError([f"{directory}: no *.yaml files in this directory; write one (see "
                           "`reconcile schema` and desired/ for an example) or point --desired elsewhere",
                           *(_format(problems))])
    docs: list[Fields] = []
    unreadable = False  # a file that could not be read may hold the target: do not claim there is none
    unset: dict[str, None] = {}
    for path in files:
        ctx = Context(file=str(path), env=environment, directory=root, require_env=require_env)
        data = _parse(path, ctx)
        if data is not None and not isinstance(data, Invalid):
            start = Location(ctx.file, 1, 1)
            data = FILE.check(data, At("", start, start), ctx)
        if isinstance(data, Invalid):
            unreadable = True
        elif data is not None:
            docs.append(data)
        problems.extend(ctx.problems)
        unset.update(ctx.unset)
    config = _assemble(docs, [str(p) for p in files], problems, directory=root, unreadable=unreadable,
                       now=now or datetime.now(UTC))
    if problems or config is None:
        raise ConfigError(_format(problems))
    return replace(config, unset=tuple(unset)) if unset else config


def top_level_keys(path: Path) -> frozenset[str]:
    """The top-level keys (`target`, `users`, ...) a desired file writes; empty when it cannot be read."""
    try:
        data = yamlfile.load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YAMLError):
        return frozenset()
    return frozenset(str(k) for k in data) if isinstance(data, Mapping) else frozenset()


def _assemble(docs: list[Fields], files: list[str], problems: build.Problems, *, directory: Path,
              unreadable: bool, now: datetime) -> Config | None:
    sections = build.sections(docs, problems)
    scope = build.scope(sections["scope"].value if "scope" in sections else None)
    # Judge groups against scope only when it is known: not when it has problems of its own, and not
    # when it is missing while some file could not be read (it may be there).
    scope_problems = any(msg.startswith("scope.") for _, msg in problems)
    scope_known = not scope_problems if "scope" in sections else not unreadable
    inline = build.inline(docs, scope if scope_known else None, problems)
    srcs = build.sources(sections.get("sources"), problems)
    section = sections["policy"].value if "policy" in sections else None
    policy = build.policy(section, policy_rules.exemptions(docs, problems))
    target_type = _type_of(sections["target"].value if "target" in sections else None)
    policy_rules.check(section, policy, scope=scope if scope_known else None, target_type=target_type,
                       problems=problems)
    policy_rules.horizon(docs, policy, now, problems)
    if "target" not in sections:
        if not unreadable and not any(msg.startswith("target") for _, msg in problems):
            problems.append((Location(str(directory)),
                             "no target: add a `target:` section to one of the desired files"))
        return None
    written = sections["scope"].value if "scope" in sections else None
    said = any(msg.startswith(("scope:", "scope.")) for _, msg in problems)  # already told about scope
    if written is None and not said and not (unreadable and "scope" not in sections):
        # Without scope.users every account on the target would be managed: that must be said.
        where = sections["scope"].key_loc if "scope" in sections else sections["target"].key_loc
        problems.append((where, "no scope.users: add a scope: section and " + SCOPE_USERS_HINT))
    notify = notifying.build(sections["notify"].value) if "notify" in sections else None
    return Config(target=build.target(sections["target"].value), scope=scope, policy=policy, inline=inline,
                  sources=srcs, files=tuple(files), directory=str(directory), notify=notify)


def _type_of(fields: Fields | None) -> object:
    item = (fields or {}).get("type")
    return None if item is None else item.value


def _parse(path: Path, ctx: Context) -> Any:
    """The YAML document of `path` (None for an empty file), or INVALID after recording a problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return ctx.problem(Location(ctx.file), f"cannot read: {exc.strerror}")
    except UnicodeDecodeError:
        return ctx.problem(Location(ctx.file), "not UTF-8 text; save it as UTF-8")
    duplicates: list[yamlfile.YamlProblem] = []
    try:
        return yamlfile.load(text, duplicates)
    except MarkedYAMLError as exc:
        return ctx.problem(*_yaml_problem(exc, text, ctx.file))
    except YAMLError as exc:  # reader errors (control characters) carry no mark
        return ctx.problem(Location(ctx.file), f"not valid YAML: {type(exc).__name__}")
    finally:
        for duplicate in duplicates:
            ctx.problem(*_yaml_problem(duplicate, text, ctx.file))


def _yaml_problem(exc: MarkedYAMLError, text: str, file: str) -> tuple[Location, str]:
    """A problem from a YAML error, built from its parts (never its text, which may quote a line)."""
    mark = exc.problem_mark or exc.context_mark
    loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
    problem = str(exc.problem or "syntax error")
    if isinstance(exc, yamlfile.YamlProblem):
        return loc, problem + (f" ({exc.context})" if exc.context else "")
    context = f" ({exc.context})" if exc.context else ""
    message = f"YAML syntax error: {problem}{context}"
    lines = text.splitlines()
    line = lines[mark.line] if mark and mark.line < len(lines) else ""
    if "${" in line and "flow" in str(exc.context or "") + problem:
        message += f"; {FLOW_HINT}"
    return loc, message


def _format(problems: build.Problems) -> list[str]:
    ordered = sorted(problems, key=lambda p: (p[0].file, p[0].line, p[0].column))
    return [f"{loc}: {message}" for loc, message in ordered]
