"""The inactivity rule and exemptions, decided per user for the planner (issue 14). Pure.

Cutoffs are whole days: 00:00 UTC of the evaluation day minus the window, so plans made the same day
select the same users. "Inactive" is strictly older than the cutoff; a never-active user is selected
only by `never_active_after`, and only when the target says how long they have been in the org.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from reconcile.model import Policy, Status, User, iso_instant, norm
from reconcile.plan import PlanWarning, WarningKind
from reconcile.plan_facts import Cutoff, ExemptionNote, PolicyRecord
from reconcile.policies import AppliesTo, ExemptFrom, Exemption, InactiveAction, InactivePolicy, UnknownActivity
from reconcile.precondition import Inactive

SHOWN = 5  # names in a summarising warning


@dataclass(frozen=True, slots=True)
class Selection:
    """Why a user was selected: the fact, kept as the action's precondition, and its words."""

    fact: Inactive
    reason: str


def day_start(now: datetime) -> datetime:
    """00:00 UTC of `now`'s UTC day: every cutoff is measured from it."""
    utc = now.astimezone(UTC)
    return datetime(utc.year, utc.month, utc.day, tzinfo=UTC)


def days(window: timedelta) -> str:
    return f"{window.days}d"


def _day(stamp: datetime) -> str:
    return stamp.astimezone(UTC).date().isoformat()


