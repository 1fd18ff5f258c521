"""(b) apply of N membership changes under a simulated rate limit; (c) serialized Confluence DC deletions.

Both run `reconcile plan --out` then `reconcile apply PLAN --approve DIGEST` as child processes
against a simulator process, and read the outcome from the journal and the simulator's log.
"""

from __future__ import annotations

import itertools
import json
import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.runner import Run, floor_row, process_cpu, reconcile
from tests.support import desired
from tests.support.simproc import NON_IDEMPOTENT, Sim, duplicated

INTERNAL_DIRECTORY = "Confluence Internal Directory"


@dataclass(frozen=True, slots=True)
class Applied:
    plan_actions: int
    planned: Run
    applied: Run
    journal: list[dict[str, Any]]
    writes: int  # mutating requests that reached the simulator's handlers during apply
    requests: int  # every API request during apply (reads included)
    rejected_429: int
    duplicated_writes: int  # the same successful write (method, path, body) more than once
    duplicated_non_idempotent: int  # of those, POSTs (never retried blindly)
    residual_actions: int  # a plan after apply (must be 0)
    sim_cpu: float  # the simulator's CPU seconds during apply

    @property
    def outcomes(self) -> Counter[str]:
        last = {e["id"]: e["event"] for e in self.journal}
        return Counter(last.values())

    @property
    def execution_seconds(self) -> float:
        """From the first journaled start to the last journaled outcome: the actions themselves."""
        times = [datetime.fromisoformat(e["at"].replace("Z", "+00:00")) for e in self.journal]
        return (max(times) - min(times)).total_seconds() if times else 0.0

    def to_json(self) -> dict[str, Any]:
        outcomes = self.outcomes
        return {
            "actions": self.plan_actions,
            "done": outcomes.get("done", 0),
            "already": outcomes.get("already", 0),
            "failed": outcomes.get("failed", 0) + outcomes.get("started", 0),
            "apply_exit_code": self.applied.returncode,
            "apply_wall_s": round(self.applied.seconds, 3),
            "execution_s": round(self.execution_seconds, 3),
            "apply_peak_rss_mb": round(self.applied.peak_rss_mb, 1),
            "plan_wall_s": round(self.planned.seconds, 3),
            "requests": self.requests,
            "writes": self.writes,
            "rejected_429": self.rejected_429,
            "duplicated_writes": self.duplicated_writes,
            "duplicated_non_idempotent": self.duplicated_non_idempotent,
            "residual_actions": self.residual_actions,
        }


def plan_and_apply(sim: Sim, want: desired.Desired, work: Path, name: str) -> Applied:
    """Plan, apply the plan with its digest, then plan again (the residual must be empty)."""
    plan_file, state = work / f"{name}.json", work / f"{name}-state"
    planned = reconcile(["--desired", str(want.directory), "plan", "--out", str(plan_file)], env=want.env)
    if planned.returncode != 0:
        raise RuntimeError(f"reconcile plan exited {planned.returncode}: {planned.stderr[-2000:]}")
    plan = json.loads(plan_file.read_text(encoding="utf-8"))
    sim.clear_log()
    before = process_cpu(sim.proc.pid)
    applied = reconcile(["--desired", str(want.directory), "--state-dir", str(state), "apply", str(plan_file),
                         "--approve", plan["digest"]], env=want.env)
    sim_cpu = process_cpu(sim.proc.pid) - before
    stats, writes = sim.stats(), sim.writes()
    faults = sim.entries("fault")
    journal_file = state / "journal" / f"{plan['digest']}.jsonl"
    journal = [json.loads(line) for line in journal_file.read_text(encoding="utf-8").splitlines()
               if line.strip()] if journal_file.exists() else []
    dup = duplicated(writes)
    residual = reconcile(["--desired", str(want.directory), "plan", "--format", "json"], env=want.env)
    residual_actions = len(json.loads(residual.stdout)["actions"]) if residual.returncode == 0 else -1
    return Applied(
        plan_actions=len(plan["actions"]), planned=planned, applied=applied, journal=journal,
        writes=len(writes), requests=int(sum(stats["requests"].values())),
        rejected_429=sum(1 for f in faults if f["status"] == 429),
        duplicated_writes=len(dup),
        duplicated_non_idempotent=len(duplicated(writes, methods=NON_IDEMPOTENT)),
        residual_actions=residual_actions, sim_cpu=sim_cpu,
    )


