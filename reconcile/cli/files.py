"""Files the CLI writes and reads: atomic writes, output paths checked before any network call, plan files.

Every failure is a ReconcileError naming the path (never an "internal error").
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from reconcile.errors import ReconcileError, UsageError

if TYPE_CHECKING:
    from reconcile.plan import Plan
    from reconcile.settings import Config


def write_atomic(path: Path, text: str) -> None:
    """Write a file so that readers never see half of it; ReconcileError naming the path if it cannot be."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise ReconcileError(f"cannot write {path}: {exc.strerror or exc}",
                             hint="give a path in a directory you can write to") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ReconcileError(f"cannot write {path}: {exc.strerror or exc}",
                                 hint="check the free space and the permissions there") from exc
        raise


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_directory(path: Path, what: str) -> None:
    """Refuse (exit 1, before any network call) a directory that cannot be used or created."""
    if path.exists():
        if not path.is_dir():
            raise ReconcileError(f"{what} {path} is not a directory", hint="give a directory, or a new path")
        if not os.access(path, os.W_OK | os.X_OK):
            raise ReconcileError(f"{what} {path} is not writable", hint="give a directory you can write to")
        return
    parent = _nearest_existing(path.parent)
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ReconcileError(f"{what} {path} cannot be created: {parent} is not a writable directory",
                             hint="give a path in a directory you can write to")


def check_writable(path: Path, what: str) -> None:
    """Refuse (exit 1, before any network call) an output file that cannot be written."""
    if path.is_dir():
        raise ReconcileError(f"{what} {path} is a directory", hint="give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise ReconcileError(f"{what} {path} is not writable", hint="give a file you can write")
    parent = _nearest_existing(path.parent)
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ReconcileError(f"{what} {path} cannot be written: {parent} is not a writable directory",
                             hint="give a path in a directory you can write to")


def check_overwrite(out_file: Path, *, force: bool) -> None:
    """Refuse (exit 1, before any network call) to replace an existing file without --force."""
    if out_file.exists() and not force:
        raise ReconcileError(f"--out {out_file} exists; nothing was written",
                             hint="pass --force to overwrite it, or give a new file")


def export_omits(out_file: Path, config: Config) -> tuple[frozenset[str], Path | None]:
    """What an export to `out_file` leaves out, and the file holding the target it leaves out (or None).

    A file inside the desired directory joins the other files there: sections they already write
    (`target`, `scope`, `policy`) are not written again. Users and groups written there too would be
    defined twice, so that is refused (exit 1, before any network call).
    """
    from reconcile.config.loader import top_level_keys

    if out_file.resolve().parent != Path(config.directory).resolve():
        return frozenset(), None
    others = [Path(f) for f in config.files if Path(f).resolve() != out_file.resolve()]
    written = {p: top_level_keys(p) for p in others}
    for path, keys in written.items():
        if keys & {"users", "groups"}:
            raise ReconcileError(
                f"{path} already writes users or groups: exported to {out_file} they would be defined twice",
                hint=f"export over that file (--out {path} --force), or to a file outside {config.directory}")
    omit = frozenset(k for keys in written.values() for k in keys & {"target", "scope", "policy"})
    holder = next((p for p, keys in written.items() if "target" in keys), None)
    # Policy has defaults: beside a target written elsewhere, the exported file only adds users and groups.
    return (omit | {"policy"} if holder is not None else omit), holder


def read_plan_file(path: Path) -> Plan:
    from reconcile.plan import Plan, not_a_plan

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read plan file {path}: {exc.strerror}",
                         hint="give the file written by `reconcile plan --out FILE`") from exc
    except UnicodeDecodeError as exc:
        raise not_a_plan(str(path), f"not UTF-8 text (byte {exc.start}: binary, or damaged?)") from exc
    return Plan.loads(text, source=str(path))
