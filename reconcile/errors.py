"""The one error tree: every error raised on purpose is defined here, and says what, where and what to do next.

    ReconcileError                     exit 1
    ├── ConfigError                    exit 1   desired files: a list of `file:line:col: message`
    ├── SourceError                    exit 1   a source could not be read (LDAP unreachable, bad bind, CSV)
    ├── TargetError                    exit 1   `METHOD url -> status: what to do`
    │   └── AuthError                  exit 1   wrong or anonymous credentials
    ├── IdentityConflict               exit 1   desired users that cannot be matched to accounts unambiguously
    ├── PlanFileError                  exit 1   not a plan file, another plan format, or edited after planning
    ├── ActionsFailed                  exit 1   some actions failed during apply (each one listed)
    ├── UsageError                     exit 2   wrong flags (e.g. a digest prefix under 12 characters)
    └── SafetyRefusal                  exit 4   limits, empty source, protected principals
        ├── LimitExceeded              exit 4
        ├── EmptySource                exit 4
        ├── StalePlan                  exit 4
        └── ApprovalMismatch           exit 4
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconcile.results import ApplyResult


class ReconcileError(Exception):
    """Base class; `exit_code` is what the CLI exits with."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  → {self.hint}"
        return self.message


class ConfigError(ReconcileError):
    """The desired files are invalid; `problems` holds every `file:line:col: message`."""

    def __init__(self, problems: Sequence[str], *, subject: str = "the desired state") -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in {subject}:"
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))


class SourceError(ReconcileError):
    """A source could not be read."""


class TargetError(ReconcileError):
    """A target refused or failed a request: `METHOD url -> status: what to do`."""

    def __init__(self, message: str, *, status: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class AuthError(TargetError):
    """The credentials are wrong, or the server treats them as anonymous."""


class IdentityConflict(ReconcileError):
    """Desired users cannot be matched to accounts unambiguously (SPEC §4)."""


class PlanFileError(ReconcileError):
    """A plan file cannot be used: not what `reconcile plan --out` wrote, another format, or edited since."""


class ActionsFailed(ReconcileError):
    """Apply finished, but some actions failed; a later apply of the same plan retries them.

    Carries the apply's `result` (for the run report and notifications).
    """

    def __init__(self, message: str, *, result: ApplyResult) -> None:
        super().__init__(message, hint="fix the causes, then run the same apply again: it retries only "
                         "what is not done")
        self.result = result


class UsageError(ReconcileError):
    exit_code = 2


class SafetyRefusal(ReconcileError):
    exit_code = 4


class LimitExceeded(SafetyRefusal):
    pass


class EmptySource(SafetyRefusal):
    pass


class StalePlan(SafetyRefusal):
    pass


class ApprovalMismatch(SafetyRefusal):
    pass
