"""Export the actual state: as a desired-state file (bootstrap a site into git) or as a CSV user report.

Pure functions returning `str`. Secrets are written only as their `${VAR}` / `*_file` references.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime

from reconcile.model import ActualState, Globs, Policy, Scope, Status, User, iso_instant
from reconcile.settings import (
    DC_HTTP,
    AtlassianCloudSettings,
    ConfluenceDcSettings,
    HttpSettings,
    MemorySettings,
    Secret,
    TargetSettings,
)

# A plain YAML scalar that no YAML 1.1 or 1.2 reader turns into anything but this string.
_PLAIN = re.compile(r"^[A-Za-z0-9_./][A-Za-z0-9_.@+\-/:]*$")
_NOT_PLAIN = re.compile(
    r"^(?:y|n|yes|no|on|off|true|false|null|~|\.inf|\.nan|[-+.]?[0-9][0-9A-Za-z_.:+\-]*)$",
    re.IGNORECASE,
)
_SECRET_REF = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")


def scalar(value: str) -> str:
    """`value` as a YAML scalar: plain when unambiguous, else double-quoted (a JSON string is valid YAML)."""
    if _PLAIN.match(value) and not _NOT_PLAIN.match(value) and ": " not in value:
        return value
    return json.dumps(value, ensure_ascii=False)


def flow_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(scalar(v) for v in values) + "]"


def _secret_lines(name: str, secret: Secret | None, placeholder: str, indent: str) -> list[str]:
    """`name: ${VAR}` or `name_file: path`; a secret with no safe reference gets a placeholder."""
    ref = secret.reference if secret is not None else ""
    if ref.startswith("file:"):
        return [f"{indent}{name}_file: {scalar(ref[len('file:'):])}"]
    if not _SECRET_REF.match(ref):
        ref = "${" + placeholder + "}"
    return [f"{indent}{name}: {ref}"]


def _globs_line(key: str, globs: Globs, indent: str = "  ") -> str:
    return f"{indent}{key}: {flow_list(globs.patterns)}"


def _http_lines(http: HttpSettings, default: HttpSettings) -> list[str]:
    lines = [f"    {k}: {v}" for k, v, d in (
        ("timeout", f"{http.timeout:g}", f"{default.timeout:g}"),
        ("concurrency", str(http.concurrency), str(default.concurrency)),
        ("max_retries", str(http.max_retries), str(default.max_retries)),
    ) if v != d]
    if http.ca_file:
        lines.append(f"    ca_file: {scalar(http.ca_file)}")
    return ["  http:", *lines] if lines else []


def target_lines(target: TargetSettings) -> list[str]:
    """The `target:` section that reaches `target` again, with secrets as references."""
    lines = ["target:", f"  type: {target.type}"]
    if isinstance(target, ConfluenceDcSettings):
        lines.append(f"  url: {scalar(target.url)}")
        lines.append("  auth:")
        if target.username is not None:
            lines.append(f"    username: {scalar(target.username)}")
            lines += _secret_lines("password", target.password, "CONFLUENCE_PASSWORD", "    ")
        else:
            lines += _secret_lines("token", target.token, "CONFLUENCE_TOKEN", "    ")
        lines.append(_globs_line("admin_groups", target.admin_groups))
        lines.append(_globs_line("readonly_groups", target.readonly_groups))
        lines += _http_lines(target.http, DC_HTTP)
        lines += ["  insecure: true"] if target.insecure else []
    elif isinstance(target, AtlassianCloudSettings):
        lines.append(f"  org_id: {scalar(target.org_id)}")
        lines.append("  auth:")
        lines += _secret_lines("api_key", target.api_key, "ATLASSIAN_ADMIN_KEY", "    ")
        lines.append(f"  url: {scalar(target.url)}")
        lines.append(f"  directory: {scalar(target.directory)}")
        lines.append(f"  disable: {target.disable}")
        lines.append(f"  delete: {target.delete}")
        if target.site is not None:
            lines += ["  site:", f"    url: {scalar(target.site.url)}", f"    email: {scalar(target.site.email)}"]
            lines += _secret_lines("token", target.site.token, "ATLASSIAN_SITE_TOKEN", "    ")
        lines += _http_lines(target.http, HttpSettings())
        lines += ["  insecure: true"] if target.insecure else []
    elif isinstance(target, MemorySettings):
        lines.append(f"  state: {scalar(target.state)}")
        lines.append(_globs_line("admin_groups", target.admin_groups))
        lines.append(_globs_line("readonly_groups", target.readonly_groups))
    return lines


def policy_lines(policy: Policy) -> list[str]:
    lines = ["policy:", f"  absent: {policy.absent}", f"  unsynced: {policy.unsynced}"]
    if policy.limits:
        limits = ", ".join(f"{k}: {scalar(str(v)) if v.percent else str(v)}"
                           for k, v in sorted(policy.limits.items()))
        lines.append(f"  limits: {{{limits}}}")
    if policy.allow_empty:
        lines.append("  allow_empty: true")
    return lines


def user_keys(actual: ActualState) -> dict[str, str]:
    """ref -> the key a desired file should use: username, else a unique email, else the account id."""
    emails = Counter(u.email.lower() for u in actual.users.values() if u.email and not u.unsynced)
    out = {}
    for user in actual.users.values():
        if user.username:
            out[user.ref] = user.username
        elif user.email and emails[user.email.lower()] == 1:
            out[user.ref] = user.email.lower()
        else:
            out[user.ref] = user.account_id or user.ref
    return out


def to_yaml(
    actual: ActualState,
    scope: Scope,
    target: TargetSettings,
    *,
    policy: Policy | None = None,
    by_group: bool = False,
    omit: Collection[str] = (),
    beside: str | None = None,
) -> str:
    """The actual state as one desired-state file that plans to no changes against the same target.

    In-scope live users (unsynced entries are not desired users) with their status and managed
    groups; membership is written on the users (`groups:`), or with `by_group` on the groups
    (`members:`). Managed groups with no in-scope member are listed so that they stay named.
    The sections in `omit` (`target`, `scope`, `policy`) are written by another file (`beside`).
    """
    keys = user_keys(actual)
    managed = sorted(g for g in actual.groups if scope.owns_group(g))
    users = sorted((u for u in actual.users.values() if not u.unsynced and scope.owns_user(u)),
                   key=lambda u: keys[u.ref].lower())
    in_scope = {u.ref for u in users}
    groups_of = actual.groups_of()
    members = {g: sorted((keys[r] for r in actual.members.get(g, ()) if r in in_scope), key=str.lower)
               for g in managed}
    disabled = sum(1 for u in users if u.status is Status.DISABLED)
    where = " ".join(target.address().values())
    lines = [
        f"# Exported by `reconcile export` from {where}.",
        f"# {len(users)} users in scope ({disabled} disabled), {len(managed)} managed groups.",
        "# Review before committing: this file becomes the desired state.",
    ]
    if omit:
        kept = ", ".join(k for k in ("target", "scope", "policy") if k in omit)
        where = f" (the target: {beside})" if beside else ""
        lines.append(f"# Only users and groups: {kept} come from the other desired files{where}.")
    lines += ["version: 1", ""]
    if "target" not in omit:
        lines += [*target_lines(target), ""]
    if "scope" not in omit:
        lines += ["scope:", _globs_line("users", scope.users), _globs_line("groups", scope.groups),
                  _globs_line("protect", scope.protect), ""]
    if policy is not None and "policy" not in omit:
        lines += [*policy_lines(policy), ""]
    lines.append("users:" if users else "users: {}")
    for user in users:
        fields = []
        if user.status is Status.DISABLED:
            fields.append("status: disabled")
        mine = sorted(g for g in groups_of.get(user.ref, ()) if g in members)
        if mine and not by_group:
            fields.append(f"groups: {flow_list(mine)}")
        lines.append(f"  {scalar(keys[user.ref])}: {{{', '.join(fields)}}}")
    listed = managed if by_group else [g for g in managed if not members[g]]
    if listed:
        lines += ["", "groups:"]
        for group in listed:
            lines.append(f"  {scalar(group)}: {{members: {flow_list(members[group])}}}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------- csv

CSV_COLUMNS = (
    "username", "email", "account_id", "ref", "display_name", "status", "groups", "last_active",
    "unsynced", "admin", "synced",
)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def cell(value: str) -> str:
    """A CSV cell a spreadsheet will not run: a leading = + - @ is prefixed with `'` (OWASP)."""
    return "'" + value if value.startswith(_FORMULA) else value


def _row(user: User, groups: Iterable[str]) -> Mapping[str, str]:
    return {
        "username": user.username or "",
        "email": user.email or "",
        "account_id": user.account_id or "",
        "ref": user.ref,
        "display_name": user.display_name or "",
        "status": str(user.status),
        "groups": ";".join(sorted(groups)),
        "last_active": _latest(user),
        "unsynced": "yes" if user.unsynced else "no",
        "admin": "yes" if user.admin else "no",
        "synced": "yes" if user.idp_managed else "no",
    }


def _latest(user: User) -> str:
    """The latest activity over every product, or empty when none is known."""
    latest = user.last_active.latest() if user.last_active is not None else None
    return iso_instant(latest) if latest is not None else ""


NEVER = "never"  # known, and never active (DC: listed as licensed, no login yet)
DC_PRODUCT = "confluence"  # the one product of Confluence DC's activity: its last login


def activity_columns(actual: ActualState, target_type: str) -> dict[str, Callable[[User], str]]:
    """The per-product activity columns after CSV_COLUMNS: Confluence DC's `last_login`; elsewhere one
    `last_active_<product>` per product key any user has, and Cloud's `added_to_org`."""
    def stamp(value: datetime | None) -> str:
        return iso_instant(value) if value is not None else ""

    if target_type == "confluence-dc":
        def login(user: User) -> str:
            if user.last_active is None:
                return ""  # not revealed: disabled, unlicensed, or before 9.3
            return stamp(user.last_active.get(DC_PRODUCT)) or NEVER
        return {"last_login": login}
    products = sorted({p for u in actual.users.values() if u.last_active for p in u.last_active})
    def product(key: str) -> Callable[[User], str]:
        return lambda user: stamp(user.last_active.get(key)) if user.last_active else ""

    columns = {f"last_active_{p}": product(p) for p in products}
    if target_type == "atlassian-cloud" or any(u.added_to_org for u in actual.users.values()):
        columns["added_to_org"] = lambda user: stamp(user.added_to_org)
    return columns


def to_csv(actual: ActualState, target_type: str = "") -> str:
    """One row per user (unsynced entries included and flagged), sorted by username/email/ref; after the
    fixed columns, the per-product last activity of `activity_columns` (what inactivity reports sell)."""
    extra = activity_columns(actual, target_type)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=(*CSV_COLUMNS, *extra), lineterminator="\n")
    writer.writeheader()
    groups_of = actual.groups_of()
    for user in sorted(actual.users.values(), key=lambda u: (u.label.lower(), u.ref)):
        row = {**_row(user, groups_of.get(user.ref, ())), **{name: value(user) for name, value in extra.items()}}
        writer.writerow({k: cell(v) for k, v in row.items()})
    return out.getvalue()
