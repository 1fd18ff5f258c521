"""User deletion as Confluence DC runs it: a long-running task per user, strictly one at a time.

Time-driven without background tasks: each task's start and finish are computed at submission (after
the previous task's finish) and applied lazily whenever anything reads the world (`ctx.tick()`).
A deletion submitted while another is still queued or running is served, but recorded as a
violation in the log, so tests can assert the client serialised its deletions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from reconcile.sim.confluence_dc.world import DcUser
from reconcile.sim.context import SimContext

TASK_NAME = "com.atlassian.confluence.user.DeleteUserLongRunningTask"


@dataclass(slots=True)
class LongTask:
    id: str
    user_key: str
    username: str
    submitted: float
    start: float
    finish: float
    done: bool = False
    successful: bool = True
    messages: list[dict[str, Any]] = field(default_factory=list)


class DeletionQueue:
    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx
        self.tasks: dict[str, LongTask] = {}
        self.pending: list[LongTask] = []
        self.busy_until = 0.0
        ctx.tickers.append(self.advance)

    def submit(self, user: DcUser, *, method: str, path: str) -> LongTask:
        self.advance()
        now = self.ctx.clock()
        if self.pending:
            running = self.pending[0]
            self.ctx.log.violation(
                f"deletion of {user.username} ({user.key}) submitted while task {running.id} "
                f"({running.username}) has not finished: deletions must run one at a time",
                method=method,
                path=path,
            )
        start = max(now, self.busy_until)
        finish = start + self.ctx.dc.delete_seconds
        self.busy_until = finish
        number = len(self.tasks) + 1
        task_id = str(uuid.UUID(int=(self.ctx.settings.seed << 64) | number))
        task = LongTask(task_id, user.key, user.username, now, start, finish)
        self.tasks[task_id] = task
        self.pending.append(task)
        return task

    def advance(self) -> None:
        now = self.ctx.clock()
        while self.pending and self.pending[0].finish <= now:
            task = self.pending.pop(0)
            task.done = True
            if task.user_key in self.ctx.dc.users:
                self.ctx.dc.remove_user(task.user_key)
                task.messages.append({"key": "user.delete.progress.complete", "args": [],
                                      "translation": f"User {task.username} has been deleted."})
            else:
                task.successful = False
                task.messages.append({"key": "user.delete.progress.general.error", "args": [],
                                      "translation": f"Could not delete user {task.username}: it no longer exists."})

    def status(self, task: LongTask, base: str) -> dict[str, Any]:
        now = self.ctx.clock()
        if task.done:
            percent = 100
        elif now < task.start:
            percent = 0
        else:
            span = max(task.finish - task.start, 1e-9)
            percent = min(99, max(15, int(100 * (now - task.start) / span)))
        elapsed = int(1000 * (min(now, task.finish) - task.submitted))
        return {
            "id": task.id,
            "name": {"key": TASK_NAME, "args": []},
            "elapsedTime": elapsed,
            "percentageComplete": percent,
            "successful": task.successful,
            "messages": list(task.messages),
            "_links": {"base": base, "context": "", "self": f"{base}/rest/api/longtask/{task.id}"},
        }


def queue(ctx: SimContext) -> DeletionQueue:
    found = ctx.extra.get("dc_deletions")
    if not isinstance(found, DeletionQueue):
        found = ctx.extra["dc_deletions"] = DeletionQueue(ctx)
    return found
