"""``nightcrew status [--json]`` beside a parallel build (run by another
process) and after it: each lane's feature and phase, the merge queue, the
latest landings and the worktrees, read from the store alone. The build's rows
and lane events are written here directly, as the build writes them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from nightcrew import proc
from nightcrew.cli import cli
from nightcrew.core import events as ev
from nightcrew.core.states import AttemptState, ItemState, RunState
from nightcrew.core.usage import TokenCounts
from nightcrew.engine import gates as gates_mod
from nightcrew.project import Project
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import AttemptRow, ItemRow, RunRow, Store
from nightcrew.store.usage_query import parse_ts
from nightcrew.testing import FakeBackend, Script
from nightcrew.views.lanes import lanes_view
from nightcrew.work.backlog import FeatureSpec
from nightcrew.worktrees import add_worktree, branch_name, worktree_path
from tests.unit.run_context import Lanes, plan_text

NAMES = ["Login", "Signup", "Feed", "Avatars", "Search", "Themes", "Export"]


def git(root: Path, *args: str) -> str:
    done = proc.run(["git", "-C", str(root), *args], cwd=root, timeout_s=60)
    assert done.exit_code == 0, done.output
    return done.output


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    root = tmp_path / "app"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Alice")
    git(root, "config", "user.email", "alice@example.com")
    (root / "app.py").write_text("print('hi')\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    cwd = Path.cwd()
    os.chdir(root)
    yield root
    os.chdir(cwd)


@dataclass
class Build:
    """A build's rows, written as the build would write them."""

    store: Store
    run: RunRow
    items: dict[int, ItemRow]

    @classmethod
    def start(cls, root: Path, *, pid: int) -> Build:
        store = Project(root).open_store()
        created = (
            Backlog(store)
            .create([FeatureSpec(name=n, acceptance=("true",)) for n in NAMES], source="test")
            .created
        )
        run = store.create_run(
            kind="backlog",
            source_path="",
            source_sha256="a" * 64,
            config={"parallel": 3},
            prefix_sha256="b" * 64,
            pid=pid,
        )
        store.set_run_state(run.id, RunState.RUNNING, reason="started")
        items = {}
        for n in created:
            items[n] = store.add_item(
                run.id,
                key=f"feature-{n}",
                number=n,
                title=NAMES[n - 1],
                body="",
                sha="c" * 64,
                feature_id=n,
            )
        return cls(store, run, items)

    def emit(self, event: ev.Event) -> None:
        self.store.append_event(event)

    def claim(self, feature: int, lane: int) -> None:
        """The lane takes the feature: its worktree is ready."""
        self.store.set_item_state(self.items[feature].id, ItemState.IN_PROGRESS)
        branch = branch_name(feature, NAMES[feature - 1])
        self.emit(
            ev.WorktreeReady(
                run_id=self.run.id,
                lane=lane,
                item=f"feature #{feature}",
                path=f".nightcrew/worktrees/{branch}",
                branch=f"nightcrew/{branch}",
                base="f" * 40,
            )
        )

    def attempt(self, feature: int, lane: int, model: str = "sonnet") -> AttemptRow:
        return self.store.start_attempt(
            run_id=self.run.id,
            item_id=self.items[feature].id,
            backend="claude",
            model=model,
            prefix_sha256="b" * 64,
            prompt_sha256="d" * 64,
            base_sha="e" * 40,
            evidence_dir=None,
            lane=lane,
        )

    def finish(self, attempt: AttemptRow, state: AttemptState, cost: str) -> None:
        self.store.finish_attempt(
            attempt.id,
            state,
            reason=str(state),
            cost_usd=Decimal(cost),
            cost_source="reported",
            agent_seconds=30.0,
            gate_seconds=5.0,
        )

    def agent_done(self, attempt: AttemptRow) -> None:
        """Its agent finished; its gates run now."""
        self.store.update_attempt(attempt.id, agent_seconds=42.0)

    def queued(self, feature: int, lane: int) -> None:
        self.emit(
            ev.MergeQueued(run_id=self.run.id, lane=lane, item=f"feature #{feature}", ahead=0)
        )

    def landed(self, feature: int, lane: int, sha: str, checked_with: tuple[str, ...] = ()) -> None:
        self.emit(
            ev.MergeLanded(
                run_id=self.run.id,
                lane=lane,
                item=f"feature #{feature}",
                branch="main",
                sha=sha,
                merge_seconds=0.42,
                gate_seconds=3.14,
                checked_with=checked_with,
            )
        )


