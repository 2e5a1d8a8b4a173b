"""Is a run that the store calls ``running`` really running?

A run's orchestrator records its pid when it starts or resumes the run. If
that process is gone (SIGKILL, a power cut), the store still says
``running`` until the next run recovers it; ``status`` must not believe it.
A pid the kernel has since given to another process is caught by its start
time: a process that started after the run last became ``running`` cannot be
the run's orchestrator.
"""

from __future__ import annotations

from datetime import datetime

import psutil

from nightcrew.core.states import RunState
from nightcrew.store.records import RunRow, Store

# Process start times come from the kernel in clock ticks; allow for rounding.
_SLACK_S = 1.0


def orchestrator_gone(store: Store, run: RunRow) -> int | None:
    """The recorded pid of a ``running`` run whose orchestrator is no longer
    alive, or None (the run is not marked running, its pid is unknown, or its
    orchestrator is alive)."""
    pid = run.orchestrator_pid
    if run.state != RunState.RUNNING or pid is None:
        return None
    try:
        process = psutil.Process(pid)
        created = process.create_time()
        if process.status() == psutil.STATUS_ZOMBIE:
            return pid
    except psutil.Error:
        return pid
    since = _became_running(store, run.id)
    if since is not None and created > since + _SLACK_S:
        return pid  # the pid was recycled
    return None


def _became_running(store: Store, run_id: str) -> float | None:
    """When the run last became ``running``, as a POSIX timestamp."""
    row = store.db.execute(
        "SELECT ts FROM state_history WHERE entity = 'run' AND entity_id = ? AND to_state = ?"
        " ORDER BY id DESC LIMIT 1",
        (run_id, str(RunState.RUNNING)),
    ).fetchone()
    if row is None:
        return None
    return datetime.fromisoformat(row[0]).timestamp()
