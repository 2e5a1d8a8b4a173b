"""--wait-on-limit and the agent failures a retry cannot fix, through the run and
build loops with a fake backend at the seam and an injected clock and sleeper:
nothing here waits on a wall clock."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nightcrew.agents.base import AgentFailure, Finished
from nightcrew.config import Settings
from nightcrew.core.errors import ExitCode
from nightcrew.core.states import AttemptState, ItemState
from nightcrew.engine.builder import Builder, BuildOptions
from nightcrew.engine.limits import LimitWaiter
from nightcrew.engine.report import NullReporter
from nightcrew.engine.runner import Runner, RunOptions
from nightcrew.project import Project
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import Store
from nightcrew.testing import FakeBackend, Script, success
from nightcrew.work.backlog import FeatureSpec
from nightcrew.work.plan import parse_plan

NOW = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}
PLAN = "# Plan\n\n## Batch 1: One\n\n### Task 1: One\n\n## Batch 2: Two\n\n### Task 1: Two\n"


def limited(reset_at: datetime | None) -> Finished:
    return Finished.failure(
        "Claude AI usage limit reached",
        AgentFailure("usage_limit", "Claude AI usage limit reached", False, "wait", reset_at),
    )


def ScriptedBackend(ends: Sequence[Finished]) -> FakeBackend:
    """Each session ends with the next of ``ends`` (the last one repeats)."""
    return FakeBackend([Script(events=(), finished=end, session_id=None) for end in ends])


def project(tmp_path: Path) -> Project:
    root = tmp_path / "proj"
    root.mkdir(parents=True)
    (root / "PLAN.md").write_text(PLAN)
    env = {**os.environ, **GIT_ENV}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "initial"]):
        subprocess.run(["git", *args], cwd=root, check=True, env=env, capture_output=True)
    return Project(root)


class Waits:
    def __init__(self) -> None:
        self.until: list[datetime] = []

    def __call__(self, when: datetime) -> None:
        self.until.append(when)


def run(
    tmp_path: Path, backend: FakeBackend, waits: Callable[[datetime], None], **settings: object
) -> tuple[Project, ExitCode, str]:
    proj = project(tmp_path)
    runner = Runner(
        proj,
        parse_plan(PLAN, proj.root / "PLAN.md"),
        Settings(gates=("true",), **settings),  # type: ignore[arg-type]
        backend,
        NullReporter(),
        RunOptions(register=False),
    )
    runner.limits = LimitWaiter(now=lambda: NOW, wait_until=waits)
    result = runner.execute()
    return proj, result.exit_code, result.message


def latest(store: Store) -> str:
    run = store.latest_run()
    assert run is not None
    return run.id


def reasons(store: Store, entity: str, entity_id: int) -> list[str]:
    rows = store.db.execute(
        "SELECT reason FROM state_history WHERE entity = ? AND entity_id = ? ORDER BY id",
        (entity, str(entity_id)),
    ).fetchall()
    return [r[0] or "" for r in rows]


def attempts(proj: Project) -> list[tuple[int, AttemptState, bool]]:
    """(item number, state, judged) of every attempt, in order."""
    store = Store.open(proj.store_path)
    try:
        run_id = latest(store)
        numbers = {item.id: item.number for item in store.items(run_id)}
        return [
            (numbers[a.item_id], AttemptState(a.state), a.digest is not None)
            for a in store.attempts(run_id=run_id)
        ]
    finally:
        store.close()


def test_a_usage_limit_is_waited_out_and_not_counted(tmp_path: Path) -> None:
    reset = NOW + timedelta(minutes=40)
    backend = ScriptedBackend([limited(reset), success()])
    waits = Waits()

    proj, code, _ = run(tmp_path, backend, waits, wait_on_limit=True, max_retries=0)

    assert code == ExitCode.OK
    assert waits.until == [reset]
    # With no retry allowed, batch 1 still passes: the limited attempt did not count.
    assert attempts(proj) == [
        (1, AttemptState.CRASHED, False),
        (1, AttemptState.PASSED, False),
        (2, AttemptState.PASSED, False),
    ]
    store = Store.open(proj.store_path)
    try:
        run_id = latest(store)
        kinds = [e["kind"] for e in store.events(run_id)]
    finally:
        store.close()
    assert "usage_limit_wait" in kinds


def test_without_the_option_a_usage_limit_stops_the_run(tmp_path: Path) -> None:
    backend = ScriptedBackend([limited(NOW + timedelta(minutes=5)), success()])
    waits = Waits()

    proj, code, message = run(tmp_path, backend, waits)

    assert code == ExitCode.BAD_INPUT
    assert "usage limit reached" in message
    assert waits.until == []
    assert attempts(proj) == [(1, AttemptState.CRASHED, True)]


def test_a_reset_too_far_away_or_unknown_stops_instead_of_waiting(tmp_path: Path) -> None:
    for name, reset, said in [
        ("far", NOW + timedelta(hours=7), "not waiting"),
        ("unknown", None, "did not say when the limit resets"),
    ]:
        backend = ScriptedBackend([limited(reset), success()])
        waits = Waits()

        proj, code, message = run(tmp_path / name, backend, waits, wait_on_limit=True)

        assert code == ExitCode.BAD_INPUT, name
        assert said in message
        assert waits.until == []
        assert len(attempts(proj)) == 1


def test_a_build_stopped_by_the_agent_releases_its_feature(tmp_path: Path) -> None:
    proj = project(tmp_path)
    store = Store.open(proj.store_path)
    try:
        Backlog(store).create([FeatureSpec(name="Login", acceptance=("true",))], source="test")
    finally:
        store.close()
    backend = ScriptedBackend([limited(None)])
    builder = Builder(
        proj, Settings(gates=("true",)), backend, NullReporter(), BuildOptions(register=False)
    )

    result = builder.execute()

    assert result.exit_code == ExitCode.BAD_INPUT
    store = Store.open(proj.store_path)
    try:
        feature = Backlog(store).features()[0]
        assert feature.state == ItemState.PENDING
        assert feature.claimed_by is None
        run_id = latest(store)
        item = store.items(run_id)[0]
        assert item.state == ItemState.PENDING
        item_reasons = reasons(store, "item", item.id)
        feature_reasons = reasons(store, "feature", feature.id)
    finally:
        store.close()
    for history in (item_reasons, feature_reasons):
        assert "interrupted" not in " ".join(history)
        assert "usage limit reached" in history[-1]


def test_ctrl_c_during_the_wait_interrupts_the_run(tmp_path: Path) -> None:
    backend = ScriptedBackend([limited(NOW + timedelta(minutes=40)), success()])

    def interrupted(when: datetime) -> None:
        raise KeyboardInterrupt

    proj, code, message = run(tmp_path, backend, interrupted, wait_on_limit=True)

    assert code == ExitCode.INTERRUPTED
    assert "--resume" in message
    assert len(backend.requests) == 1
    # the caller gets its own Ctrl-C handling back (not the closed event loop's)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    store = Store.open(proj.store_path)
    try:
        run_row = store.run(latest(store))
        items = store.items(run_row.id)
    finally:
        store.close()
    assert run_row.state == "interrupted"
    assert items[0].state == ItemState.PENDING


def test_a_limit_that_does_not_lift_stops_the_run_after_a_few_waits(tmp_path: Path) -> None:
    reset = NOW - timedelta(minutes=1)  # said to be over already, yet the agent is refused
    backend = ScriptedBackend([limited(reset)])
    waits = Waits()

    proj, code, message = run(tmp_path, backend, waits, wait_on_limit=True)

    assert code == ExitCode.BAD_INPUT
    assert "still reached after 3 waits" in message
    assert waits.until == [reset] * 3
    assert len(attempts(proj)) == 4
