"""Renderings of a plan: golden files, colour, ordering, escaping, masking and the comment size limit.

Regenerate the golden files after an intended change with `UPDATE_GOLDEN=1 pytest tests/core/test_render_plan.py`
and review the diff.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from reconcile import render
from reconcile.diff import diff
from reconcile.model import ActualState, DesiredState, DesiredUser, Globs, Group, Policy, Scope, Status, User
from reconcile.plan import Action, ActionKind, Plan, PlanWarning, Subject, WarningKind, order
from tests.support.builders import NOW
from tests.support.examples import examples
from tests.support.render import TARGET, empty_plan, huge_plan, realistic_plan

GOLDEN = Path(__file__).parents[1] / "golden"
ESC = "\x1b"

RENDERINGS: dict[str, Callable[[Plan], str]] = {
    "plan.txt": lambda p: render.text(p, color=False),
    "plan.color.txt": lambda p: render.text(p, color=True),
    "plan.md": render.markdown,
    "plan.masked.md": lambda p: render.markdown(p, mask_emails=True),
}


@pytest.mark.parametrize("name", sorted(RENDERINGS))
def test_golden(name: str) -> None:
    got = RENDERINGS[name](realistic_plan())
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(got, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1 and review it"
    assert got == path.read_text(encoding="utf-8")


@pytest.mark.parametrize(("name", "render_empty"), [
    ("empty.txt", lambda p: render.text(p, color=False)),
    ("empty.md", render.markdown),
])
def test_golden_empty(name: str, render_empty: Callable[[Plan], str]) -> None:
    got = render_empty(empty_plan())
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(got, encoding="utf-8")
    assert got == path.read_text(encoding="utf-8")
    assert render.NO_CHANGES in got
    assert "--approve" not in got  # nothing to approve


def test_plain_text_has_no_escape_codes_and_colour_text_colours_each_symbol() -> None:
    plan = realistic_plan()
    plain = render.text(plan, color=False)
    assert ESC not in plain
    coloured = render.text(plan, color=True)
    assert "\x1b[32m+\x1b[0m add alice@example.com" in coloured
    assert "\x1b[31m-\x1b[0m remove bob@example.com" in coloured
    assert "\x1b[33m~\x1b[0m disable mallory" in coloured
    assert "\x1b[31m-\x1b[0m delete victor" in coloured
    # Stripping the colours gives exactly the plain rendering.
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain


def test_text_lists_kinds_in_execution_order_and_closes_with_the_counts() -> None:
    plan = realistic_plan()
    out = render.text(plan, color=False)
    headers = [out.index(f"  {kind} (") for kind in ActionKind if plan.counts()[str(kind)]]
    assert headers == sorted(headers)
    assert out.rstrip().endswith(
        "Plan: 1 to enable, 3 to add, 1 to remove, 2 to disable, 3 to delete. 4 licence seats freed."
    )
    assert "digest " + realistic_plan().digest[:12] in out


def test_text_of_an_undo_plan_names_the_plan_it_reverses_and_an_action_without_reason_has_no_comment() -> None:
    plan = Plan(target=TARGET, desired_digest="d" * 64, actual_fingerprint="a" * 64, undoes="f" * 64,
                actions=(Action(ActionKind.ENABLE, Subject("dave@example.com", "r1")),))
    out = render.text(plan, color=False)
    assert "  undo plan: reverses what the apply of plan ffffffffffff did" in out
    [line] = [line for line in out.splitlines() if "dave@example.com" in line]
    assert "#" not in line and line == line.rstrip()


def test_markdown_too_small_for_any_details_keeps_the_counts_then_is_cut_to_the_limit() -> None:
    plan = realistic_plan()
    counts_only = render.markdown(plan, max_chars=1_500)  # under 300 characters a kind: no <details> fits
    assert len(counts_only) < 1_500
    assert "<details>" not in counts_only and "| **total** |" in counts_only
    assert "(cut to the size limit)" not in counts_only
    cut = render.markdown(plan, max_chars=200)
    assert len(cut) < 200 and cut.endswith("\n… (cut to the size limit)\n")
    assert cut[:150] == counts_only[:150]
    assert render.markdown(plan, max_chars=10) == ""  # not even the marker fits


HOSTILE = [
    Action(ActionKind.DISABLE, Subject("evil\x1b[2J\x1b[Hroot", "r1"), reason="line one\nline two"),
    Action(ActionKind.DISABLE, Subject("<img src=x onerror=alert(1)>", "r2"), reason="see [here](http://x)"),
    Action(ActionKind.DISABLE, Subject("tick`s|pipe", "r3"), reason="ping @security-team now"),
    Action(ActionKind.DISABLE, Subject("bidi\u202egnp.exe", "r4"), reason="**bold** _it_"),
]


def _hostile_plan() -> Plan:
    return Plan(target=TARGET, desired_digest="d" * 64, actual_fingerprint="a" * 64,
                actions=tuple(HOSTILE), warnings=(PlanWarning(WarningKind.PROTECTED, "@admins", "<b>x</b>"),))


def test_text_escapes_control_and_bidi_characters_from_the_target() -> None:
    out = render.text(_hostile_plan(), color=False)
    assert ESC not in out and "\u202e" not in out
    assert "evil\\x1b[2J\\x1b[Hroot" in out
    assert "line one\\x0aline two" in out
    action_lines = [line for line in out.splitlines() if line.startswith("  ~ ")]
    assert len(action_lines) == len(HOSTILE)


def test_markdown_neutralises_html_links_mentions_and_table_pipes() -> None:
    out = render.markdown(_hostile_plan())
    outside_code = re.sub(r"(`+).*?\1", "", out)  # a code span shows its text literally
    assert "<img" not in outside_code and "<b>x" not in outside_code
    assert "[here](" not in out and "\\[here\\]" in out
    assert not re.search(r"(^|\s)@[a-z]", out)  # no live @mention
    assert "**bold**" not in out
    rows = [line for line in out.splitlines() if line.startswith("| `") and "r" in line]
    assert len(rows) == len(HOSTILE)
    for row in rows:
        # Exactly the five unescaped pipes of a four-column row.
        assert len(re.findall(r"(?<!\\)\|", row)) == 5, row


def test_markdown_parsed_as_gfm_keeps_hostile_names_as_text() -> None:
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(render.markdown(_hostile_plan()))
    assert "<img" not in html and "<a " not in html
    assert "@security-team" not in html  # mention broken by a zero-width space
    rows = re.findall(r"<tr>\n(.*?)</tr>", html, re.S)
    action_rows = [r for r in rows if "<td><code>r" in r]
    assert len(action_rows) == len(HOSTILE)
    for row in action_rows:
        assert row.count("<td>") == 4, row
        assert "<strong>" not in row and "<em>" not in row
    assert "<b>x</b>" not in html
    assert "<code>&lt;img src=x onerror=alert(1)&gt;</code>" in html


def test_masked_markdown_shows_no_full_email_anywhere() -> None:
    out = render.markdown(realistic_plan(), mask_emails=True)
    assert not re.search(r"[A-Za-z0-9._%+-]{2,}@example\.com", out)
    assert "`a***@example.com`" in out  # subjects
    assert "**synced** `i***@example.com`" in out  # warnings
    assert "`mallory`" in out  # usernames are not emails: left alone


def test_markdown_lists_every_action_and_the_approval_command() -> None:
    plan = realistic_plan()
    out = render.markdown(plan)
    for action in plan.actions:
        assert render.md_code(action.subject.ref) in out
    assert f"reconcile apply plan.json --approve {plan.digest}" in out
    assert out.startswith(render.COMMENT_MARKER)
    assert "| - `delete` | 3 |" in out


@pytest.mark.slow  # a large world is the point: make test runs it, make check leaves it out
@pytest.mark.parametrize("max_chars", [60_000, 3_000, 300])
def test_markdown_of_a_100000_action_plan_stays_under_the_limit(max_chars: int) -> None:
    plan = huge_plan()
    out = render.markdown(plan, max_chars=max_chars)
    assert len(out) < max_chars
    if max_chars >= 3_000:
        assert f"| **total** | **{len(plan.actions)}** |" in out
        assert f"| + `enable` | {plan.counts()['enable']} |" in out
        assert "### Warnings (2000)" in out
        assert plan.digest in out
    if max_chars == 60_000:
        assert "more add_member actions not shown" in out
        assert "`reconcile show PLAN_FILE` prints it whole" in out
        assert out.count("<details>") == len(ActionKind)


def test_markdown_of_a_huge_plan_masks_emails_too() -> None:
    out = render.markdown(huge_plan(20_000), mask_emails=True, max_chars=30_000)
    assert len(out) < 30_000
    assert "u***@example.com" in out
    assert not re.search(r"[A-Za-z0-9._%+-]{2,}@example\.com", out)


def test_json_text_is_the_plan_file_and_loads_back() -> None:
    plan = realistic_plan()
    loaded = Plan.loads(render.json_text(plan))
    assert loaded.digest == plan.digest
    assert loaded.actions == plan.actions
    assert loaded.warnings == plan.warnings


def test_renders_a_plan_computed_by_the_planner() -> None:
    actual = ActualState.build(
        [
            User("k1", username="alice", email="alice@example.com"),
            User("k2", username="bob", email="bob@example.com"),
            User("k3", username="carol", email="carol@example.com", status=Status.DISABLED),
            User("k4", username="admin", email="admin@example.com", admin=True),
        ],
        [Group("team-docs"), Group("confluence-administrators")],
        {"team-docs": ["k2", "k4"], "confluence-administrators": ["k4"]},
    )
    desired = DesiredState.build([
        DesiredUser("alice@example.com", groups=frozenset({"team-docs"})),
        DesiredUser("carol"),
    ])
    scope = Scope(users=Globs(("*",)), groups=Globs(("team-*",)))
    plan = diff(desired, actual, scope=scope, policy=Policy(), target=TARGET, now=NOW)
    text = render.text(plan, color=False)
    md = render.markdown(plan)
    assert {a.kind for a in plan.actions} >= {ActionKind.ADD_MEMBER, ActionKind.ENABLE, ActionKind.DISABLE}
    for action in plan.actions:
        assert action.describe() in text
        assert render.md_code(action.subject.identity) in md
    assert any(w.kind is WarningKind.PROTECTED for w in plan.warnings)
    assert "**protected** `admin`" in md


names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)),  # type: ignore[arg-type]
                min_size=1, max_size=30)
actions = st.builds(
    Action,
    kind=st.sampled_from(list(ActionKind)),
    subject=st.builds(Subject, identity=st.one_of(names, st.emails()), ref=names),
    group=st.one_of(st.none(), names),
    reason=names,
)


@settings(max_examples=examples(150), deadline=None)
@given(st.lists(actions, max_size=60), st.integers(min_value=1, max_value=6000), st.booleans())
def test_markdown_is_always_under_max_chars(acts: list[Action], max_chars: int, mask: bool) -> None:
    plan = Plan(target=TARGET, desired_digest="d" * 64, actual_fingerprint="a" * 64, actions=order(acts))
    out = render.markdown(plan, mask_emails=mask, max_chars=max_chars)
    assert len(out) < max_chars
    if len(out) > 2000:  # whenever there is room, the digest and the counts are there
        assert plan.digest in out and f"| **total** | **{len(acts)}** |" in out


@settings(max_examples=examples(150), deadline=None)
@given(st.lists(st.emails(), min_size=1, max_size=20))
def test_masking_hides_every_local_part(emails: list[str]) -> None:
    acts = [Action(ActionKind.DISABLE, Subject(e, f"r{i}"), reason=f"was {e}") for i, e in enumerate(emails)]
    plan = Plan(target=TARGET, desired_digest="d" * 64, actual_fingerprint="a" * 64, actions=order(acts))
    out = render.markdown(plan, mask_emails=True)
    for e in emails:
        local = e.split("@", 1)[0]
        if len(local) > 1:
            assert e not in out
