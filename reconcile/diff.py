"""The planner: desired state + actual state -> Plan. Pure; the only place decisions are made.

Implements SPEC §5 (planning semantics) on the pairs identity matching gives (SPEC §4, identity.py):
scope, exact membership of managed groups, enable/disable, `policy.absent`, unsynced deletes,
warnings instead of actions for protected, IdP-managed, read-only and missing principals.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from itertools import chain
from typing import assert_never

from reconcile.collector import collector_paused
from reconcile.digest import desired_digest, fingerprint, scoped_users
from reconcile.errors import EmptySource
from reconcile.identity import Match, known_by_email_only, match_users
from reconcile.impact import Impact, judge
from reconcile.model import (
    AbsentPolicy,
    ActualState,
    DesiredState,
    DesiredUser,
    Policy,
    Scope,
    Status,
    UnsyncedPolicy,
    User,
    is_email,
)
from reconcile.plan import (
    Action,
    ActionKind,
    LimitBase,
    Plan,
    PlanWarning,
    Subject,
    WarningKind,
    order,
    order_warnings,
)
from reconcile.policies import InactiveAction
from reconcile.policy_plan import PolicyPlanner, Selection
from reconcile.precondition import NO_PRECONDITION, Guarded, Precondition
from reconcile.seats import granting, other_grants, summarise
from reconcile.suggest import Suggestions


def diff(
    desired: DesiredState,
    actual: ActualState,
    *,
    scope: Scope,
    policy: Policy,
    target: Mapping[str, str],
    now: datetime,
    impacts: Mapping[str, Impact] | None = None,
    known_desired_digest: str | None = None,
) -> Plan:
    """Compute the plan that makes the in-scope actual state what the desired state says.

    `now` (timezone-aware) is the time the plan is evaluated at, recorded as `evaluated_at`; the
    caller supplies it (the CLI reads the clock; apply re-plans with the plan's own), never the planner.
    `impacts` (user ref -> what deleting them would destroy) are the facts `policy.delete_guard` judges
    deletes by; a delete candidate without one counts as unknown (reconcile/impact.py).
    `known_desired_digest`: `digest.desired_digest(desired, scope, policy)` when the caller computed it already
    (while the target was fetched: ~0.8 s at 100,000 users, off the plan's critical path).
    """
    if now.tzinfo is None:
        raise ValueError("diff needs a timezone-aware `now`")
    # The planner allocates a few hundred thousand containers at 100,000 users, none of them in a
    # cycle; each allocation burst would make CPython's cycle collector walk the whole heap (both
    # states included) again: a third of the planning CPU. Paused here, restored as it was.
    with collector_paused():
        return _plan(desired, actual, scope=scope, policy=policy, target=target, now=now, impacts=impacts,
                     known_desired_digest=known_desired_digest)


def _plan(desired: DesiredState, actual: ActualState, *, scope: Scope, policy: Policy, target: Mapping[str, str],
          now: datetime, impacts: Mapping[str, Impact] | None, known_desired_digest: str | None) -> Plan:
    if not desired.users and not policy.allow_empty:
        raise EmptySource(
            "refused: the desired state has no users, so every in-scope user would be "
            f"{policy.absent.value}d",
            hint="check the sources and their filters; if an empty desired state is really meant, "
            "set `policy: {allow_empty: true}` (--force does not lift this guard)",
        )
    matches, missing = match_users(desired, actual)
    unfound = [desired.users[k].key for k in missing if known_by_email_only(desired.users[k])]
    scoped = scoped_users(actual, scope)
    planner = _Planner(actual, scope, policy, scoped, unfound_emails=unfound, impacts=impacts or {},
                       rules=PolicyPlanner(policy, now, target, licensed=frozenset().union(
                           *granting(actual, policy.licences).values()),
                           reveals=any(u.last_active is not None for u in actual.users.values())))
    planner.plan_matches(matches)
    matched_refs = {m.user.ref for m in matches}
    for key in missing:
        if scope.owns_user(desired.users[key]):
            planner.desired_in_scope.add(key)
    _guard_scope(desired, planner.desired_in_scope, policy)
    for user in actual.users.values():
        if user.unsynced:
            planner.plan_unsynced(user)
        elif user.ref not in matched_refs:
            planner.plan_absent(user)
    if actual.unsynced_unread and policy.unsynced is UnsyncedPolicy.DELETE:
        planner.warn(WarningKind.INCOMPLETE, "unsynced entries",
                     f"not read ({actual.unsynced_unread}), so policy.unsynced: delete has no effect; use "
                     "username + password auth, or disable secure administrator sessions")
    # After planning: a did-you-mean says what the plan does to the near name (a typo's cost).
    suggest = Suggestions(actual, planner.actions)
    for key in missing:
        want = desired.users[key].key
        planner.warn(WarningKind.MISSING_USER, want, "desired user does not exist on the target (reconcile "
                     "does not create accounts)" + suggest.user(want))
    for note in desired.notes:  # about a group: named with its source; about the read: the source is the subject
        if note.subject:
            planner.warn(WarningKind.SOURCE, note.subject, f"source '{note.source}': {note.message}")
        else:
            planner.warn(WarningKind.SOURCE, f"source {note.source}", note.message)
    for group in sorted(desired.groups):
        if scope.owns_group(group) and group not in actual.groups:
            planner.warn(WarningKind.MISSING_GROUP, group, "desired group does not exist on the target"
                         + suggest.group(group))
    for warning in planner.rules.finish():
        planner.warnings.append(warning)
    seats, freed, seat_warnings = summarise(actual, planner.actions, policy.licences)
    planner.warnings += seat_warnings
    return Plan(
        target=dict(target),
        desired_digest=known_desired_digest or desired_digest(desired, scope, policy),
        actual_fingerprint=fingerprint(actual, scope, scoped),
        actions=order(planner.actions),
        warnings=order_warnings(planner.warnings),
        limit_base=planner.limit_base(),
        seats_freed=planner.seats_freed + freed,
        seats=seats,
        policy=planner.rules.record(),
        evaluated_at=now,
    )


def _guard_scope(desired: DesiredState, in_scope: set[str], policy: Policy) -> None:
    """The empty-source guard, for sources whose users are all outside scope (SPEC §5).

    A source that returns users of the wrong organization or directory is as empty as one that
    returns none: every in-scope account would be treated as absent. `in_scope` holds the keys of
    the desired users in scope (through their own keys or their account's). Lifted by
    `allow_empty` (diff sees only the guarded sources) and moot under `policy.absent: ignore`.
    """
    if policy.allow_empty or policy.absent is AbsentPolicy.IGNORE:
        return
    hint = ("check scope.users against the keys this source gives (username, email); if this is "
            "really meant, set `allow_empty: true` (--force does not lift this guard)")
    if desired.users and not in_scope:
        raise EmptySource(
            f"refused: none of the {len(desired.users)} desired users is in scope (scope.users), so "
            f"every in-scope user would be {policy.absent.value}d as absent from the desired state",
            hint=hint.replace("this source gives", "the desired users have"),
        )
    for name, keys in sorted(desired.guarded.items()):
        if keys and keys.isdisjoint(in_scope):
            raise EmptySource(
                f"refused: source '{name}' returned {len(keys)} users, none of them in scope "
                "(scope.users); every in-scope user it should list would be "
                f"{policy.absent.value}d as absent",
                hint=hint,
            )


_NONE: frozenset[str] = frozenset()


def _groups_of(actual: ActualState, managed: Iterable[str], refs: set[str] | None = None) -> Mapping[str, list[str]]:
    """ref -> the managed groups it is in (of `refs` only, when given): `ActualState.groups_of` with lists,
    not sets (a group lists a member once anyway), which halves the cost of a loop over every membership."""
    out: defaultdict[str, list[str]] = defaultdict(list)
    members = actual.members
    for group in managed:
        held = members.get(group, _NONE)
        for ref in held if refs is None else refs.intersection(held):
            out[ref].append(group)
    return out


class _Planner:
    """Accumulates actions and warnings for one diff; decisions live in its methods."""

    def __init__(self, actual: ActualState, scope: Scope, policy: Policy, scoped: Mapping[str, tuple[str, ...]], *,
                 unfound_emails: list[str], impacts: Mapping[str, Impact], rules: PolicyPlanner) -> None:
        self.actual = actual
        self.scoped = scoped  # ref -> keys of the users scope.users owns by their own keys
        self.impacts = impacts
        self.rules = rules
        self.licence_groups = frozenset(policy.licences.groups)
        self.grants = granting(actual, policy.licences)
        self.scope = scope
        self.policy = policy
        self.actions: list[Action] = []
        self.warnings: list[PlanWarning] = []
        self.managed = sorted(g for g in actual.groups if scope.owns_group(g))
        self.managed_set = frozenset(self.managed)
        members = actual.members
        self.counts = Counter(chain.from_iterable(members.get(g, _NONE) for g in self.managed))  # ref -> groups
        # ref -> its managed groups, wanted for the users planned in detail: everyone when a rule applies,
        # else only those whose memberships or status differ, found without it (`plan_matches`)
        self.groups_of = {} if rules.idle else _groups_of(actual, self.managed)
        self.me = actual.me
        self.in_scope = 0
        self.unprotected = 0
        self.memberships = 0
        self.seats_freed = 0
        self.desired_in_scope: set[str] = set()  # normalised keys of the desired users in scope
        self.unfound_emails = unfound_emails  # desired users known only by an email no account showed
        self.protect_emails = any(is_email(p) for p in scope.protect.patterns)
        self.protects = bool(scope.protect.patterns)

    # -- bookkeeping ---------------------------------------------------------------------------

    def warn(self, kind: WarningKind, subject: str, message: str) -> None:
        self.warnings.append(PlanWarning(kind, subject, message))

    def limit_base(self) -> LimitBase:
        return LimitBase(users=self.unprotected, memberships=self.memberships, in_scope=self.in_scope)

    def _count(self, user: User, keys: tuple[str, ...]) -> bool:
        """Count an in-scope live user for the limits; returns whether it is protected."""
        self.in_scope += 1
        self.memberships += self.counts.get(user.ref, 0)
        protected = self._protection(user, keys) is not None
        if not protected:
            self.unprotected += 1
        return protected

    def _protection(self, user: User, keys: tuple[str, ...]) -> str | None:
        if user.admin:
            return "an administrator"
        if self.actual.me is not None and user.ref == self.actual.me:
            return "the account of the credentials in use"
        if self.protects and self.scope.protect.matches(*keys):
            return "matched by scope.protect"
        return None

    def _guarded(self, user: User, keys: tuple[str, ...], identity: str, change: str) -> bool:
        """True when the change may be planned; otherwise records why not as a warning."""
        why = self._protection(user, keys)
        if why is not None:
            self.warn(WarningKind.PROTECTED, identity, f"protected ({why}): would {change}; never touched")
            return False
        if user.idp_managed:
            self.warn(
                WarningKind.IDP_MANAGED,
                identity,
                f"managed by the identity provider: would {change}; change it in the IdP",
            )
            return False
        return True

    def _add(
        self,
        kind: ActionKind,
        user: User,
        identity: str,
        reason: str,
        *,
        group: str | None = None,
        precondition: Precondition = NO_PRECONDITION,
    ) -> None:
        self.actions.append(
            Action(
                kind=kind,
                subject=Subject(identity=identity, ref=user.ref),
                group=group,
                reason=reason,
                precondition=precondition,
                unsynced=user.unsynced,
            )
        )
        if kind in (ActionKind.DISABLE, ActionKind.DELETE) and user.status is Status.ACTIVE and user.billable:
            self.seats_freed += 1

    # -- decisions -----------------------------------------------------------------------------

    def plan_matches(self, matches: Iterable[Match]) -> None:
        """Every matched pair: counted for the limits when in scope, planned when anything differs.

        One loop with its lookups hoisted: it runs once per desired user (100,000), and for most of them
        nothing differs; `plan_desired` decides the rest.
        """
        scoped, count = self.scoped.get, self.counts.get
        # the members of each managed group, and nothing for any other: one lookup a desired group, not two
        members = {g: self.actual.members.get(g, _NONE) for g in self.managed}.get
        owns, in_scope = self.scope.users.matches, self.desired_in_scope.add
        me, protects, idle = self.me, self.protects, self.rules.idle
        counted = memberships = unprotected = 0
        detail: list[tuple[User, DesiredUser, tuple[str, ...], bool]] = []
        for m in matches:
            user, want = m.user, m.desired
            ref = user.ref
            keys = scoped(ref)
            owned = keys is not None  # by its own keys; else perhaps by the desired user's
            if keys is None:
                keys = user.keys()
            key = want.key.strip().lower()  # norm(), inlined: the key itself when normal (kept in a set)
            key = want.key if key == want.key else key
            i = want.identity
            if i.username is None and i.email is None and i.account_id is None:  # want.keys() is (key,)
                keys = keys if key in keys or not key else (*keys, key)  # in them when matched by it
            elif ((not (k := i.username) or k in keys) and (not (k := i.email) or k in keys)
                  and (not (k := i.account_id) or k in keys) and (not key or key in keys)):
                pass  # each of want.keys() is one of them already (a key found there is normal)
            else:
                extra = [k for k in want.keys() if k not in keys]
                if extra:
                    keys = (*keys, *extra)
            if not owned and not owns(*keys):
                continue  # outside scope.users: never touched, never shown
            in_scope(key)
            held = count(ref, 0)
            counted += 1
            memberships += held
            protected = user.admin or ref == me or (protects and self._protection(user, keys) is not None)
            if not protected:
                unprotected += 1
            if idle and want.status is user.status and len(want.groups) == held:
                for group in want.groups:  # as many as it is in: equal when it is in each, and each is managed
                    if ref not in members(group, _NONE):
                        break
                else:
                    continue  # the usual case: no rule to apply, status and memberships already as desired
            detail.append((user, want, keys, protected))
        self.in_scope += counted
        self.memberships += memberships
        self.unprotected += unprotected
        if idle:
            self.groups_of = _groups_of(self.actual, self.managed, {user.ref for user, *_ in detail})
        for user, want, keys, protected in detail:  # in match order, as if planned in the loop
            self.plan_desired(user, want, keys, self.groups_of.get(user.ref, ()), protected)

    def plan_desired(self, user: User, want: DesiredUser, keys: tuple[str, ...], current: Collection[str],
                     protected: bool) -> None:
        """The changes for one matched, in-scope user (already counted) in the managed groups `current`."""
        identity = want.key
        # Someone this plan enables is judged as the active user they will be: otherwise the next plan
        # would take back what this one gives (enable now, unlicense or disable on the next run).
        enabling = want.status is Status.ACTIVE and user.status is Status.DISABLED
        chosen = None if self.rules.idle else self.rules.select(user, keys, desired=True, protected=protected,
                                                                 enabling=enabling)
        if chosen is not None and want.status is Status.DISABLED:
            chosen = None  # the desired state disables it anyway: no fact to re-check
        if chosen is not None and self.disables:
            if enabling:
                pass  # the rule keeps them disabled (the policy transforms the desired status): nothing to do
            elif self._guarded(user, keys, identity, "disable"):
                self._add(ActionKind.DISABLE, user, identity, chosen.reason,
                          precondition=Precondition(status=user.status, inactive=chosen.fact))
            chosen = None  # disabled: its memberships follow the desired state as usual
        elif want.status is not user.status:
            kind = ActionKind.ENABLE if want.status is Status.ACTIVE else ActionKind.DISABLE
            if self._guarded(user, keys, identity, str(kind)):
                fact = f" ({want.fact})" if want.fact else ""  # the source's raw fact, when it gave one
                self._add(kind, user, identity, f"desired status is {want.status.value}{fact}",
                          precondition=Precondition(status=user.status))
        held = user.ref in self.rules.held_refs  # unlicensed, activity unknown: the desired state does not relicense
        reclaimed = self.licence_groups & want.groups if chosen is not None or held else _NONE
        if reclaimed:  # the policy transforms the desired state: no licence group for this user
            self._reclaim(user, keys, identity, chosen, sorted(reclaimed.intersection(current)))
            changed = ((want.groups - reclaimed) & self.managed_set) ^ (set(current) - reclaimed)
        else:
            changed = (want.groups & self.managed_set).symmetric_difference(current)
        if not changed:
            return  # the usual case: memberships already as desired
        for group in sorted(changed):
            wanted = group in want.groups
            if wanted == (group in current):
                continue
            kind = ActionKind.ADD_MEMBER if wanted else ActionKind.REMOVE_MEMBER
            change = f"{'add to' if wanted else 'remove from'} {group}"
            info = self.actual.groups[group]
            if info.readonly:
                self.warn(
                    WarningKind.READONLY,
                    identity,
                    f"{group} belongs to a read-only directory: would {change}; change it in the directory",
                )
                continue
            if info.idp_managed:
                self.warn(
                    WarningKind.IDP_MANAGED,
                    identity,
                    f"{group} is synced from the identity provider: would {change}; change it in the IdP",
                )
                continue
            if not self._guarded(user, keys, identity, change):
                continue
            reason = f"desired member of {group}" if wanted else f"not a desired member of {group}"
            self._add(kind, user, identity, reason, group=group, precondition=Precondition(member=not wanted))

    def plan_absent(self, user: User) -> None:
        keys = self.scoped.get(user.ref)
        if keys is None:
            return  # outside scope.users
        protected = self._count(user, keys)
        policy = self.policy.absent
        if policy is not AbsentPolicy.IGNORE:
            self.rules.exemption(keys)  # in scope: their exemption is not "unused" although absent decides
        match policy:
            case AbsentPolicy.IGNORE:
                chosen = self.rules.select(user, keys, desired=False, protected=protected)
                if chosen is not None and self.disables:
                    if self._guarded(user, keys, user.label, "disable"):
                        self._add(ActionKind.DISABLE, user, user.label, chosen.reason,
                                  precondition=Precondition(status=user.status, inactive=chosen.fact))
                elif chosen is not None:
                    current = self.groups_of.get(user.ref, ())
                    self._reclaim(user, keys, user.label, chosen, sorted(self.licence_groups.intersection(current)))
                return
            case AbsentPolicy.DISABLE:
                if user.status is Status.DISABLED:
                    return
                kind = ActionKind.DISABLE
            case AbsentPolicy.DELETE:
                kind = ActionKind.DELETE
            case _:
                assert_never(policy)
        unprotected = self._protection(user, keys) is None and not user.idp_managed
        if user.email is None and unprotected and self.protect_emails:
            # `scope.protect` names emails and the target hides this account's: it may be protected
            self.warn(WarningKind.PROTECTED, user.label,
                      f"may be protected (scope.protect names emails, and the target shows no email for this "
                      f"account): would {kind}; never touched. Protect accounts by username here")
            return
        if user.email is None and self.unfound_emails and unprotected:
            # The target hides this account's email (DC: disabled or unlicensed users on 9.3+, every
            # user before 9.3), so it may be a desired user that was not found by email: calling it
            # absent would be a guess (SPEC §4), and under `delete` an irreversible one.
            shown = ", ".join(self.unfound_emails[:3])
            more = f" and {len(self.unfound_emails) - 3} more" if len(self.unfound_emails) > 3 else ""
            self.warn(
                WarningKind.AMBIGUOUS,
                user.label,
                f"would {kind} as absent, but the target shows no email for it, so it may be "
                f"{'the desired user' if len(self.unfound_emails) == 1 else 'one of the desired users'} "
                f"{shown}{more} (not found by email); write desired users by username, or have "
                "the source supply both username and email",
            )
            return
        if self._guarded(user, keys, user.label, str(kind)):
            reason = f"not in the desired state (policy.absent: {policy.value})"
            if kind is ActionKind.DELETE:
                self._delete(user, reason, Precondition(status=user.status))
            else:
                self._add(kind, user, user.label, reason, precondition=Precondition(status=user.status))

    @property
    def disables(self) -> bool:
        """Whether the inactivity rule disables (else it removes licences)."""
        return self.policy.inactive is not None and self.policy.inactive.action is InactiveAction.DISABLE

    def _reclaim(self, user: User, keys: tuple[str, ...], identity: str, chosen: Selection | None,
                 groups: list[str]) -> None:
        """`remove_licence`: one action per licence group the user is in (each journaled on its own)."""
        if chosen is None or not groups:
            return
        stays = other_grants(user.ref, groups, self.grants)
        seat = f"; the seat stays: still in {', '.join(stays)}" if stays else "; frees the seat"
        for group in groups:
            change = f"remove the licence group {group}"
            info = self.actual.groups[group]
            if info.readonly:
                self.warn(WarningKind.READONLY, identity, f"{group} belongs to a read-only directory: would "
                          f"{change} ({chosen.reason}); change it in the directory")
                continue
            if info.idp_managed:
                self.warn(WarningKind.IDP_MANAGED, identity, f"{group} is synced from the identity provider: would "
                          f"{change} ({chosen.reason}); change it in the IdP")
                continue
            if self._guarded(user, keys, identity, change):
                self._add(ActionKind.REMOVE_LICENCE, user, identity, chosen.reason + seat, group=group,
                          precondition=Precondition(member=True, inactive=chosen.fact))

    def plan_unsynced(self, user: User) -> None:
        keys = self.scoped.get(user.ref)
        if self.policy.unsynced is not UnsyncedPolicy.DELETE or keys is None:
            return
        if self._guarded(user, keys, user.label, "delete the unsynced entry"):
            self._delete(user, "unsynced from directory (policy.unsynced: delete)", Precondition(unsynced=True))

    def _delete(self, user: User, reason: str, precondition: Precondition) -> None:
        """A delete, unless `policy.delete_guard` finds the user owns something: then a disable, with the
        evidence as its reason and precondition (an entry that cannot be disabled: a warning)."""
        guard = self.policy.delete_guard
        if guard is None:
            self._add(ActionKind.DELETE, user, user.label, reason, precondition=precondition)
            return
        verdict = judge(guard, self.impacts.get(user.ref))
        evidence = ", ".join(verdict.evidence)
        if not verdict.blocked:
            checked = f"{evidence}, allowed (unknown: allow)" if evidence else "nothing found"
            self._add(ActionKind.DELETE, user, user.label, f"{reason}; delete_guard: {checked}",
                      precondition=precondition)
            return
        if user.unsynced or user.status is Status.DISABLED:
            # nothing to downgrade to: an unsynced entry cannot log in, a disabled user already cannot
            what = "unsynced entry" if user.unsynced else "disabled user"
            self.warn(WarningKind.GUARDED, user.label,
                      f"would delete ({reason}); kept as a {what}: {evidence} (policy.delete_guard)")
            return
        self._add(ActionKind.DISABLE, user, user.label, f"delete → disable: {evidence}; {reason}",
                  precondition=Precondition(status=user.status, guarded=Guarded(verdict.evidence)))