def busy_build(root: Path) -> Build:
    """Four lanes while the build runs:

    1. #1: its merged result failed the checks once; its second attempt's agent
       is working and has been priced at $0.02 so far.
    2. #2 passed in its worktree and waits behind #3 in the merge queue.
    3. #3 passed in its worktree and is being landed.
    4. #4 landed; then #5 got the lane, and its agent is done (gates).
    5. #6 asked a person; 6. #7's worktree is ready, no attempt yet.
    """
    b = Build.start(root, pid=os.getpid())
    for feature, lane in ((1, 1), (2, 2), (3, 3), (4, 4)):
        b.claim(feature, lane)
    first = b.attempt(1, 1)
    b.queued(1, 1)
    b.emit(
        ev.MergeRejected(
            run_id=b.run.id, lane=1, item="feature #1", branch="main", failed=("tests",)
        )
    )
    b.finish(first, AttemptState.FAILED, "0.10")
    second = b.attempt(1, 1, model="opus")
    b.store.record_usage(
        second.id,
        kind="response",
        message_id="msg-1",
        request_id=None,
        model="opus",
        tokens=TokenCounts(input=10, output=20),
        cost_usd=Decimal("0.02"),
        cost_source="priced",
    )
    four = b.attempt(4, 4)
    b.queued(4, 4)
    b.landed(4, 4, "4" * 40)
    b.finish(four, AttemptState.PASSED, "0.25")
    b.store.set_item_state(b.items[4].id, ItemState.PASSED, commit_sha="4" * 40)
    three = b.attempt(3, 3)
    b.agent_done(three)
    b.queued(3, 3)
    two = b.attempt(2, 2)
    b.agent_done(two)
    b.queued(2, 2)
    b.claim(5, 4)
    b.agent_done(b.attempt(5, 4))
    b.claim(6, 5)
    b.finish(b.attempt(6, 5), AttemptState.FAILED, "0.05")
    b.store.set_item_state(b.items[6].id, ItemState.NEEDS_INPUT)
    b.claim(7, 6)
    return b


def status(*args: str) -> str:
    result = CliRunner().invoke(cli, ["status", *args], terminal_width=200)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_while_the_build_runs_each_lane_says_what_it_is_doing(project: Path) -> None:
    b = busy_build(project)
    b.store.close()

    data = json.loads(status("--json"))

    lanes = {row["lane"]: row for row in data["lanes"]}
    assert {n: (r["feature_id"], r["phase"]) for n, r in lanes.items()} == {
        1: (1, "agent"),
        2: (2, "merge queue"),
        3: (3, "merge queue"),
        4: (5, "gates"),
        5: (6, "waiting for a person"),
        6: (7, "starting"),
    }
    assert lanes[1]["attempt"] == 2 and lanes[1]["model"] == "opus"
    # The failed attempt's $0.10 and the running one's $0.02 so far.
    assert lanes[1]["cost_usd"] == pytest.approx(0.12) and not lanes[1]["cost_unknown"]
    assert 0 <= lanes[1]["elapsed_s"] < 600
    assert lanes[6]["attempt"] is None and lanes[6]["cost_usd"] is None
    # #3 was queued first: it is landing, #2 waits; #1 was rejected, #4 landed.
    assert [(q["feature_id"], q["state"], q["lane"]) for q in data["merge_queue"]] == [
        (3, "landing", 3),
        (2, "waiting", 2),
    ]
    assert data["landed"] == [
        {
            "feature_id": 4,
            "item": "feature #4",
            "title": "Avatars",
            "lane": 4,
            "branch": "main",
            "sha": "4" * 40,
            "merge_seconds": 0.4,
            "gate_seconds": 3.1,
            "landed_at": data["landed"][0]["landed_at"],
            "checks_reused": False,
            "checked_with": [],
        }
    ]
    assert data["worktrees"] == []

    text = status()
    assert "lanes\n" in text
    line = next(ln for ln in text.splitlines() if ln.startswith("1 "))
    assert line.split()[:6] == ["1", "#1", "Login", "agent", "2", "opus"] and "$0.1200" in line
    assert "merge queue: #3 Feed (landing, lane 3), #2 Signup (waiting, lane 2)" in text
    assert f"landed #4 Avatars as {'4' * 10} on main (merge 0.4 s, checks 3.1 s)" in text


