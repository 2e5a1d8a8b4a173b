"""``nightcrew status --watch`` beside a build in another process: the panel
(each lane with its agent's latest tool, the merge queue, the money against
the budget) from the store alone, the console's lines as the build writes
them, and its end with the build's (summary, exit 0), with its process (exit
1), or with no run at all (one line, exit 0)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from nightcrew import proc
from nightcrew.cli import main
from nightcrew.cli.status_watch import panel
from nightcrew.core import events as ev
from nightcrew.core.states import AttemptState, ItemState, RunState
from nightcrew.core.usage import TokenCounts
from nightcrew.project import Project
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import AttemptRow, ItemRow, RunRow, Store
from nightcrew.views.run_watch import run_in_progress, run_watch
from nightcrew.work.backlog import FeatureSpec
from tests.line_process import LineProcess

TIMEOUT_S = 60
NO_SUCH_PID = 2**22 + 12345  # above the kernel's largest pid: never alive


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    path = tmp_path / "app"
    path.mkdir()
    done = proc.run(["git", "init", "-q", "-b", "main"], cwd=path, timeout_s=60)
    assert done.exit_code == 0, done.output
    return path


@dataclass
class Build:
    """A parallel build's rows and events, as the build writes them."""

    store: Store
    run: RunRow
    items: dict[int, ItemRow]

    def emit(self, event: ev.Event) -> None:
        self.store.append_event(event)

    def attempt(self, feature: int, lane: int | None) -> AttemptRow:
        self.store.set_item_state(self.items[feature].id, ItemState.IN_PROGRESS)
        return self.store.start_attempt(
            run_id=self.run.id, item_id=self.items[feature].id, backend="claude",
            model="sonnet", prefix_sha256="b" * 64, prompt_sha256="d" * 64,
            base_sha="e" * 40, evidence_dir=None, lane=lane,
        )  # fmt: skip

    def spend(self, attempt: AttemptRow, usd: str | None, message: str) -> None:
        self.store.record_usage(
            attempt.id, kind="response", message_id=message, request_id=None, model="sonnet",
            tokens=TokenCounts(input=1000, output=100),
            cost_usd=None if usd is None else Decimal(usd), cost_source="priced",
        )  # fmt: skip

    def finish(self) -> None:
        message = "the backlog is done: 2 of 3 features passed"
        self.store.set_run_state(self.run.id, RunState.SUCCEEDED, reason="done", message=message)
        footer = f"build {self.run.id}: {message}. Cost $0.5000"
        done = ev.RunFinished(run_id=self.run.id, state="succeeded", message=message, footer=footer)
        self.emit(done)


def start_build(root: Path, *, kind: str = "backlog", budget: float | None = 2.0) -> Build:
    store = Project(root).open_store()
    created = (
        Backlog(store)
        .create(
            [FeatureSpec(name=n, acceptance=("true",)) for n in ("Login", "Signup", "Feed")],
            source="t",
        )
        .created
    )
    run = store.create_run(
        kind=kind, source_path="" if kind == "backlog" else "PLAN.md", source_sha256="a" * 64,
        config={"max_budget_usd": budget}, prefix_sha256="b" * 64, pid=os.getpid(),
    )  # fmt: skip
    store.set_run_state(run.id, RunState.RUNNING, reason="started")
    items = {
        n: store.add_item(
            run.id, key=f"feature-{n}" if kind == "backlog" else str(n), number=n,
            title=title, body="", sha="c" * 64, feature_id=n if kind == "backlog" else None,
        )
        for n, title in zip(created, ("Login", "Signup", "Feed"), strict=True)
    }  # fmt: skip
    return Build(store, run, items)


@pytest.fixture
def build(root: Path) -> Iterator[Build]:
    b = start_build(root)
    yield b
    b.store.close()


