"""``status`` must not believe a run marked running whose orchestrator is gone,
nor be fooled by a pid the kernel gave to another process since."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from nightcrew.core.states import RunState
from nightcrew.engine.liveness import orchestrator_gone
from nightcrew.store.records import RunRow, Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / ".nightcrew" / "nightcrew.db")
    yield opened
    opened.close()


def running_run(store: Store, pid: int) -> RunRow:
    run = store.create_run(
        kind="plan",
        source_path="PLAN.md",
        source_sha256="x",
        config={},
        prefix_sha256="y",
        pid=pid,
    )
    store.set_run_state(run.id, RunState.RUNNING, reason="started")
    return store.run(run.id)


def test_a_live_orchestrator_is_running(store: Store) -> None:
    run = running_run(store, os.getpid())  # this process started before the run

    assert orchestrator_gone(store, run) is None


def test_a_dead_pid_is_gone(store: Store) -> None:
    child = subprocess.Popen(["true"])
    child.wait()  # reaped: the pid names no process now
    run = running_run(store, child.pid)

    assert orchestrator_gone(store, run) == child.pid


def test_a_recycled_pid_is_gone(store: Store) -> None:
    run = running_run(store, 1)
    # A process that started after the run became running cannot be its
    # orchestrator, whatever pid it has.
    later = subprocess.Popen(["sleep", "60"], stdin=subprocess.DEVNULL)
    try:
        store.db.execute(
            "UPDATE state_history SET ts = '2000-01-01T00:00:00.000+00:00' WHERE entity = 'run'"
        )
        store.db.execute("UPDATE runs SET orchestrator_pid = ?", (later.pid,))
        store.db.commit()

        assert orchestrator_gone(store, store.run(run.id)) == later.pid
    finally:
        later.kill()
        later.wait()


def test_a_finished_run_is_never_gone(store: Store) -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    run = running_run(store, child.pid)
    store.set_run_state(run.id, RunState.INTERRUPTED, reason="stopped")

    assert orchestrator_gone(store, store.run(run.id)) is None
