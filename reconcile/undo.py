"""Undo plans (issue 14): every apply leaves `<state-dir>/undo-<digest12>.json`, the inverse of each change it
made, approvable like any plan. Applied against a fresh reading, action by action: never re-planned against
the desired state (which still wants the change undone), so each action is checked on its own facts.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, assert_never

from reconcile.journal import Journal
from reconcile.journal import now as journal_now
from reconcile.model import ActualState, DesiredState, Scope, Status
from reconcile.plan import Action, ActionKind, Plan, PlanWarning, Subject, WarningKind, order
from reconcile.precondition import Precondition

if TYPE_CHECKING:
    from reconcile.apply import ApplyResult, Prepared, Skipped
    from reconcile.settings import Config
    from reconcile.targets.base import Progress, Target

log = logging.getLogger(__name__)

# What the fallback below reverses by name: a kind planned by the inactivity policy (a removal from a
# licence-granting group, `group` naming it), undone by adding the user back to that group.


def undo_path(state_dir: Path, digest: str) -> Path:
    """Where the undo plan of the apply of plan `digest` is written, next to the journal."""
    return Path(state_dir) / f"undo-{digest[:12]}.json"


def inverse(action: Action, digest: str) -> Action | None:
    """The action that reverses `action` once it was done; None: it cannot be reversed (delete)."""
    on = f" {action.group}" if action.group else ""
    why = f"undoes {action.kind}{on} (plan {digest[:12]})"

    def undo(kind: ActionKind, precondition: Precondition, group: str | None = None) -> Action:
        return Action(kind=kind, subject=Subject(action.subject.identity, action.subject.ref), group=group,
                      reason=why, precondition=precondition)

    match action.kind:
        case ActionKind.ENABLE:
            return undo(ActionKind.DISABLE, Precondition(status=Status.ACTIVE))
        case ActionKind.DISABLE:
            return undo(ActionKind.ENABLE, Precondition(status=Status.DISABLED))
        case ActionKind.ADD_MEMBER:
            return undo(ActionKind.REMOVE_MEMBER, Precondition(member=True), action.group)
        case ActionKind.REMOVE_MEMBER:
            return undo(ActionKind.ADD_MEMBER, Precondition(member=False), action.group)
        case ActionKind.REMOVE_LICENCE:  # a removal from one licence-granting group: add the user back
            return undo(ActionKind.ADD_MEMBER, Precondition(member=False), action.group)
        case ActionKind.DELETE:
            return None
        case _ as unreachable:
            assert_never(unreachable)


# What a delete leaves behind, by target type: the words of each product's documentation.
_GONE = {
    "confluence-dc": "a deleted account is gone for good (Confluence DC leaves an anonymised alias on its content)",
    "atlassian-cloud": ("a removed or deleted account is not brought back by an undo: re-invite it; its groups "
                        "and roles are gone (a deleted account shows as \"Former user\" on its content)"),
    "": "a deleted account is gone for good",
}


def build_undo(plan: Plan, done: Iterable[Action], *, created_at: str, actual_fingerprint: str = "") -> Plan | None:
    """The undo plan of the changes `done` by applying `plan`; None when it did none."""
    done = list(done)
    if not done:
        return None
    undoes = plan.digest
    actions: list[Action] = []
    warnings: list[PlanWarning] = []
    for action in done:
        back = inverse(action, undoes)
        if back is not None:
            actions.append(back)
            continue
        what = (_GONE.get(plan.target.get("type", ""), _GONE[""])
                if action.kind is ActionKind.DELETE else f"no inverse is known for {action.kind}")
        warnings.append(PlanWarning(WarningKind.IRREVERSIBLE, action.subject.identity,
                                f"{action.describe()} by the apply of plan {undoes[:12]}: {what}"))
    return Plan(
        target=dict(plan.target), desired_digest=plan.desired_digest, actual_fingerprint=actual_fingerprint,
        actions=order(actions), warnings=tuple(sorted(warnings, key=lambda w: w.sort_key)),
        limit_base=plan.limit_base, created_at=created_at, evaluated_at=plan.evaluated_at,
        desired_dir=plan.desired_dir, undoes=undoes,
    )


def write_undo(state_dir: Path, undo: Plan) -> Path:
    """Write the undo plan atomically (a reader never sees half of one); returns its path."""
    path = undo_path(state_dir, undo.undoes)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(undo.dumps())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def with_undo(result: ApplyResult, prepared: Prepared, state_dir: Path) -> ApplyResult:
    """Write the undo plan of every change the journal records as done by this plan's current apply
    (all runs of it, --limit and resumes included) and the ones confirmed done after an interruption."""
    plan = prepared.plan
    done = Journal(state_dir, plan.digest).read().done | {a.id for a in prepared.confirmed}
    fingerprint = result.residual.actual_fingerprint if result.residual is not None else ""
    undo = build_undo(plan, (a for a in plan.actions if a.id in done), created_at=journal_now(),
                      actual_fingerprint=fingerprint)
    if undo is None:
        return result
    try:
        path = write_undo(state_dir, undo)
    except OSError as exc:  # the changes are made: say so, and keep the apply's own outcome
        log.warning("could not write the undo plan to %s: %s", state_dir, exc)
        return replace(result, undo=undo)
    return replace(result, undo=undo, undo_path=str(path))


def check_action(action: Action, actual: ActualState, scope: Scope) -> str | None:
    """Why an undo action must not run on the state read now; None: its precondition holds.

    The precondition is the state the apply left; anything else (the subject is gone, now protected,
    or was changed again by someone since) means the undo would no longer restore what was there.
    """
    user = actual.users.get(action.subject.ref)
    if user is None:
        return "the user no longer exists"
    if user.admin or user.ref == actual.me or scope.protect.matches(*user.keys()):
        return "the user is protected now (an administrator, the credentials' account, or scope.protect)"
    pre = action.precondition
    if pre.status is not None and user.status is not pre.status:
        return f"already {user.status.value} (changed since the apply)"
    if pre.member is not None:
        group = action.group or ""
        if group not in actual.groups:
            return f"group {group} no longer exists"
        if actual.complete_groups is not None and group not in actual.complete_groups:
            return f"the members of {group} were not read (no longer in scope.groups)"
        if (action.subject.ref in actual.members.get(group, frozenset())) is not pre.member:
            return f"already {'not ' if pre.member else ''}a member of {group} (changed since the apply)"
    return None


async def prepare_undo(undo: Plan, config: Config, target: Target, *, state_dir: Path, force: bool = False,
                       progress: Progress | None = None) -> Prepared:
    """Check an undo plan against a fresh reading: each action runs only if the state is still what the
    apply left; the others are skipped and reported. Resumes from the undo plan's own journal."""
    from reconcile.apply import Prepared, Skipped, check_supported

    check_supported(undo, target)
    undo.check_limits(config.policy.limits, force=force)
    actual = await target.fetch(config.scope, progress)
    view = Journal(state_dir, undo.digest).read()
    # Unlike a plan, a completed undo is not a change that can recur: applying it again finds it done.
    restart = not view.lines
    uncertain = view.in_flight | set(view.failed)
    skipped: list[Skipped] = []
    run: list[Action] = []
    confirmed: list[Action] = []
    for action in (a for a in undo.actions if a.id not in view.finished):
        why = check_action(action, actual, config.scope)
        if why is None:
            run.append(action)
        elif action.id in uncertain and why.startswith("already"):
            confirmed.append(action)  # an interrupted undo that did take effect
        else:
            skipped.append(Skipped(action, why))
    return Prepared(plan=undo, desired=DesiredState(users={}), run=tuple(run), confirmed=tuple(confirmed),
                    restart=restart, skipped=tuple(skipped))
