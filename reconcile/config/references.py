"""`${VAR}`-only credentials (`token:`), credential files (`token_file:`) and paths relative to the
desired directory. A credential's value never appears in a problem message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from reconcile.config.nodes import ENV_NAME, INVALID, At, Context, Invalid, deferred, expand
from reconcile.config.scalars import Text
from reconcile.settings import Secret


class SecretRef(Text):
    """A credential: only `${VAR}` references are allowed, never the value itself."""

    def __init__(self, name: str, doc: str = "", *, file_key: str | None = "") -> None:
        super().__init__(rf"^(?:\$\{{{ENV_NAME}\}})+$", expand=True, doc=doc)
        self.name = name
        self.file_key = f"{name}_file" if file_key == "" else file_key  # None: there is no file form

    def check(self, value: Any, at: At, ctx: Context) -> Any:
        if not isinstance(value, str) or not self.regex or not self.regex.search(value):
            # never echo the value: it may be the credential itself
            other = f" or {self.file_key}:" if self.file_key else ""
            return ctx.problem(at.loc, f"{at.path}: literal secret: use ${{ENV_VAR}}{other}")
        if deferred(str(value), ctx):
            return Secret("", reference=str(value))  # validation without the variable: never used
        expanded = expand(str(value), at, ctx)
        if isinstance(expanded, Invalid):
            return INVALID
        if not expanded.strip():
            return ctx.problem(at.loc, f"{at.path}: {value} is empty; set it to the credential")
        return Secret(expanded, reference=str(value))

    def own_schema(self) -> dict[str, Any]:
        assert self.pattern
        return {"type": "string", "pattern": self.pattern}


class FilePath(Text):
    """A path, `${VAR}`-expanded, relative to the desired directory; optionally must be readable."""

    def __init__(self, *, must_exist: bool = True, doc: str = "", default: Any = None) -> None:
        super().__init__(expand=True, doc=doc, default=default)
        self.must_exist = must_exist

    def check(self, value: Any, at: At, ctx: Context) -> Any:
        text = super().check(value, at, ctx)
        if isinstance(text, Invalid) or deferred(text, ctx):
            return text
        path = ctx.directory / Path(text).expanduser()
        if self.must_exist and not path.is_file():
            return ctx.problem(at.loc, f"{at.path}: no such file {path}; fix the path (relative paths "
                               "start at the desired directory)")
        return str(path)


class SecretFile(FilePath):
    """`token_file:` and friends: the credential is the file's content (trailing newline dropped)."""

    def check(self, value: Any, at: At, ctx: Context) -> Any:
        path = super().check(value, at, ctx)
        if isinstance(path, Invalid):
            return path
        if deferred(path, ctx):
            return Secret("", reference=f"file:{path}")  # validation without the variable: never used
        try:
            content = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            return ctx.problem(at.loc, f"{at.path}: cannot read {path}: {exc.strerror}")
        except UnicodeDecodeError:
            return ctx.problem(at.loc, f"{at.path}: {path} is not UTF-8 text")
        if not content:
            return ctx.problem(at.loc, f"{at.path}: {path} is empty; write the credential into it")
        return Secret(content, reference=f"file:{os.path.normpath(path)}")