def memberships(sim: Sim, target: str, work: Path, *, changes: int, rate: float) -> dict[str, Any]:
    """(b) `changes` membership changes under `rate` requests/s: wall time against changes / rate."""
    people, groups = desired.people_of(sim.state(target), target)
    want = desired.write(work / f"apply-{target}", target, sim.url,
                         desired.membership_changes(people, groups, changes), groups,
                         limits={"add_member": changes, "remove_member": changes})
    applied = plan_and_apply(sim, want, work, f"apply-{target}")
    bound = applied.plan_actions / rate  # one write per planned action at least (protected ones are warnings)
    row = {"name": f"apply {changes} membership changes ({target})", "target": target, "rate_limit": rate,
           "lower_bound_s": round(bound, 3), **applied.to_json(),
           **floor_row(wall=applied.execution_seconds, client_cpu=applied.applied.cpu_seconds,
                       sim_cpu=applied.sim_cpu, peak_rss_mb=applied.applied.peak_rss_mb,
                       requests=applied.requests, floor_s=bound,
                       floor_how=f"{applied.plan_actions} actions / {rate:g} requests/s")}
    row["ratio_execution"] = round(applied.execution_seconds / bound, 3)
    row["ratio_command"] = round(applied.applied.seconds / bound, 3)
    return row


def delete_users(sim: Sim, work: Path, count: int) -> Applied:
    """Plan and apply the deletion of `count` active internal-directory users of the DC world (the rest kept)."""
    state = sim.state(desired.DC)
    people, groups = desired.people_of(state, desired.DC)
    internal = [u["username"] for u in state["users"]
                if u["directory"] == INTERNAL_DIRECTORY and u["active"] and not u["unsynced"]]
    want = desired.write(work / "delete-dc", desired.DC, sim.url, desired.without(people, count, only=internal),
                         groups, absent="delete", limits={"delete": count})
    return plan_and_apply(sim, want, work, "delete-dc")


def deletions(sim: Sim, work: Path, *, count: int, task_seconds: float) -> dict[str, Any]:
    """(c) `count` Confluence DC deletions, one long task at a time: wall time against the tasks' sum."""
    applied = delete_users(sim, work, count)
    tasks = [e for e in sim.writes() if e.method == "DELETE" and e.status == 202]
    violations = len(sim.entries("violation"))
    arrivals = [e["time"] for e in sim.entries("request") if e["method"] == "DELETE" and e["status"] == 202]
    total = len(tasks) * task_seconds
    row = {"name": f"{count} DC deletions (long tasks, serialized)", "target": desired.DC,
           "task_seconds": task_seconds, "tasks": len(tasks), "sum_of_tasks_s": round(total, 3),
           "serialization_violations": violations, **applied.to_json(),
           **floor_row(wall=applied.execution_seconds, client_cpu=applied.applied.cpu_seconds,
                       sim_cpu=applied.sim_cpu, peak_rss_mb=applied.applied.peak_rss_mb,
                       requests=applied.requests, floor_s=total,
                       floor_how=f"sum of {len(tasks)} task durations of {task_seconds:g} s")}
    row["ratio_execution"] = round(applied.execution_seconds / total, 3) if total else None
    row["between_tasks_ms"] = between_tasks(arrivals, task_seconds)
    return row


def between_tasks(arrivals: list[float], task_seconds: float) -> dict[str, float] | None:
    """On the simulator's clock: from each task's finish to the next deletion handled (ms; the log's time of a
    DELETE is when it was handled, and its task starts then). It holds the poll that sees the finish, the
    client's turn-around and the next DELETE's own latency: the whole price of strict serialization."""
    gaps = sorted(1000 * (b - a - task_seconds) for a, b in itertools.pairwise(arrivals))
    if not gaps:
        return None
    return {"mean": round(statistics.mean(gaps), 1), "median": round(statistics.median(gaps), 1),
            "p90": round(gaps[int(0.9 * len(gaps))], 1), "max": round(gaps[-1], 1)}