def _names(names: list[str]) -> str:
    shown = ", ".join(sorted(names, key=str.lower)[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


class PolicyPlanner:
    """Decides `policy.inactive` for one plan; collects its warnings and the record for the plan file."""

    def __init__(self, policy: Policy, now: datetime, target: Mapping[str, str], *,
                 licensed: frozenset[str] = frozenset(), reveals: bool = False) -> None:
        self.rule: InactivePolicy | None = policy.inactive
        self.policy = policy
        self.today = day_start(now)
        self.dc = target.get("type") == "confluence-dc"
        rule = self.rule
        self.products = tuple(sorted(rule.activity)) if rule is not None else ()
        self.after = self.today - rule.after if rule is not None and rule.after is not None else None
        self.never = (self.today - rule.never_active_after
                      if rule is not None and rule.never_active_after is not None else None)
        self.window = rule.warn_before if rule is not None else None
        self.by_user: dict[str, list[Exemption]] = {}
        for exemption in policy.exemptions:
            self.by_user.setdefault(norm(exemption.user), []).append(exemption)
        self.used: set[int] = set()  # ids of exemptions naming an in-scope user
        self.unknown: list[str] = []
        self.never_unaged: list[str] = []
        self.never_unruled: list[str] = []
        self.considered = 0
        # Refs in a licence-granting group, and whether the target reveals anyone's activity: a user it
        # does not reveal among others it does, and who holds no licence, is on Data Center 9.3+ one the
        # active-users list leaves out for being unlicensed (reclaimed, or never licensed).
        self.licensed = licensed
        self.reveals = reveals
        self.held: list[str] = []
        self.held_refs: set[str] = set()
        self.warnings: list[PlanWarning] = []
        # No rule and no exemption: `select` would always say no; the planner skips asking per user.
        self.idle = self.rule is None and not self.by_user

    @property
    def source(self) -> str:
        if self.dc:
            return "lastLogin"
        return f"productAccess[{','.join(self.products) or 'any'}]"

    # -- per user --------------------------------------------------------------------------------

    def exemption(self, keys: tuple[str, ...]) -> Exemption | None:
        """The exemption in force for a user from the inactivity rule's action, if any."""
        for key in keys:
            for e in self.by_user.get(key, ()):
                self.used.add(id(e))
        if self.rule is None:
            return None
        lifts = {ExemptFrom.INACTIVE}
        if self.rule.action is InactiveAction.REMOVE_LICENCE:
            lifts.add(ExemptFrom.LICENCES)
        for key in keys:
            for e in self.by_user.get(key, ()):
                if e.covers & lifts and self.today.date() <= e.until:
                    return e
        return None

    def select(self, user: User, keys: tuple[str, ...], *, desired: bool, protected: bool,
               enabling: bool = False) -> Selection | None:
        """Whether the inactivity rule selects this in-scope user (None: it does not, or it is off);
        `enabling`: disabled now, and the plan enables them, so judged as active."""
        exempt = self.exemption(keys)  # also marks the exemption as naming someone in scope
        rule = self.rule
        if rule is None or protected or (user.status is not Status.ACTIVE and not enabling) or user.unsynced:
            return None
        if (rule.applies_to is AppliesTo.ABSENT and desired) or (rule.applies_to is AppliesTo.DESIRED and not desired):
            return None
        if exempt is not None:
            return None
        self.considered += 1
        if user.last_active is None:
            if self.reveals and rule.action is InactiveAction.REMOVE_LICENCE and user.ref not in self.licensed:
                self.held.append(user.label)  # no licence, and no fact to give one back on
                self.held_refs.add(user.ref)
            else:
                self.unknown.append(user.label)
            return None
        latest = user.last_active.latest(self.products)
        if latest is not None:
            return self._inactive(user, latest)
        return self._never(user)

    def _inactive(self, user: User, latest: datetime) -> Selection | None:
        rule = self.rule
        if self.after is None or rule is None or rule.after is None:
            return None
        if latest < self.after:
            fact = Inactive(self.after, self.products, latest, "inactive", self.source)
            return Selection(fact, f"inactive: last active {iso_instant(latest)} ({self.source}), before the "
                             f"cutoff {_day(self.after)} (policy.inactive.after: {days(rule.after)})")
        if self.window is not None and latest < self.after + self.window:
            crosses = (latest + rule.after).date() + timedelta(days=1)
            self.warnings.append(PlanWarning(WarningKind.UPCOMING, user.label, (
                f"last active {iso_instant(latest)} ({self.source}): selected from {crosses.isoformat()} "
                f"(policy.inactive.after: {days(rule.after)}, warn_before: {days(self.window)}); no action yet")))
        return None

    def _never(self, user: User) -> Selection | None:
        rule = self.rule
        if self.never is None or rule is None or rule.never_active_after is None:
            self.never_unruled.append(user.label)
            return None
        if user.added_to_org is None:
            self.never_unaged.append(user.label)
            return None
        if user.added_to_org < self.never:
            fact = Inactive(self.never, self.products, None, "never_active", self.source)
            return Selection(fact, f"never active ({self.source}), in the organization since "
                             f"{iso_instant(user.added_to_org)}, before the cutoff {_day(self.never)} "
                             f"(policy.inactive.never_active_after: {days(rule.never_active_after)})")
        if self.window is not None and user.added_to_org < self.never + self.window:
            crosses = (user.added_to_org + rule.never_active_after).date() + timedelta(days=1)
            self.warnings.append(PlanWarning(WarningKind.UPCOMING, user.label, (
                f"never active ({self.source}), in the organization since {iso_instant(user.added_to_org)}: "
                f"selected from {crosses.isoformat()} (policy.inactive.never_active_after: "
                f"{days(rule.never_active_after)}); no action yet")))
        return None

    # -- once per plan ---------------------------------------------------------------------------

    def finish(self) -> list[PlanWarning]:
        """The plan's policy warnings: summaries said once, and each exemption's state."""
        out = list(self.warnings)
        rule = self.rule
        if rule is not None and rule.unknown is UnknownActivity.WARN:
            if self.unknown:
                every = len(self.unknown) == self.considered
                why = (" the target reveals no activity at all (Confluence Data Center before 9.3 has no "
                       "last logins)" if every and self.dc else "")
                out.append(PlanWarning(WarningKind.UNKNOWN_ACTIVITY, "policy.inactive", (
                    f"no activity data for {len(self.unknown)} user(s) ({_names(self.unknown)}):{why} not "
                    "selected (policy.inactive.unknown: warn; `skip` silences this)")))
            if self.never_unaged:
                out.append(PlanWarning(WarningKind.UNKNOWN_ACTIVITY, "policy.inactive", (
                    f"never active, and how long they have been in the organization is not known, for "
                    f"{len(self.never_unaged)} user(s) ({_names(self.never_unaged)}): not selected by "
                    "never_active_after")))
            if self.never_unruled:
                out.append(PlanWarning(WarningKind.UNKNOWN_ACTIVITY, "policy.inactive", (
                    f"never active: {len(self.never_unruled)} user(s) ({_names(self.never_unruled)}); not "
                    "selected: only policy.inactive.never_active_after selects users who were never active")))
        if self.held:
            out.append(PlanWarning(WarningKind.UNKNOWN_ACTIVITY, "policy.inactive", (
                f"not given a licence group: {len(self.held)} user(s) ({_names(self.held)}) hold none and their "
                "activity is not known (Confluence Data Center lists the last login of licensed users only, "
                "so a reclaimed licence would come straight back); grant one with an exemption "
                "(from: [licences], a short until): the next plan adds it")))
        out += [w for e in self.policy.exemptions if (w := self._exemption_warning(e)) is not None]
        return out

    def _state(self, e: Exemption) -> str:
        left = (e.until - self.today.date()).days
        if left < 0:
            return "expired"
        if id(e) not in self.used:
            return "unused"
        return "expiring" if left < self.policy.exemption_rules.warn_within.days else "active"

    def _exemption_warning(self, e: Exemption) -> PlanWarning | None:
        state = self._state(e)
        who = f"owner {e.owner}, reason: {e.reason}"
        match state:
            case "expired":
                text = (f"exemption expired on {e.until.isoformat()} ({who}); the rules apply again: renew it "
                        "with a new `until`, or remove it")
            case "expiring":
                text = f"exemption expires on {e.until.isoformat()} ({who})"
            case "unused":
                text = f"exemption names nobody in scope ({who}): a typo, or the user has left? Remove it"
            case _:
                return None
        return PlanWarning(WarningKind.EXEMPTION, e.user, text)

    def record(self) -> PolicyRecord | None:
        """What the plan file keeps: the rule's cutoffs and every exemption's state; None without a rule."""
        rule = self.rule
        if rule is None and not self.policy.exemptions:
            return None
        cutoffs = []
        if rule is not None and self.after is not None and rule.after is not None:
            cutoffs.append(Cutoff("inactive", days(rule.after), self.after))
            if self.window is not None:
                cutoffs.append(Cutoff("upcoming", days(self.window), self.after + self.window))
        if rule is not None and self.never is not None and rule.never_active_after is not None:
            cutoffs.append(Cutoff("never_active", days(rule.never_active_after), self.never))
        notes = tuple(ExemptionNote(e.user, e.owner, e.reason, e.until.isoformat(),
                                    tuple(sorted(str(c) for c in e.covers)), self._state(e))
                      for e in self.policy.exemptions)
        return PolicyRecord(str(rule.action) if rule is not None else "", self.products, tuple(cutoffs), notes)
