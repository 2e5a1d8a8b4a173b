"""After a crash: orphaned agents are killed (only if they are still ours), open
attempts become crashed, their items pending, their runs crashed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psutil
import pytest

from nightcrew.cli.display import EventPrinter
from nightcrew.core.states import AttemptState, ItemState, RunState
from nightcrew.core.usage import TokenCounts
from nightcrew.engine.bus import Bus
from nightcrew.engine.recovery import recover
from nightcrew.engine.report import Level, Progress, SummaryRow
from nightcrew.proc import process_create_time
from nightcrew.store.records import AttemptRow, ItemRow, RunRow, Store


class RecordingReporter:
    def __init__(self) -> None:
        self.notes: list[tuple[str, Level]] = []

    def note(self, message: str, level: Level = "info") -> None:
        self.notes.append((message, level))

    def progress(self, snapshot: Progress) -> None:
        pass

    def summary(self, rows: list[SummaryRow], footer: str) -> None:
        pass

    def close(self) -> None:
        pass


def watched(store: Store, reporter: RecordingReporter) -> Bus:
    """A run's bus: the store records, the console (``reporter``) prints."""
    bus = Bus()
    bus.attach_store(store)
    bus.subscribe(EventPrinter(reporter), name="the console")
    return bus


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / ".nightcrew" / "nightcrew.db")
    yield opened
    opened.close()


