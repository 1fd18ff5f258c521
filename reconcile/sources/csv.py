"""The `csv` source: an admin.atlassian.com "Export users" file read as a desired state.

Columns are found by header name, case-insensitively; product (`Jira - acme`) and `Last seen in …`
columns are ignored. Groups come from `Group name` (comma-separated) or pivoted `Group 1..n` columns.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from reconcile.errors import SourceError
from reconcile.model import DesiredState, DesiredUser, Identity, Location, Status, is_email, norm
from reconcile.settings import CsvSourceSettings

log = logging.getLogger(__name__)

# The export's `User status` values (capitalised in real files; compared lower-cased).
STATUSES = {
    "active": Status.ACTIVE,
    "suspended": Status.DISABLED,
    "inactive": Status.DISABLED,
    "deactivated": Status.DISABLED,
}
_PIVOT = re.compile(r"^group\s*\d+$")  # "Pivot to column": `Group 1`, `Group 2`, …


@dataclass(frozen=True, slots=True)
class Columns:
    """Where the columns this source reads are, by index into a row."""

    account_id: int | None
    email: int | None
    name: int | None
    status: int | None
    group_list: int | None
    pivot: tuple[int, ...]
    width: int  # the cells a row needs for every column read to be there (shorter rows are padded)

    @staticmethod
    def find(header: list[str]) -> Columns:
        index: dict[str, int] = {}
        pivot: list[int] = []
        for i, title in enumerate(header):
            key = " ".join(title.strip().lower().split())
            index.setdefault(key, i)
            if _PIVOT.match(key):
                pivot.append(i)
        found = (index.get("user id"), index.get("email", index.get("email address")), index.get("user name"),
                 index.get("user status"), index.get("group name", index.get("group names")))
        used = [i for i in found if i is not None] + pivot
        return Columns(*found, pivot=tuple(pivot), width=max(used, default=-1) + 1)


class CsvSource:
    """Reads one "Export users" CSV file; `read()` raises SourceError with `file:line`."""

    def __init__(self, config: CsvSourceSettings) -> None:
        self.config = config
        self.name = config.name

    async def read(self) -> DesiredState:
        return await asyncio.to_thread(self._read)

    def _read(self) -> DesiredState:
        path = Path(self.config.path)
        try:
            with path.open(newline="", encoding="utf-8-sig") as handle:
                users = self._parse(handle.read().splitlines(keepends=True), str(path))
        except OSError as exc:
            raise SourceError(
                f"csv source {self.name!r}: cannot read {path}: {exc.strerror or exc}",
                hint="check `path:` in the source's configuration (relative paths are relative to "
                "the directory reconcile runs in)",
            ) from exc
        except UnicodeDecodeError as exc:
            raise SourceError(
                f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                hint="export the users again from admin.atlassian.com, or re-save the file as UTF-8",
            ) from exc
        log.info("csv source %s: %d users from %s", self.name, len(users.users), path)
        return users

    def _parse(self, lines: list[str], where: str) -> DesiredState:
        """The rows as a desired state, keyed and grouped as `DesiredState.build` would: each row is built
        normal already (one string per group name), so no second pass over 100,000 users (issue 15)."""
        reader = csv.reader(lines, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                raise SourceError(
                    f"{where}: the file is empty",
                    hint='export the users from admin.atlassian.com (Directory → Users → "Export users")',
                )
            cols = Columns.find(header)
            if cols.account_id is None and cols.email is None:
                raise SourceError(
                    f"{where}:1: neither a `User id` nor an `email` column in the header "
                    f"({', '.join(h.strip() for h in header)})",
                    hint="this does not look like an admin.atlassian.com \"Export users\" file",
                )
            users: dict[str, DesiredUser] = {}
            names: dict[str, str] = {}
            start = reader.line_num + 1
            read_row = self._user
            for row in reader:
                line = start
                start = reader.line_num + 1
                if not (row and row[0].strip()) and not any(cell.strip() for cell in row):
                    continue
                user = read_row(row, cols, Location(where, line), names)
                key = user.key
                normal = key.strip().lower()  # norm(), inlined
                if normal == key:
                    normal = key
                first = users.get(normal)
                if first is not None:
                    raise SourceError(
                        f"{where}:{line}: user {key} is listed twice (also on line "
                        f"{first.origin.line if first.origin else '?'})",
                        hint="export the users again; each user appears once in an export",
                    )
                users[normal] = user
        except csv.Error as exc:
            raise SourceError(f"{where}:{reader.line_num}: malformed CSV: {exc}") from exc
        return DesiredState(users=users, groups=frozenset(names.values()))

    def _user(self, row: list[str], cols: Columns, at: Location, names: dict[str, str]) -> DesiredUser:
        """One row as a desired user; `names` maps each group name as written to one shared normal form."""
        # 100,000 rows: the cells are read inline (no helper call per cell), a short row padded once
        width = len(row)
        if width < cols.width:
            row = row + [""] * (cols.width - width)
        i = cols.account_id
        account_id = row[i].strip() if i is not None else ""
        i = cols.email
        email = row[i].strip() if i is not None else ""
        if email and not is_email(email):
            raise SourceError(f"{at.file}:{at.line}: {email!r} in the email column is not an email")
        key = account_id or email
        if not key:
            raise SourceError(f"{at.file}:{at.line}: the row has neither a user id nor an email")
        i = cols.status
        status_text = row[i].strip() if i is not None else ""
        status = STATUSES.get(status_text.lower()) if status_text else Status.ACTIVE
        if status is None:
            raise SourceError(
                f"{at.file}:{at.line}: unknown user status {status_text!r}",
                hint="expected one of: " + ", ".join(s.capitalize() for s in STATUSES),
            )
        groups: set[str] = set()
        i = cols.group_list
        written = row[i].strip().split(",") if i is not None else []
        for i in cols.pivot:
            written.append(row[i].strip())
        get = names.get
        for g in written:
            name = get(g)
            if name is None:
                if not g.strip():
                    continue
                name = names[g] = names.setdefault(norm(g), norm(g))
            groups.add(name)
        i = cols.name
        display_name = (row[i].strip() if i is not None else "") or None
        if email:
            lowered = email.lower()  # norm() of a stripped cell
            email = email if lowered == email else lowered
        return DesiredUser(key, status, frozenset(groups), Identity(None, email or None, account_id or None),
                           display_name, self.name, at)