def lanes_at_work(b: Build) -> None:
    """Lane 1's agent runs feature #1; #2 waits in the merge queue; #3 landed."""
    r = b.run.id
    ready = {"run_id": r, "base": "f" * 40}
    b.emit(ev.WorktreeReady(**ready, lane=1, item="feature #1", path="w1", branch="b1"))
    one = b.attempt(1, lane=1)
    calls = [("Read", {"file_path": "/elsewhere/a.py"}), ("Bash", {"command": "pytest -q\nexit"})]
    for name, tool_input in calls:
        b.emit(ev.ToolCalled(run_id=r, attempt_id=one.id, lane=1, name=name, input=tool_input))
    b.spend(one, "0.10", "m1")
    b.emit(ev.WorktreeReady(**ready, lane=2, item="feature #2", path="w2", branch="b2"))
    two = b.attempt(2, lane=2)
    b.store.update_attempt(two.id, agent_seconds=30.0)  # its agent is done: gates, then the queue
    b.emit(ev.MergeQueued(run_id=r, lane=2, item="feature #2", ahead=0))
    b.spend(two, "0.15", "m2")
    b.emit(ev.WorktreeReady(**ready, lane=3, item="feature #3", path="w3", branch="b3"))
    three = b.attempt(3, lane=3)
    b.store.finish_attempt(
        three.id, AttemptState.PASSED, reason="passed", cost_usd=Decimal("0.25"),
        cost_source="reported", agent_seconds=20.0, gate_seconds=5.0,
    )  # fmt: skip
    b.emit(
        ev.MergeLanded(
            run_id=r, lane=3, item="feature #3", branch="main", sha="abcdef1234" * 4,
            merge_seconds=0.1, gate_seconds=2.0,
        )
    )  # fmt: skip
    b.store.set_item_state(b.items[3].id, ItemState.PASSED)


def shown(view_panel: object) -> str:
    out = StringIO()
    Console(file=out, width=160, color_system=None).print(view_panel)
    return out.getvalue()


def test_the_panel_shows_each_lane_the_queue_and_the_money(build: Build) -> None:
    lanes_at_work(build)
    now = datetime.now(UTC) + timedelta(seconds=5)
    view = run_watch(build.store, build.run.id, Path("/work/app"), now=now)
    text = shown(panel(view, now)).splitlines()
    assert text[0].startswith(f"nightcrew build {build.run.id} · backlog: ")
    lane1 = next(line for line in text if line.startswith("  1 "))
    assert lane1.startswith("  1 #1 Login · attempt 1 · sonnet · agent · Bash: pytest -q · 0:0")
    assert lane1.endswith(" · $0.1000")
    lane2 = next(line for line in text if line.startswith("  2 "))
    assert (
        "#2 Signup · attempt 1 · sonnet · merge queue · " in lane2
    )  # no tool: not the agent's turn
    assert "  idle: lane 3" in text
    assert "  merge queue: #2 Signup (landing)" in text
    assert "  landed: #3 (abcdef1234)" in text
    # settled $0.25 and $0.25 in flight, against --max-budget-usd
    assert text[-1] == "  build $0.5000 of $2.0000 · tokens 2,000 in / 200 out"


def test_unknown_money_is_never_zero_and_nothing_spent_is(build: Build, root: Path) -> None:
    now = datetime.now(UTC)
    view = run_watch(build.store, build.run.id, root, now=now)
    nothing = "  build $0.0000 of $2.0000 · tokens 0 in / 0 out"
    assert shown(panel(view, now)).splitlines()[-1] == nothing
    one = build.attempt(1, lane=1)
    build.spend(one, "0.10", "m1")
    build.spend(one, None, "m2")  # a model with no known price
    view = run_watch(build.store, build.run.id, root, now=now)
    assert view.cost_usd == Decimal("0.10") and view.cost_unknown
    assert "build ≥$0.1000 of $2.0000" in shown(panel(view, now))


def test_a_run_in_place_is_one_line(root: Path) -> None:
    b = start_build(root, kind="plan", budget=None)
    try:
        first = b.attempt(2, lane=None)
        path = {"file_path": str(root / "src/cart.py")}  # named from the project's root
        b.emit(ev.ToolCalled(run_id=b.run.id, attempt_id=first.id, name="Write", input=path))
        now = datetime.now(UTC)
        view = run_watch(b.store, b.run.id, root, now=now)
        text = shown(panel(view, now)).splitlines()
        assert text[0].startswith(f"nightcrew run {b.run.id} · 0/3 batches done · ")
        assert text[1].startswith(
            "  batch 2 Signup · attempt 1 · sonnet · agent · Write: src/cart.py · "
        )
        assert text[-1] == "  run $0.0000 · tokens 0 in / 0 out"  # no budget: none shown
    finally:
        b.store.close()