@pytest.fixture
def agent() -> Iterator[subprocess.Popen[str]]:
    """A stand-in agent: a shell in its own session that started a grandchild, whose pid it
    prints, and waits for it."""
    child = subprocess.Popen(
        ["sh", "-c", "sleep 60 & echo $!; wait"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        yield child
    finally:
        # the whole group: the grandchild holds the stdout pipe open
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.communicate(timeout=10)


def grandchild_pid(agent: subprocess.Popen[str]) -> int:
    assert agent.stdout is not None
    return int(agent.stdout.readline())


def alive(pid: int) -> bool:
    """A zombie counts as dead: a container's init may be slow to reap it."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_until_dead(pid: int, deadline_s: float = 10) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return False


def crashed_mid_attempt(
    store: Store, pid: int, create_time: float | None
) -> tuple[RunRow, ItemRow, ItemRow, AttemptRow]:
    """The rows a run leaves behind when its orchestrator is killed mid-attempt."""
    run = store.create_run(
        kind="plan",
        source_path="PLAN.md",
        source_sha256="a" * 64,
        config={},
        prefix_sha256="b" * 64,
        pid=999_999,
    )
    store.set_run_state(run.id, RunState.RUNNING)
    done = store.add_item(run.id, key="1", number=1, title="One", body="b", sha="c")
    store.set_item_state(done.id, ItemState.IN_PROGRESS)
    store.set_item_state(done.id, ItemState.PASSED, commit_sha="f" * 40)
    item = store.add_item(run.id, key="2", number=2, title="Two", body="b", sha="d")
    store.set_item_state(item.id, ItemState.IN_PROGRESS)
    attempt = store.start_attempt(
        run_id=run.id,
        item_id=item.id,
        backend="claude",
        model="claude-sonnet-4-5",
        prefix_sha256="b" * 64,
        prompt_sha256="e" * 64,
        base_sha=None,
        evidence_dir=None,
    )
    store.update_attempt(attempt.id, agent_pid=pid, agent_create_time=create_time)
    for n, cost in ((1, "0.10"), (2, "0.05")):
        store.record_usage(
            attempt.id,
            kind="response",
            message_id=f"msg_{n}",
            request_id=None,
            model="claude-sonnet-4-5",
            tokens=TokenCounts(input=10),
            cost_usd=Decimal(cost),
            cost_source="priced",
        )
    return run, done, item, attempt


def test_recover_kills_the_orphaned_agent_and_closes_the_run(
    store: Store, agent: subprocess.Popen[str]
) -> None:
    grandchild = grandchild_pid(agent)
    run, done, item, attempt = crashed_mid_attempt(store, agent.pid, process_create_time(agent.pid))
    finished_run = store.create_run(
        kind="plan",
        source_path="OLD.md",
        source_sha256="0" * 64,
        config={},
        prefix_sha256="0" * 64,
        pid=1,
    )
    store.set_run_state(finished_run.id, RunState.RUNNING)
    store.set_run_state(finished_run.id, RunState.SUCCEEDED)
    reporter = RecordingReporter()

    assert recover(store, watched(store, reporter)) == [run.id]

    assert agent.wait(timeout=10) < 0  # killed by a signal
    assert wait_until_dead(grandchild), "the agent's own child survived"
    got = store.attempt(attempt.id)
    assert got.state == AttemptState.CRASHED
    assert got.finished_at is not None
    assert got.exit_reason == (
        "the orchestrator stopped during this attempt;"
        f" its agent (pid {agent.pid}) was still running and was killed"
    )
    # what the responses seen before the crash cost is kept, not lost or zeroed
    assert (got.cost_usd, got.cost_source) == (Decimal("0.15"), "priced")
    assert store.item(item.id).state == ItemState.PENDING
    assert store.item(done.id).state == ItemState.PASSED
    assert store.run(run.id).state == RunState.CRASHED
    assert store.run(finished_run.id).state == RunState.SUCCEEDED
    # the crashed run's log says what recovery did to it
    assert [e["kind"] for e in store.events(run.id)] == ["orphan_killed", "crash_recovered"]
    assert reporter.notes == [(f"killed an orphaned agent process group (pid {agent.pid})", "warn")]
    # nothing left to recover the second time
    assert recover(store, watched(store, reporter)) == []


def test_a_pid_now_owned_by_another_process_is_left_alone(
    store: Store, agent: subprocess.Popen[str]
) -> None:
    grandchild = grandchild_pid(agent)
    real = process_create_time(agent.pid)
    assert real is not None
    run, _, item, attempt = crashed_mid_attempt(store, agent.pid, real - 1000.0)
    reporter = RecordingReporter()

    assert recover(store, watched(store, reporter)) == [run.id]

    assert agent.poll() is None, "recover killed a process that was not its agent"
    assert alive(grandchild)
    got = store.attempt(attempt.id)
    assert got.state == AttemptState.CRASHED
    assert got.exit_reason == "the orchestrator stopped during this attempt"
    assert store.item(item.id).state == ItemState.PENDING
    assert store.run(run.id).state == RunState.CRASHED
    assert reporter.notes == []


def test_an_attempt_whose_agent_is_gone_becomes_crashed_with_unknown_cost(
    store: Store,
) -> None:
    gone = subprocess.Popen(["true"], start_new_session=True)
    gone.wait(timeout=10)
    run, _, item, attempt = crashed_mid_attempt(store, gone.pid, None)
    store.db.execute("DELETE FROM usage_records WHERE attempt_id = ?", (attempt.id,))

    assert recover(store, watched(store, RecordingReporter())) == [run.id]

    got = store.attempt(attempt.id)
    assert got.state == AttemptState.CRASHED
    assert got.cost_usd is None  # unknown, never 0
    assert got.cost_source is None
    assert store.totals([got]).unknown_cost == 1
    assert store.item(item.id).state == ItemState.PENDING


def test_the_crashed_agents_unfinished_writes_are_removed_and_reported(
    store: Store, agent: subprocess.Popen[str], tmp_path: Path
) -> None:
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", root], check=True)
    grandchild = grandchild_pid(agent)
    run, _, _, _ = crashed_mid_attempt(store, agent.pid, process_create_time(agent.pid))
    # Claude Code names a temp file with the writing process's pid.
    own = f"src/stock.py.tmp.{agent.pid}.1a2b3c4d5e6f"
    child = f"notes.md.tmp.{grandchild}.ab"
    other = "stock.py.tmp.1.ff"  # not this agent's: some other program's
    for rel in (own, child, other):
        (root / rel).write_text("half written\n")
    reporter = RecordingReporter()

    assert recover(store, watched(store, reporter), root) == [run.id]

    assert not (root / own).exists() and not (root / child).exists()
    assert (root / other).exists()
    assert (
        f"removed the crashed agent's unfinished write(s): {child}, {own}",
        "warn",
    ) in reporter.notes
