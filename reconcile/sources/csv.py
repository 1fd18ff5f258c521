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

    @staticmethod
    def find(header: list[str]) -> Columns:
        index: dict[str, int] = {}
        pivot: list[int] = []
        for i, title in enumerate(header):
            key = " ".join(title.strip().lower().split())
            index.setdefault(key, i)
            if _PIVOT.match(key):
                pivot.append(i)
        return Columns(
            account_id=index.get("user id"),
            email=index.get("email", index.get("email address")),
            name=index.get("user name"),
            status=index.get("user status"),
            group_list=index.get("group name", index.get("group names")),
            pivot=tuple(pivot),
        )


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
        log.info("csv source %s: %d users from %s", self.name, len(users), path)
        return DesiredState.build(users)

    def _parse(self, lines: list[str], where: str) -> list[DesiredUser]:
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
            users: list[DesiredUser] = []
            names: dict[str, str] = {}
            first_line: dict[str, int] = {}
            start = reader.line_num + 1
            for row in reader:
                line = start
                start = reader.line_num + 1
                if not any(cell.strip() for cell in row):
                    continue
                user = self._user(row, cols, Location(where, line), names)
                seen = first_line.setdefault(norm(user.key), line)
                if seen != line:
                    raise SourceError(
                        f"{where}:{line}: user {user.key} is listed twice (also on line {seen})",
                        hint="export the users again; each user appears once in an export",
                    )
                users.append(user)
        except csv.Error as exc:
            raise SourceError(f"{where}:{reader.line_num}: malformed CSV: {exc}") from exc
        return users

    def _user(self, row: list[str], cols: Columns, at: Location, names: dict[str, str]) -> DesiredUser:
        """One row as a desired user; `names` maps each group name as written to one shared normal form."""
        width = len(row)

        def cell(index: int | None) -> str:
            return row[index].strip() if index is not None and index < width else ""

        account_id = cell(cols.account_id)
        email = cell(cols.email)
        if email and not is_email(email):
            raise SourceError(f"{at.file}:{at.line}: {email!r} in the email column is not an email")
        key = account_id or email
        if not key:
            raise SourceError(f"{at.file}:{at.line}: the row has neither a user id nor an email")
        status_text = cell(cols.status)
        status = STATUSES.get(status_text.lower()) if status_text else Status.ACTIVE
        if status is None:
            raise SourceError(
                f"{at.file}:{at.line}: unknown user status {status_text!r}",
                hint="expected one of: " + ", ".join(s.capitalize() for s in STATUSES),
            )
        written = [g for g in cell(cols.group_list).split(",") if g.strip()]
        written += [cell(i) for i in cols.pivot if cell(i)]
        groups: set[str] = set()
        for g in written:
            name = names.get(g)
            if name is None:
                name = names[g] = names.setdefault(norm(g), norm(g))
            groups.add(name)
        return DesiredUser(
            key=key,
            status=status,
            groups=frozenset(groups),
            identity=Identity(account_id=account_id or None, email=norm(email) if email else None),
            display_name=cell(cols.name) or None,
            source=self.name,
            origin=at,
        )
