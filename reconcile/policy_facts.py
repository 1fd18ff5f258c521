"""Per-user facts of policy actions for reports: last active, the rule, its cutoff, an exemption nearby.

Read back from the plan alone (each action's `inactive` precondition and the plan's `policy` record),
so the PR comment and the run report say exactly what the reviewed plan says. Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reconcile.model import iso_instant
from reconcile.plan import Action, Plan

MAX_ROWS = 200  # in a PR comment; the plan file and the run report carry every one


@dataclass(frozen=True, slots=True)
class Fact:
    action: Action
    rule: str
    last_active: str | None  # None: never active
    source: str
    cutoff: str
    exemption: str | None  # an exemption of the user the plan saw (expired, expiring, or not covering it)


def facts(plan: Plan) -> list[Fact]:
    out = []
    for action in plan.actions:
        fact = action.precondition.inactive
        if fact is None:
            continue
        keys = (action.subject.identity, action.subject.ref)
        note = plan.policy.exemption_of(keys) if plan.policy is not None else None
        nearby = (f"{note.state} until {note.until} (owner {note.owner}: {note.reason})"
                  if note is not None else None)
        last = iso_instant(fact.last_active) if fact.last_active else None
        out.append(Fact(action, fact.rule or "inactive", last, fact.source, iso_instant(fact.cutoff), nearby))
    return out


def fact_json(fact: Fact) -> dict[str, Any]:
    return {"rule": fact.rule, "last_active": fact.last_active, "source": fact.source, "cutoff": fact.cutoff,
            "exemption": fact.exemption}


def markdown_section(plan: Plan, text: Callable[[str], str], code: Callable[[str], str],
                     fmt: Callable[[str], str]) -> list[str]:
    """`### Policy facts`: one row per policy action, and the seat summary line."""
    lines: list[str] = []
    if plan.seats is not None:
        lines += [f"**{text(plan.seats.line())}**", ""]
    rows = facts(plan)
    if plan.policy is not None and plan.policy.cutoffs:
        shown = ", ".join(f"{c.rule} {c.window}: {iso_instant(c.cutoff)}" for c in plan.policy.cutoffs)
        lines += [f"Cutoffs: {text(shown)}", ""]
    if not rows:
        return lines
    lines += [f"### Policy facts ({len(rows)})", "",
              "| user | action | rule | last active | cutoff | exemption |", "|---|---|---|---|---|---|"]
    for f in rows[:MAX_ROWS]:
        last = f"{f.last_active} ({f.source})" if f.last_active else f"never ({f.source})"
        lines.append(f"| {code(fmt(f.action.subject.identity))} | `{f.action.kind}` {code(f.action.group or '')} | "
                     f"{f.rule} | {text(last)} | {f.cutoff} | {text(fmt(f.exemption or ''))} |")
    if len(rows) > MAX_ROWS:
        lines.append(f"… and {len(rows) - MAX_ROWS} more (the plan file lists every one).")
    return [*lines, ""]