def test_every_landing_the_queue_checks_together_is_landing_the_rest_wait(project: Path) -> None:
    b = Build.start(project, pid=os.getpid())
    for feature in (1, 2, 3, 5):
        b.claim(feature, feature)
        b.agent_done(b.attempt(feature, feature))
    b.queued(1, 1)
    b.emit(ev.MergeChecking(run_id=b.run.id, items=("feature #1",)))
    b.emit(
        ev.MergeRejected(
            run_id=b.run.id, lane=1, item="feature #1", branch="main", failed=("tests",)
        )
    )
    b.queued(3, 3)
    b.queued(2, 2)
    b.emit(ev.MergeChecking(run_id=b.run.id, items=("feature #3", "feature #2")))
    b.queued(5, 5)  # came while the group was checked: waits for the next turn
    b.queued(1, 1)  # back after its rejection: waits too
    try:
        checking = lanes_view(b.store, b.run.id).merge_queue
        b.landed(3, 3, "3" * 40, checked_with=("feature #2",))  # #2 is still being landed
        after = lanes_view(b.store, b.run.id).merge_queue
    finally:
        b.store.close()

    assert [(q.feature_id, q.landing) for q in checking] == [
        (3, True), (2, True), (5, False), (1, False),
    ]  # fmt: skip
    assert [(q.feature_id, q.landing) for q in after] == [(2, True), (5, False), (1, False)]
    text = status()
    assert "merge queue: #2 Signup (landing, lane 2), #5" in text


def test_the_elapsed_time_is_the_current_attempts(project: Path) -> None:
    b = busy_build(project)
    running = b.store.attempts(item_id=b.items[1].id)[-1]
    later = parse_ts(running.started_at) + timedelta(seconds=75)
    try:
        view = lanes_view(b.store, b.run.id, now=later)
    finally:
        b.store.close()
    lanes = {row.lane: row for row in view.lanes}
    assert lanes[1].elapsed_s == 75
    assert lanes[5].elapsed_s is not None  # #6's finished attempt: its duration


def test_after_the_build_lanes_landings_and_worktrees_are_shown(project: Path) -> None:
    b = Build.start(project, pid=os.getpid())
    for feature, lane in ((1, 1), (2, 2)):
        b.claim(feature, lane)
        attempt = b.attempt(feature, lane)
        b.queued(feature, lane)
        # The two waited in the queue together: checked in one run.
        b.landed(feature, lane, str(feature) * 40, (f"feature #{3 - feature}",))
        b.finish(attempt, AttemptState.PASSED, "0.30")
        b.store.set_item_state(b.items[feature].id, ItemState.PASSED, commit_sha="x" * 40)
    b.claim(3, 1)
    b.finish(b.attempt(3, 1), AttemptState.FAILED, "0.20")
    b.store.set_item_state(b.items[3].id, ItemState.FAILED)
    b.store.set_run_state(b.run.id, RunState.SUCCEEDED, message="done")
    b.store.close()
    # The failed feature's worktree is kept; the landed ones' were removed.
    branch = branch_name(3, "Feed")
    head = git(project, "rev-parse", "HEAD").strip()
    add_worktree(project, worktree_path(project, branch), branch, head)

    data = json.loads(status("--json"))

    assert [(r["lane"], r["feature_id"], r["phase"]) for r in data["lanes"]] == [
        (1, 3, "idle"),
        (2, 2, "landed"),
    ]
    assert data["merge_queue"] == []
    assert [(r["feature_id"], r["sha"]) for r in data["landed"]] == [(2, "2" * 40), (1, "1" * 40)]
    assert [r["checked_with"] for r in data["landed"]] == [["feature #1"], ["feature #2"]]
    assert [(w["feature_id"], w["state"]) for w in data["worktrees"]] == [(3, "pending")]

    text = status()
    assert "merge queue" not in text
    assert text.index("landed #2 Signup") < text.index("landed #1 Login")
    assert "(merge 0.4 s, checks 3.1 s with feature #1)" in text
    assert "worktrees\n" in text and "1 worktree(s)" in text


