"""``nightcrew logs`` as a person uses it: the latest run's events in the
console's words with time and lane, NDJSON and markdown, bad filters as one
line and exit 2, and ``--follow`` beside a build writing from elsewhere until
the build finishes (or Ctrl-C)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nightcrew import proc
from nightcrew.cli import main
from nightcrew.core import events as ev
from nightcrew.core.states import RunState
from nightcrew.project import Project
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import RunRow, Store
from nightcrew.work.backlog import FeatureSpec
from tests.line_process import LineProcess

TIMEOUT_S = 60  # generous: the follower polls the store four times a second


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
    store: Store
    run: RunRow

    def emit(self, event: ev.Event) -> None:
        self.store.append_event(event)

    def finish(self, state: RunState = RunState.SUCCEEDED) -> None:
        message = "the backlog is done: 1 of 2 features passed"
        self.store.set_run_state(self.run.id, state, reason="done", message=message)
        self.emit(
            ev.RunFinished(
                run_id=self.run.id,
                state=str(state),
                message=message,
                footer=f"build {self.run.id}: {message}. Cost $0.4200",
            )
        )


@pytest.fixture
def build(root: Path) -> Iterator[Build]:
    """A build in progress: this process stands for its orchestrator."""
    store = Project(root).open_store()
    Backlog(store).create(
        [FeatureSpec(name=n, acceptance=("true",)) for n in ("Login", "Signup")], source="t"
    )
    run = store.create_run(
        kind="backlog", source_path="", source_sha256="a" * 64, config={},
        prefix_sha256="b" * 64, pid=os.getpid(),
    )  # fmt: skip
    store.set_run_state(run.id, RunState.RUNNING, reason="started")
    b = Build(store, run)
    b.emit(ev.RunStarted(run_id=run.id, work="backlog"))
    b.emit(ev.MergeQueued(run_id=run.id, lane=2, item="feature #1", ahead=0))
    b.emit(ev.ItemFailed(run_id=run.id, lane=1, item="feature #2", reason="the tests fail"))
    b.emit(ev.TextSeen(run_id=run.id, lane=1, text="Thinking | aloud"))
    yield b
    store.close()


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


def test_the_latest_runs_log_in_the_consoles_words(
    build: Build, root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = nightcrew(monkeypatch, capsys, root, "logs")
    assert (code, err) == (0, "")
    rows = out.splitlines()
    assert len(rows) == 3  # the agent's words are debug: asked for, not shown by default
    assert rows[0].endswith(f"        starting build {build.run.id}")
    assert rows[1].endswith(" lane 2 feature #1 passed in its worktree: merge queue")
    assert rows[2].endswith(" lane 1 error: feature #2 failed: the tests fail")
    assert all(row.startswith("[") and row[9:11] == "] " for row in rows)  # [HH:MM:SS]

    code, out, _ = nightcrew(monkeypatch, capsys, root, "logs", "--level", "error")
    assert out.count("\n") == 1 and "feature #2 failed" in out
    code, out, _ = nightcrew(monkeypatch, capsys, root, "logs", "--grep", "ALOUD")
    assert code == 0 and out.rstrip().endswith("lane 1   says: Thinking | aloud")
    code, out, _ = nightcrew(monkeypatch, capsys, root, "logs", "--feature", "#1")
    assert "merge queue" in out and "feature #2" not in out


def test_json_is_ndjson_and_markdown_a_table(
    build: Build, root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = nightcrew(monkeypatch, capsys, root, "logs", "--json", "--level", "debug")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [r["kind"] for r in rows] == ["run_started", "merge_queued", "item_failed", "text"]
    assert rows[2]["level"] == "error" and rows[2]["lane"] == 1
    failed = {"item": "feature #2", "reason": "the tests fail", "evidence": None, "lane": 1}
    assert rows[2]["payload"] == failed

    code, out, _ = nightcrew(monkeypatch, capsys, root, "logs", "--markdown", "--limit", "2")
    lines = out.splitlines()
    assert lines[0] == f"# nightcrew log: run {build.run.id}"
    assert lines[2:4] == ["| time (UTC) | run | lane | level | event |", "|---|---|---|---|---|"]
    assert len(lines) == 6 and "| 1 | error | feature #2 failed: the tests fail |" in lines[-1]

    code, out, _ = nightcrew(monkeypatch, capsys, root, "logs", "--markdown", "--grep", "zzz")
    assert code == 0 and len(out.splitlines()) == 4  # the table's header, no rows


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--kind", "gate_reslt"), "--kind gate_reslt: no such event kind; did you mean gate_res"),
        (("--kind", "text", "--kind", "nope"), "--kind nope: no such event kind"),
        (("--level", "loud"), "--level loud: give one of debug, info, warn, error"),
        (("--run", "nope"), "--run nope: no such run"),
        (("--feature", "9"), "--feature 9: no feature #9 in the backlog"),
        (("--feature", "x"), "--feature x: not a feature id"),
        (("--lane", "-1"), "--lane"),
        (("--limit", "0"), "--limit"),
        (("--json", "--markdown"), "--json and --markdown: give one of them"),
    ],
)  # fmt: skip
def test_a_bad_filter_is_one_line_and_exit_2(
    build: Build,
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    said: str,
) -> None:
    code, out, err = nightcrew(monkeypatch, capsys, root, "logs", *args)
    assert (code, out) == (2, "")
    assert len(err.strip().splitlines()) == 1 and said in err and err.startswith("nightcrew: ")


def test_no_run_yet_is_one_line(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = nightcrew(monkeypatch, capsys, root, "logs")
    assert (code, out) == (2, "") and "no nightcrew run here yet" in err


# ---- --follow, a real process beside the build -------------------------------------------


class Follower(LineProcess):
    """``nightcrew logs --follow`` in its own process; its lines as they come."""

    def __init__(self, root: Path, *args: str) -> None:
        super().__init__(root, ["logs", "--follow", *args], what="follower", env={})


def test_follow_prints_what_the_build_writes_and_ends_when_it_finishes(
    build: Build, root: Path
) -> None:
    follower = Follower(root)
    try:
        follower.wait_for("feature #2 failed: the tests fail")  # the log so far
        # written while it follows, from elsewhere (here: this test's own store)
        build.emit(
            ev.MergeLanded(
                run_id=build.run.id, lane=2, item="feature #1", branch="main", sha="c0ffee" * 7,
                merge_seconds=0.1, gate_seconds=2.5,
            )
        )  # fmt: skip
        landed = follower.wait_for("landed on main")
        assert landed.endswith(
            "lane 2 feature #1 landed on main (c0ffeec0ff): merged result checked"
            " (merge 0.1 s, checks 2.5 s)"
        )
        build.finish()
        assert follower.wait_for("Cost $0.4200").endswith(
            f"build {build.run.id}: the backlog is done: 1 of 2 features passed. Cost $0.4200"
        )
        assert follower.end() == (0, "")
    finally:
        follower.kill()


def test_follow_json_streams_and_ctrl_c_ends_it_quietly(build: Build, root: Path) -> None:
    follower = Follower(root, "--json", "--kind", "item_passed")
    try:
        build.emit(ev.ItemPassed(run_id=build.run.id, lane=2, item="feature #1", commit="f" * 40))
        row = json.loads(follower.wait_for('"item_passed"'))
        assert (row["item"], row["line"]) == ("feature #1", f"feature #1 passed ({'f' * 10})")
        follower.process.send_signal(signal.SIGINT)
        code, err = follower.end()
        assert code == 130
        assert err.strip() == "nightcrew: interrupted"  # one line, no traceback
    finally:
        follower.kill()


def test_follow_of_a_finished_run_prints_it_and_ends(build: Build, root: Path) -> None:
    build.finish(RunState.FAILED)
    done = subprocess.run(
        [sys.executable, "-m", "nightcrew", "logs", "--follow", "--level", "error"],
        cwd=root, capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    footer = f"build {build.run.id}: the backlog is done: 1 of 2 features passed. Cost $0.4200"
    assert done.stdout.splitlines()[-1].endswith(f"error: {footer}")
