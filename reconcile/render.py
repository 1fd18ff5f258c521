"""Plan renderings: terminal text (like `terraform plan`), a Markdown PR comment, and the JSON plan file.

Pure functions returning `str`; they walk the same Plan. Strings that come from a target or a desired
file are neutralised for their medium (control characters in text, Markdown/HTML/mentions in Markdown).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from reconcile.plan import Action, ActionKind, Plan, PlanWarning, WarningKind, by_kind, target_label
from reconcile.policy_facts import markdown_section

# A hidden marker a CI job uses to find and update its one PR comment instead of adding another.
COMMENT_MARKER = "<!-- reconcile-plan -->"
NO_CHANGES = "No changes. The target matches the desired state."


@dataclass(frozen=True, slots=True)
class _Style:
    symbol: str
    colour: str  # ANSI SGR code
    verb: str  # as in "Plan: 2 to enable"


STYLES: dict[ActionKind, _Style] = {
    ActionKind.ENABLE: _Style("+", "32", "enable"),
    ActionKind.ADD_MEMBER: _Style("+", "32", "add"),
    ActionKind.REMOVE_MEMBER: _Style("-", "31", "remove"),
    ActionKind.REMOVE_LICENCE: _Style("-", "35", "unlicense"),
    ActionKind.DISABLE: _Style("~", "33", "disable"),
    ActionKind.DELETE: _Style("-", "31", "delete"),
}

WARNING_TITLES: dict[WarningKind, str] = {
    WarningKind.PROTECTED: "protected, never touched",
    WarningKind.IDP_MANAGED: "managed by the identity provider",
    WarningKind.READONLY: "read-only group",
    WarningKind.MISSING_USER: "desired user not on the target",
    WarningKind.MISSING_GROUP: "desired group not on the target",
    WarningKind.AMBIGUOUS: "absent, or a desired user whose email it hides?",
    WarningKind.INCOMPLETE: "not read from the target",
    WarningKind.SOURCE: "reported by a source",
    WarningKind.GUARDED: "delete kept from happening (policy.delete_guard)",
    WarningKind.IRREVERSIBLE: "cannot be undone",
    WarningKind.UPCOMING: "crosses an inactivity cutoff soon",
    WarningKind.UNKNOWN_ACTIVITY: "activity not known",
    WarningKind.EXEMPTION: "exemption expired, expiring or unused",
    WarningKind.SEATS: "licence seats",
}

# C0/C1 control characters and the bidi overrides that can disguise a name (Trojan Source).
_UNSAFE = [*range(0x00, 0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_CLEAN_TABLE = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in _UNSAFE}

# Local part: anything RFC 5322 allows unquoted (and more: over-matching only masks more).
_EMAIL = re.compile(r"""([^\s@<>()\[\]\\,;:"])[^\s@<>()\[\]\\,;:"]*@([\w\-]+(?:\.[\w\-]+)+)""")


def clean(value: str) -> str:
    """Escape control and bidi characters so a name from a target cannot move the cursor or hide text."""
    return value.translate(_CLEAN_TABLE)


def mask_email(value: str) -> str:
    """`alice@example.com` -> `a***@example.com`, for every email inside `value`."""
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", value)


def no_changes(warnings: int) -> str:
    """The no-changes sentence; with warnings it never says the target matches (SPEC §8)."""
    if not warnings:
        return NO_CHANGES
    return f"No changes, but {warnings} warning{'s need' if warnings != 1 else ' needs'} attention."


def plan_sentence(plan: Plan) -> str:
    """The closing line: `Plan: 1 to enable, 2 to add, ...` or the no-changes sentence."""
    if plan.empty:
        return no_changes(len(plan.warnings))
    counts = plan.counts()
    # `unlicense` only appears with an inactivity policy: left out when there is none to do
    parts = [f"{counts[str(kind)]} to {STYLES[kind].verb}" for kind in ActionKind
             if kind is not ActionKind.REMOVE_LICENCE or counts[str(kind)]]
    sentence = "Plan: " + ", ".join(parts) + "."
    if plan.seats_freed:
        sentence += f" {plan.seats_freed} licence seat{'s' if plan.seats_freed != 1 else ''} freed."
    return sentence


def _target_label(plan: Plan) -> str:
    return clean(target_label(plan.target))


# ----------------------------------------------------------------------------------------- text


def text(plan: Plan, *, color: bool) -> str:
    """The terminal rendering; ANSI colours only when `color` is true."""

    def paint(code: str, value: str) -> str:
        return f"\x1b[{code}m{value}\x1b[0m" if color else value

    planned = f" (planned {clean(plan.created_at)})" if plan.created_at else ""
    lines = [
        paint("1", f"reconcile plan for {_target_label(plan)}"),
        f"  digest {plan.digest[:12]}   desired {plan.desired_digest[:12]}   "
        f"actual {plan.actual_fingerprint[:12]}",
        f"  {len(plan.actions)} action{'s' if len(plan.actions) != 1 else ''}, "
        f"{len(plan.warnings)} warning{'s' if len(plan.warnings) != 1 else ''}{planned}",
    ]
    if plan.seats is not None:
        lines.append(f"  {clean(plan.seats.line())}")
    if plan.undoes:
        lines.append(f"  undo plan: reverses what the apply of plan {plan.undoes[:12]} did")
    groups = by_kind(plan.actions)
    if groups:
        lines += ["", "Actions, in execution order:"]
    for kind in ActionKind:
        actions = groups.get(kind)
        if not actions:
            continue
        style = STYLES[kind]
        lines += ["", paint("1", f"  {kind} ({len(actions)})")]
        described = [clean(a.describe()) for a in actions]
        width = min(max(len(d) for d in described), 60)
        for action, desc in zip(actions, described, strict=True):
            line = f"  {paint(style.colour, style.symbol)} {desc.ljust(width)}"
            if action.reason:
                line += "  " + paint("2", f"# {clean(action.reason)}")
            lines.append(line.rstrip())
    if plan.warnings:
        lines += ["", paint("1", f"Warnings ({len(plan.warnings)}):")]
        for w in plan.warnings:
            lines.append(f"  {paint('35', '!')} {w.kind}: {clean(w.subject)}: {clean(w.message)}")
    closing = plan_sentence(plan)
    lines += ["", paint("32;1", closing) if plan.empty and not plan.warnings else paint("1", closing)]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------- markdown

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")  # what could start emphasis, a link or a cell
_MENTION = re.compile(r"(^|[^A-Za-z0-9._%+\-])@")  # an @ that does not belong to an email


def md_text(value: str) -> str:
    """Inline Markdown text: HTML, Markdown punctuation, table pipes and @mentions neutralised."""
    value = clean(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    value = _MD_SPECIAL.sub(r"\\\1", value)
    # A zero-width space after the @ keeps GitHub/GitLab from notifying (the Renovate bot's practice).
    return _MENTION.sub(lambda m: f"{m.group(1)}@&#8203;", value)


def md_code(value: str) -> str:
    """A code span safe inside a table cell, whatever backticks or pipes `value` holds."""
    value = clean(value).replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") or not value else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def _md_header(plan: Plan, digest: str) -> list[str]:
    return [
        COMMENT_MARKER,
        f"## reconcile plan `{digest[:12]}`",
        "",
        f"Target: {md_code(_target_label(plan))}  ",
        f"Digest: `{digest}`  ",
        f"Desired state `{plan.desired_digest[:12]}`, actual state `{plan.actual_fingerprint[:12]}`"
        + (f", planned {md_text(plan.created_at)}" if plan.created_at else ""),
        "",
    ]


def _md_summary(plan: Plan) -> list[str]:
    if plan.empty:
        return [f"**{plan_sentence(plan)}**", ""]
    counts = plan.counts()
    lines = ["| kind | count |", "|---|---:|"]
    lines += [f"| {STYLES[k].symbol} `{k}` | {counts[str(k)]} |" for k in ActionKind]
    lines.append(f"| **total** | **{len(plan.actions)}** |")
    if plan.seats_freed is not None:
        lines.append(f"| licence seats freed | {plan.seats_freed} |")
    return [*lines, "", f"**{plan_sentence(plan)}**", ""]


def _md_warning_list(warnings: Sequence[PlanWarning], fmt: Callable[[str], str]) -> list[str]:
    if not warnings:
        return []
    lines = [f"### Warnings ({len(warnings)})", ""]
    lines += [f"- **{w.kind}** {md_code(fmt(w.subject))}: {md_text(fmt(w.message))}" for w in warnings]
    return [*lines, ""]


def _md_warning_counts(warnings: Sequence[PlanWarning]) -> list[str]:
    if not warnings:
        return []
    counts: dict[WarningKind, int] = {}
    for w in warnings:
        counts[w.kind] = counts.get(w.kind, 0) + 1
    lines = [f"### Warnings ({len(warnings)})", "", "| warning | count |", "|---|---:|"]
    lines += [f"| `{k}` ({WARNING_TITLES.get(k, k)}) | {n} |" for k, n in counts.items()]
    return [*lines, ""]


def _md_row(action: Action, fmt: Callable[[str], str]) -> str:
    subject = md_code(fmt(action.subject.identity))
    if action.unsynced:
        subject += " (unsynced)"
    group = md_code(action.group) if action.group else ""
    return f"| {subject} | {md_code(action.subject.ref)} | {group} | {md_text(fmt(action.reason))} |"


def _md_details(kind: ActionKind, rows: Iterable[str], total: int, shown: int) -> list[str]:
    style = STYLES[kind]
    lines = [
        "<details>",
        f"<summary>{style.symbol} <b>{kind}</b> ({total})</summary>",
        "",
        "| subject | reference | group | reason |",
        "|---|---|---|---|",
        *rows,
    ]
    if shown < total:
        lines.append("")
        lines.append(f"… and {total - shown} more {kind} actions not shown (size limit).")
    return [*lines, "", "</details>", ""]


def _md_footer(plan: Plan, digest: str, plan_file: str) -> list[str]:
    if plan.empty:
        return []
    return [
        "To apply exactly this plan once the change is merged and approved:",
        "",
        "```sh",
        f"reconcile apply {plan_file} --approve {digest}",
        "```",
        "",
    ]


def markdown(
    plan: Plan, *, mask_emails: bool = False, max_chars: int = 60000, plan_file: str = "plan.json"
) -> str:
    """A PR comment: summary table, warnings, collapsible per-kind details, the approval command.

    Always shorter than `max_chars`: rows that do not fit are counted instead of listed, then the
    warning list is replaced by counts per kind, and as a last resort the text is cut. Only the rows
    shown are formatted, so a 100,000-action plan costs little more than its digest.
    """
    fmt: Callable[[str], str] = mask_email if mask_emails else (lambda s: s)
    digest = plan.digest
    head = _md_header(plan, digest)
    summary = [*_md_summary(plan), *markdown_section(plan, md_text, md_code, fmt)]
    footer = _md_footer(plan, digest, plan_file)
    groups = by_kind(plan.actions)
    note = [
        "> The plan is too long for one comment: some details are left out. "
        "`reconcile show PLAN_FILE` prints it whole.",
        "",
    ]

    def assemble(warnings: list[str], details: list[str], notes: list[str]) -> str:
        return "\n".join([*head, *summary, *warnings, *notes, *details, *footer]).rstrip() + "\n"

    for warnings in (_md_warning_list(plan.warnings, fmt), _md_warning_counts(plan.warnings)):
        # Room for the fixed parts, the note, and each kind's <details> frame with its "N more" line.
        overhead = 300 * len(groups) + (20 if groups else 0)
        budget = max_chars - len(assemble(warnings, [], note)) - overhead
        if budget < 0:
            continue
        details: list[str] = ["### Details", ""] if groups else []
        complete = True
        for kind in ActionKind:
            actions = groups.get(kind)
            if not actions:
                continue
            rows: list[str] = []
            for action in actions:
                row = _md_row(action, fmt)
                if len(row) + 1 > budget:
                    budget = 0
                    complete = False
                    break
                budget -= len(row) + 1
                rows.append(row)
            details += _md_details(kind, rows, len(actions), len(rows))
        result = assemble(warnings, details, [] if complete else note)
        if len(result) < max_chars:
            return result
    # Last resort (a tiny max_chars): the counts alone, cut to size.
    result = assemble(_md_warning_counts(plan.warnings), [], [])
    if len(result) < max_chars:
        return result
    cut = "\n… (cut to the size limit)\n"
    return result[: max(0, max_chars - len(cut) - 1)] + cut if max_chars > len(cut) + 1 else ""


# ----------------------------------------------------------------------------------------- json


def json_text(plan: Plan) -> str:
    """The plan file: canonical, indented JSON with the digest (Plan.dumps)."""
    return plan.dumps()