def test_a_build_whose_orchestrator_died_shows_its_lanes_stopped(project: Path) -> None:
    child = subprocess.Popen(["true"])
    child.wait()  # reaped: the pid names no process now
    b = Build.start(project, pid=child.pid)
    b.claim(1, 1)
    b.attempt(1, 1)
    b.queued(1, 1)
    b.store.close()

    data = json.loads(status("--json"))

    assert data["run"]["state"] == "crashed"
    assert [(r["lane"], r["phase"], r["elapsed_s"]) for r in data["lanes"]] == [
        (1, "stopped", None)
    ]
    assert [q["state"] for q in data["merge_queue"]] == ["waiting"]  # nothing is landing


def test_a_build_on_one_lane_shows_no_lanes(project: Path) -> None:
    b = Build.start(project, pid=os.getpid())
    b.store.set_item_state(b.items[1].id, ItemState.IN_PROGRESS)
    attempt = b.store.start_attempt(
        run_id=b.run.id,
        item_id=b.items[1].id,
        backend="claude",
        model="sonnet",
        prefix_sha256="b" * 64,
        prompt_sha256="d" * 64,
        base_sha="e" * 40,
        evidence_dir=None,
    )
    assert attempt.lane is None
    b.store.close()

    data = json.loads(status("--json"))
    text = status()

    assert (data["lanes"], data["merge_queue"], data["landed"], data["worktrees"]) == (
        [],
        [],
        [],
        [],
    )
    assert "lanes" not in text and "merge queue" not in text and "worktrees" not in text


def test_another_process_sees_an_attempts_lane_and_that_its_gates_run(tmp_path: Path) -> None:
    """What ``status`` beside a build relies on: while its gates run, the
    attempt's row says its lane, that its agent is done and that it is not
    finished. The gate itself looks, from another process."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import sqlite3, sys\n"
        f"db = sqlite3.connect({str(tmp_path / 'proj' / '.nightcrew' / 'nightcrew.db')!r})\n"
        "rows = db.execute('SELECT lane, agent_seconds FROM attempts"
        " WHERE finished_at IS NULL').fetchall()\n"
        "print(rows)\n"
        "sys.exit(0 if len(rows) == 1 and rows[0][0] == 2 and rows[0][1] is not None else 1)\n"
    )
    backend = FakeBackend(lambda request: Script(writes={"part.txt": "x"}))
    lanes = Lanes(tmp_path, backend, plan_text(1))
    gate = gates_mod.command_gate(1, f"{sys.executable} {probe}")
    lanes.ctx = replace(lanes.ctx, gate_specs=(gate,), lane=2)
    try:
        scheduler = lanes.run()
        attempt = lanes.store.attempts(run_id=lanes.ctx.run.id)[0]
        assert [o.kind for o in scheduler.outcomes] == ["passed"]
        assert attempt.lane == 2 and attempt.agent_seconds is not None
    finally:
        backend.reap()
        lanes.store.close()
