"""How fast `nightcrew logs` reads a big events table: 200k events by default.

    .venv/bin/python bench/event_log.py [--events N] [--runs R] [--keep]

Seeds a project store with R backlog builds (default 4) of N events in all
(default 200 000), shaped like a long night: per attempt an attempt_started,
~120 tool calls, the agent's text and thinking, tool errors, gates, a
decision, and on lanes 1-4 the merge queue's events. Then times the read
model (views/event_log.py, with the log's real renderer) for the questions
people ask, each the median of 3. A measurement, not a test: it exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from nightcrew.cli.log_lines import log_renderer
from nightcrew.core import events as ev
from nightcrew.core.states import RunState
from nightcrew.project import Project
from nightcrew.store.backlog import Backlog
from nightcrew.store.db import utcnow
from nightcrew.store.records import Store
from nightcrew.views.event_log import LogFilter, read_log
from nightcrew.work.backlog import FeatureSpec

FEATURES = 40


def attempt_events(run_id: str, attempt_id: int, feature: int, lane: int) -> list[ev.Event]:
    """One attempt's events, roughly as a real one leaves them."""
    item = f"feature #{feature}"
    common = {"run_id": run_id, "attempt_id": attempt_id, "lane": lane}
    out: list[ev.Event] = [
        ev.AttemptStarted(**common, heading=f"{item} 'F{feature}'", number=1, model="sonnet"),
        ev.SessionStarted(**common, session_id=f"s-{attempt_id}", model="sonnet"),
    ]
    for n in range(120):
        out.append(ev.ToolCalled(**common, name="Bash", input={"command": f"pytest -q -k t{n}"}))
        if n % 3 == 0:
            out.append(ev.TextSeen(**common, text=f"Looking at test t{n} in src/mod{n}.py now."))
        if n % 5 == 0:
            out.append(ev.ThinkingSeen(**common, text="The fixture is wrong " * 10))
        if n % 17 == 0:
            out.append(ev.ToolFailed(**common, excerpt="E   AssertionError: 2 != 3"))
    out += [
        ev.GateChecked(**common, name="tests", passed=False, detail=" (1 failed)", reason=" x"),
        ev.AttemptFinished(
            **common, item=item, number=1, state="failed", cost_usd=Decimal("0.31"), seconds=90
        ),
        ev.DecisionMade(
            run_id=run_id, lane=lane, action="retry", reason="r", item=item, escalated=True,
            model="opus",
        ),
        ev.MergeQueued(run_id=run_id, lane=lane, item=item, ahead=0),
        ev.MergeLanded(
            run_id=run_id, lane=lane, item=item, branch="main", sha="a" * 40,
            merge_seconds=0.1, gate_seconds=2.0,
        ),
        ev.ItemPassed(run_id=run_id, lane=lane, item=item, commit="a" * 40),
    ]  # fmt: skip
    return out


def seed(store: Store, total: int, runs: int) -> list[str]:
    created = (
        Backlog(store)
        .create(
            [FeatureSpec(name=f"F{n}", acceptance=("true",)) for n in range(1, FEATURES + 1)],
            source="bench",
        )
        .created
    )
    run_ids = []
    per_run = total // runs
    rng = random.Random(7)
    for _ in range(runs):
        run = store.create_run(
            kind="backlog", source_path="", source_sha256="a" * 64, config={},
            prefix_sha256="b" * 64, pid=os.getpid(),
        )  # fmt: skip
        store.set_run_state(run.id, RunState.RUNNING, reason="bench")
        items = {
            n: store.add_item(
                run.id, key=f"feature-{n}", number=n, title=f"F{n}", body="", sha="c" * 64,
                feature_id=n,
            )
            for n in created
        }  # fmt: skip
        rows: list[tuple[str, str, int | None, str, str]] = []
        while len(rows) < per_run:
            feature = rng.choice(created)
            lane = rng.randint(1, 4)
            attempt = store.start_attempt(
                run_id=run.id, item_id=items[feature].id, backend="claude", model="sonnet",
                prefix_sha256="b" * 64, prompt_sha256="d" * 64, base_sha="e" * 40,
                evidence_dir=None, lane=lane,
            )  # fmt: skip
            store.db.execute("UPDATE attempts SET state = 'failed' WHERE id = ?", (attempt.id,))
            for event in attempt_events(run.id, attempt.id, feature, lane):
                rows.append(
                    (utcnow(), run.id, event.attempt_id, event.kind, json.dumps(event.payload()))
                )
        with store.transaction():
            store.db.executemany(
                "INSERT INTO events (ts, run_id, attempt_id, kind, payload_json)"
                " VALUES (?,?,?,?,?)",
                rows[:per_run],
            )
        store.set_run_state(run.id, RunState.SUCCEEDED, reason="bench")
        run_ids.append(run.id)
    return run_ids


def timed(action: Callable[[], int]) -> tuple[float, int]:
    times = []
    count = 0
    for _ in range(3):
        started = time.perf_counter()
        count = action()
        times.append(time.perf_counter() - started)
    return statistics.median(times), count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="nightcrew-bench-log-"))
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    store = Project(root).open_store()
    started = time.perf_counter()
    run_ids = seed(store, args.events, args.runs)
    count = store.db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    print(f"seeded {count:,} events in {args.runs} runs ({time.perf_counter() - started:.1f} s)")
    latest = run_ids[-1]
    render = log_renderer(root)
    top = store.db.execute("SELECT MAX(id) FROM events").fetchone()[0]

    def size(flt: LogFilter, **kw: object) -> Callable[[], int]:
        return lambda: len(read_log(store, flt, render=render, **kw).entries)  # type: ignore[arg-type]

    run = {"run_id": latest}
    cases = [
        ("latest run, every line (info)", size(LogFilter(**run))),
        ("latest run, --level debug", size(LogFilter(**run, level="debug"))),
        ("latest run, --limit 50", size(LogFilter(**run), limit=50, newest=True)),
        ("latest run, --level warn", size(LogFilter(**run, level="warn"))),
        ("latest run, --lane 2 --level warn", size(LogFilter(**run, lane=2, level="warn"))),
        ("latest run, --kind merge_landed", size(LogFilter(**run, kinds=("merge_landed",)))),
        ("latest run, --grep mod9.py", size(LogFilter(**run, level="debug", grep="mod9.py"))),
        ("latest run, --grep ESCALATING", size(LogFilter(**run, level="debug", grep="ESCALATING"))),
        ("every run, --feature 7", size(LogFilter(feature=7))),
        ("every run, --feature 7 --level warn", size(LogFilter(feature=7, level="warn"))),
        ("follow: the page after the last 50", size(LogFilter(**run), after=top - 50)),
        ("follow: nothing new", size(LogFilter(**run), after=top)),
    ]
    width = max(len(name) for name, _ in cases)
    for name, action in cases:
        seconds, n = timed(action)
        print(f"{name:<{width}}  {seconds * 1000:8.1f} ms  {n:>7,} entries")
    store.close()
    if args.keep:
        print(f"kept {root}")
    else:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