def test_a_run_whose_process_died_is_not_in_progress(build: Build) -> None:
    assert run_in_progress(build.store) is not None
    build.store.db.execute("UPDATE runs SET orchestrator_pid = ?", (NO_SUCH_PID,))
    assert run_in_progress(build.store) is None


# ---- the command ---------------------------------------------------------------------


def nightcrew(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cwd: Path, *args: str
) -> tuple[int, str, str]:
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["nightcrew", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_with_no_run_in_progress_it_says_so(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = nightcrew(monkeypatch, capsys, root, "status", "--watch")
    assert (code, out, err) == (0, f"no run in progress in {root} (no run here yet)\n", "")
    b = start_build(root)
    b.finish()
    b.store.close()
    code, out, err = nightcrew(monkeypatch, capsys, root, "status", "--watch")
    assert (code, err) == (0, "")
    assert out == f"no run in progress in {root} (latest: build {b.run.id}, succeeded)\n"
    # a build still marked running whose process died is no run in progress
    dead = start_build(root)
    dead.store.db.execute("UPDATE runs SET orchestrator_pid = ?", (NO_SUCH_PID,))
    dead.store.close()
    code, out, _ = nightcrew(monkeypatch, capsys, root, "status", "--watch")
    crashed = f"(latest: build {dead.run.id}, crashed: pid {NO_SUCH_PID} is gone)\n"
    assert code == 0 and out.endswith(crashed)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--watch", "--json"), "--watch and --json: give one of them"),
        (("--wait",), "--wait goes with --watch"),
    ],
)
def test_bad_options_are_one_line(
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    said: str,
) -> None:
    code, out, err = nightcrew(monkeypatch, capsys, root, "status", *args)
    assert (code, out) == (2, "") and said in err and len(err.splitlines()) == 1


class Watcher(LineProcess):
    """``nightcrew status --watch`` in its own process (its stdout a pipe: the
    panel is not drawn, the console's lines and the summary are)."""

    def __init__(self, root: Path, *args: str) -> None:
        super().__init__(root, ["status", "--watch", *args], what="watcher", env={"COLUMNS": "200"})


def test_it_shows_the_builds_lines_and_ends_with_its_summary(build: Build, root: Path) -> None:
    build.emit(ev.RunStarted(run_id=build.run.id, work="backlog"))
    watcher = Watcher(root)
    try:
        watcher.wait_for(f"watching build {build.run.id}")
        watcher.wait_for(f"starting build {build.run.id}")  # the lines from before it came
        build.emit(
            ev.MergeConflicted(
                run_id=build.run.id, lane=2, item="feature #1", branch="main", files=("a.py",)
            )
        )
        assert (
            watcher.wait_for("conflicts") == "lane 2 warn: feature #1 conflicts with main in a.py"
        )
        build.finish()
        watcher.wait_for("nightcrew build summary")
        watcher.wait_for(f"build {build.run.id}: the backlog is done: 2 of 3 features passed.")
        assert watcher.end() == (0, "")
    finally:
        watcher.kill()


def test_it_waits_for_a_run_and_ends_when_its_process_dies(root: Path) -> None:
    watcher = Watcher(root, "--wait")
    try:
        watcher.wait_for(f"waiting for a run to start in {root}")
        b = start_build(root)
        try:
            watcher.wait_for(f"watching build {b.run.id}")
            b.store.db.execute("UPDATE runs SET orchestrator_pid = ?", (NO_SUCH_PID,))
            said = watcher.wait_for("stopped without finishing")
            gone = f"its process (pid {NO_SUCH_PID}) is gone"
            assert said.startswith(f"run {b.run.id} stopped without finishing: {gone}")
            assert watcher.end() == (1, "")
        finally:
            b.store.close()
    finally:
        watcher.kill()
