"""After a crash: close what a dead orchestrator left open.

Called with the project lock held, so any run still marked ``running`` has no
live orchestrator. Its open attempts become ``crashed`` (their agent process
groups are reaped first, so no orphan agent keeps editing the tree), their
items go back to ``pending``, and the run becomes ``crashed``. Temp files of
the agent's unfinished atomic writes (``<file>.tmp.<pid>.<hex>``, named with
the pid of the writing process: the stored agent pid, or one in its process
tree) are removed, so a resumed run never finds or commits them.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from nightcrew import debris, gitops, proc
from nightcrew.core.events import CrashRecovered, OrphanKilled, UnfinishedWritesRemoved
from nightcrew.core.states import AttemptState, ItemState, RunState
from nightcrew.engine.report import Reporter
from nightcrew.store.records import Store


def recover(store: Store, reporter: Reporter, root: Path | None = None) -> list[str]:
    """Return the ids of runs that were found crashed. With ``root`` (the
    project), the crashed agents' temp files are removed from it. What was
    done is told as events to ``reporter`` (the run's bus)."""
    crashed_runs: list[str] = []
    writers: set[int] = set()
    for attempt in store.running_attempts():
        killed = False
        if attempt.agent_pid:
            writers |= _agent_tree(attempt.agent_pid, attempt.agent_create_time)
            killed = proc.reap_orphan(attempt.agent_pid, attempt.agent_create_time)
        estimate = _live_cost(store, attempt.id)
        reason = "the orchestrator stopped during this attempt"
        if killed and attempt.agent_pid:
            reason += f"; its agent (pid {attempt.agent_pid}) was still running and was killed"
            reporter.emit(
                OrphanKilled(
                    run_id=attempt.run_id,
                    item_id=attempt.item_id,
                    attempt_id=attempt.id,
                    pid=attempt.agent_pid,
                )
            )
        store.finish_attempt(
            attempt.id,
            AttemptState.CRASHED,
            reason=reason,
            cost_usd=estimate,
            cost_source="priced" if estimate is not None else None,
        )
    for run in store.runs_in_state(RunState.RUNNING):
        for item in store.items(run.id):
            if item.state == ItemState.IN_PROGRESS:
                store.set_item_state(item.id, ItemState.PENDING, reason="its run crashed")
        store.set_run_state(
            run.id, RunState.CRASHED, reason="found running with no orchestrator alive"
        )
        reporter.emit(CrashRecovered(run_id=run.id, run=run.id))
        crashed_runs.append(run.id)
    if root is not None and writers:
        _remove_unfinished_writes(root, writers, reporter, crashed_runs)
    return crashed_runs


def _agent_tree(pid: int, create_time: float | None) -> set[int]:
    """The pids a crashed agent may have written temp files as: its own, and
    while it is still the process nightcrew started, those of its process tree."""
    current = proc.process_create_time(pid)
    if current is not None and (create_time is None or abs(current - create_time) > 0.01):
        return {pid}  # the pid is another process's now
    return proc.process_tree(pid)


def _remove_unfinished_writes(
    root: Path, writers: set[int], reporter: Reporter, crashed_runs: list[str]
) -> None:
    removed = debris.remove_written_by(root, gitops.untracked_files(root), writers)
    if removed:
        run_id = crashed_runs[-1] if crashed_runs else None
        reporter.emit(UnfinishedWritesRemoved(run_id=run_id, paths=tuple(removed)))


def _live_cost(store: Store, attempt_id: int) -> Decimal | None:
    """What the responses seen before the crash cost, as priced while streaming."""
    rows = store.db.execute(
        "SELECT cost_usd FROM usage_records WHERE attempt_id = ? AND kind = 'response'",
        (attempt_id,),
    ).fetchall()
    known = [Decimal(r[0]) for r in rows if r[0] is not None]
    return sum(known, Decimal(0)) if known else None
