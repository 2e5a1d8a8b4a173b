"""Orchestration overhead per batch: wall time minus agent time minus gate time.

Runs an N-batch plan (default 20) against ``nightcrew.sim`` with the real
Claude Code CLI, in-process through :class:`nightcrew.engine.runner.Runner`
(so interpreter start-up and imports are not measured), and prints the median
and p95 of the harness's own time per batch. Target: median <= 150 ms.

    .venv/bin/python bench/overhead.py [--batches N] [--budgets] [--history ROWS] [--keep]

See bench/README.md for the method. Exit 0 whatever the numbers (this is a
measurement, not a test); exit 1 only when the run itself failed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import math
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from nightcrew import gitops, proc
from nightcrew.agents.claude import ClaudeBackend
from nightcrew.cli.display import EventPrinter
from nightcrew.config import Settings
from nightcrew.core.errors import ExitCode, NightcrewError
from nightcrew.core.events import Event, ProgressSnapshot
from nightcrew.core.states import AttemptState, ItemState, RunState
from nightcrew.engine import gates as gates_mod
from nightcrew.engine.report import Level, SummaryRow
from nightcrew.engine.runner import Runner, RunOptions
from nightcrew.project import Project
from nightcrew.sim import Scenario, SimServer, agent_env
from nightcrew.store.records import AttemptRow, Store
from nightcrew.work.plan import load_plan

MODEL = "claude-sonnet-4-5"
TARGET_MS = 150.0

LIB = '''"""A tiny library, grown one function per batch by the overhead benchmark."""


def f0(x):
    return x
'''

TESTS = """import lib


def test_f0():
    assert lib.f0(7) == 7
"""

USAGE = {"input_tokens": 1800, "output_tokens": 120, "cache_read_input_tokens": 9000}

_ATTEMPT = re.compile(r"^batch (\d+)/\d+ .*: attempt (\d+)")
_GATE = re.compile(r"^  gate .+: (passed|FAILED)")
_PASSED = re.compile(r"^batch (\d+) passed \(")


# ---- the sample project ------------------------------------------------------


def make_plan(n: int) -> str:
    parts = [
        "# Library plan\n",
        "Grow `lib.py` by one function per batch, each with a pytest test.\n",
    ]
    for i in range(1, n + 1):
        parts.append(
            f"## Batch {i}: f{i}\n\n"
            f"### Task 1: Add f{i}(x) returning x + {i} to lib.py\n"
            f"### Task 2: Test it in tests/test_lib.py\n"
        )
    return "\n".join(parts)


def make_repo(root: Path, n: int) -> Path:
    (root / "tests").mkdir(parents=True)
    (root / "lib.py").write_text(LIB)
    (root / "tests" / "test_lib.py").write_text(TESTS)
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n')
    (root / ".gitignore").write_text("__pycache__/\n")
    (root / "PLAN.md").write_text(make_plan(n))
    proc.run(["git", "init", "-q", "-b", "main"], cwd=root)
    gitops.commit_all(root, "Sample library", {})
    return root / "PLAN.md"


def _append(path: str, text: str) -> str:
    return f"cat >> {path} <<'PY'\n{text}PY"


def scenario(n: int) -> dict[str, Any]:
    """Batch i: one Bash call appends f<i> and its test, then a closing text."""
    scripts = []
    for i in range(1, n + 1):
        command = (
            _append("lib.py", f"\n\ndef f{i}(x):\n    return x + {i}\n")
            + "\n"
            + _append(
                "tests/test_lib.py", f"\n\ndef test_f{i}():\n    assert lib.f{i}(1) == {i + 1}\n"
            )
        )
        scripts.append(
            {
                "name": f"batch-{i}",
                "match": {"all": [f"# Batch {i} of {n}:"]},
                "turns": [
                    {
                        "text": f"Adding f{i} and its test.",
                        "tool": {"name": "Bash", "input": {"command": command}},
                        "usage": USAGE,
                    },
                    {"text": f"Added f{i}.", "usage": {**USAGE, "output_tokens": 20}},
                ],
            }
        )
    return {"scripts": scripts}


# ---- measuring -----------------------------------------------------------------


class TimingReporter:
    """A quiet reporter that stamps every console line with ``time.monotonic()``."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, str]] = []
        self._events = EventPrinter(self)

    def emit(self, event: Event) -> None:
        self._events(event)  # the run's events, as the lines the console would print

    def note(self, message: str, level: Level = "info") -> None:
        self.marks.append((time.monotonic(), message))

    def progress(self, snapshot: ProgressSnapshot) -> None:
        pass

    def summary(self, rows: list[SummaryRow], footer: str) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class BaselineTimer:
    started: float | None = None
    finished: float | None = None

    @property
    def seconds(self) -> float:
        if self.started is None or self.finished is None:
            return 0.0
        return self.finished - self.started


@contextlib.contextmanager
def timed_baseline(timer: BaselineTimer) -> Iterator[None]:
    """Time the runner's one baseline test run (it emits no note when it ends).

    Only wraps ``nightcrew.engine.gates.run_baseline`` for the duration of the
    run; nothing in nightcrew is changed.
    """
    original: Callable[..., Any] = gates_mod.run_baseline

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        timer.started = time.monotonic()
        try:
            return original(*args, **kwargs)
        finally:
            timer.finished = time.monotonic()

    gates_mod.run_baseline = wrapper
    try:
        yield
    finally:
        gates_mod.run_baseline = original


@dataclass
class BatchTiming:
    number: int
    attempts: int
    wall: float  # previous batch's end (or the baseline's end) -> "batch N passed"
    agent: float  # sum of agent_seconds over the batch's attempts
    gate: float  # sum of gate_seconds over the batch's attempts
    prep: float  # previous end -> "attempt 1" note: item state, git, prompt, start_attempt
    around: float  # "attempt" note -> last gate note, minus agent and gate time
    finish: float  # last gate note -> "passed" note: commit, finish_attempt, item state

    @property
    def overhead(self) -> float:
        return self.wall - self.agent - self.gate


@dataclass
class Measurement:
    wall: float
    baseline: float
    pre_loop: float  # execute() start -> baseline start
    post_loop: float  # last "passed" note -> execute() returned
    batches: list[BatchTiming] = field(default_factory=list)


def batch_timings(
    marks: Sequence[tuple[float, str]], batch_start: float, attempts: dict[int, list[AttemptRow]]
) -> list[BatchTiming]:
    """Cut the note timeline into batches: each batch runs from the previous
    batch's "passed" note (the first from the baseline's end) to its own."""
    out: list[BatchTiming] = []
    prev_end = batch_start
    first_attempt: float | None = None
    last_gate: float | None = None
    for t, message in marks:
        if t < batch_start:
            continue
        if _ATTEMPT.match(message):
            if first_attempt is None:
                first_attempt = t
            last_gate = None
        elif _GATE.match(message):
            last_gate = t
        elif m := _PASSED.match(message):
            number = int(m.group(1))
            rows = attempts.get(number, [])
            agent = sum(a.agent_seconds or 0.0 for a in rows)
            gate = sum(a.gate_seconds or 0.0 for a in rows)
            start = first_attempt if first_attempt is not None else prev_end
            gates_end = last_gate if last_gate is not None else t
            out.append(
                BatchTiming(
                    number=number,
                    attempts=len(rows),
                    wall=t - prev_end,
                    agent=agent,
                    gate=gate,
                    prep=start - prev_end,
                    around=(gates_end - start) - agent - gate,
                    finish=t - gates_end,
                )
            )
            prev_end, first_attempt, last_gate = t, None, None
    return out


def p95(values: Sequence[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f}"


# ---- the run ---------------------------------------------------------------------


class RunFailed(Exception):
    pass


# Budgets the run never reaches: every one is checked before and during each attempt.
BUDGETS = {
    "max_budget_usd": 1000.0,
    "max_item_usd": 100.0,
    "daily_budget_usd": 10000.0,
    "total_budget_usd": 100000.0,
}


def add_history(project: Project, rows: int) -> None:
    """An earlier run of the project with ``rows`` priced responses, half of
    them today: what the daily and total budgets count."""
    store = Store.open(project.store_path)
    try:
        run = store.create_run(
            kind="plan",
            source_path="EARLIER.md",
            source_sha256="0" * 64,
            config={},
            prefix_sha256="0" * 64,
            pid=0,
        )
        item = store.add_item(run.id, key="1", number=1, title="earlier", body="", sha="0" * 64)
        per_attempt = 100
        now = time.time()
        for first in range(0, rows, per_attempt):
            attempt = store.start_attempt(
                run_id=run.id,
                item_id=item.id,
                backend="claude",
                model=MODEL,
                prefix_sha256="0" * 64,
                prompt_sha256="0" * 64,
                base_sha=None,
                evidence_dir=None,
            )
            store.db.executemany(
                "INSERT INTO usage_records (attempt_id, kind, message_id, model, input_tokens,"
                " output_tokens, cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens,"
                " cost_usd, cost_source, ts) VALUES (?, 'response', ?, ?, 10, 1, 0, 0, 0,"
                " '0.0001', 'priced', ?)",
                [
                    (attempt.id, f"m{i}", MODEL, _iso(now - (i % 2) * 2 * 86400))
                    for i in range(first, min(rows, first + per_attempt))
                ],
            )
            store.finish_attempt(attempt.id, AttemptState.FAILED, cost_usd=Decimal("0.01"))
        store.set_run_state(run.id, RunState.RUNNING)
        store.set_run_state(run.id, RunState.FAILED)
    finally:
        store.close()


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def run_bench(workdir: Path, n: int, *, budgets: bool = False, history: int = 0) -> Measurement:
    repo = workdir / "lib"
    plan_path = make_repo(repo, n)
    project = Project(repo)
    if history:
        add_history(project, history)
    reporter = TimingReporter()
    timer = BaselineTimer()
    with SimServer(Scenario.from_dict(scenario(n))) as sim:
        # The agent's Bash tool runs login shells; an empty HOME keeps the
        # machine's profile (pyenv init, cargo env, ...) out of agent time.
        env = agent_env(sim.url, workdir / "claude-config")  # isolated HOME included
        limits: dict[str, Any] = BUDGETS if budgets else {}
        settings = Settings(
            model=MODEL, attempt_timeout=120, gate_timeout=120, max_retries=0, **limits
        )
        runner = Runner(
            project,
            load_plan(plan_path, repo),
            settings,
            ClaudeBackend(),
            reporter,
            RunOptions(agent_env=env),
        )
        with timed_baseline(timer):
            started = time.monotonic()
            result = runner.execute()
            wall = time.monotonic() - started
        if sim.errors:
            raise RunFailed(f"nightcrew.sim reported errors: {sim.errors!r}")
    if result.exit_code != ExitCode.OK or result.run_id is None:
        raise RunFailed(f"the run ended with exit code {int(result.exit_code)}: {result.message}")
    if timer.started is None or timer.finished is None:
        raise RunFailed("the runner did not run the baseline tests (no test gate detected?)")

    store = Store.open(project.store_path, create=False)
    try:
        items = store.items(result.run_id)
        not_passed = [i.number for i in items if i.state != ItemState.PASSED]
        if not_passed:
            raise RunFailed(f"batch(es) {not_passed} did not pass")
        attempts = {i.number: store.attempts(item_id=i.id) for i in items if i.number is not None}
    finally:
        store.close()

    batches = batch_timings(reporter.marks, timer.finished, attempts)
    if len(batches) != n:
        raise RunFailed(f"found {len(batches)} finished batches in the notes, expected {n}")
    last_pass = max(t for t, message in reporter.marks if _PASSED.match(message))
    return Measurement(
        wall=wall,
        baseline=timer.seconds,
        pre_loop=timer.started - started,
        post_loop=started + wall - last_pass,
        batches=batches,
    )


# ---- output ----------------------------------------------------------------------

HEADER = """\
nightcrew orchestration overhead: {n}-batch plan, real Claude Code CLI against nightcrew.sim,
Runner in-process (interpreter start-up and imports are NOT measured), quiet reporter.
  batch wall = previous batch's "passed" note (batch 1: end of the baseline test run)
               -> this batch's "passed" note, time.monotonic() in a Reporter
  agent      = attempts' agent_seconds from the store (CLI spawn -> end of its stream)
  gate       = attempts' gate_seconds from the store (run_gates)
  overhead   = batch wall - agent - gate
  run check  = run wall - sum(agent) - sum(gate) - baseline test run
The agent runs with an empty HOME, so the machine's shell profile (sourced by the CLI's
login shells for every Bash call) does not add to agent time.
"""


def report(m: Measurement) -> None:
    b = m.batches
    over = [x.overhead for x in b]
    rows = [
        ("overhead", over),
        ("  prep (before attempt)", [x.prep for x in b]),
        ("  around agent+gates", [x.around for x in b]),
        ("  commit + finish", [x.finish for x in b]),
        ("agent", [x.agent for x in b]),
        ("gate", [x.gate for x in b]),
        ("batch wall", [x.wall for x in b]),
    ]
    print(f"batches: {len(b)} (attempts: {sum(x.attempts for x in b)})")
    print(f"{'per batch, ms':<24}{'median':>8} {'p95':>8} {'max':>8}")
    for name, values in rows:
        print(f"{name:<24}{ms(statistics.median(values))} {ms(p95(values))} {ms(max(values))}")
    agent, gate = sum(x.agent for x in b), sum(x.gate for x in b)
    total = m.wall - agent - gate - m.baseline
    print(
        f"run wall {m.wall:.2f} s = agent {agent:.2f} s + gates {gate:.2f} s"
        f" + baseline tests {m.baseline:.2f} s + overhead {total:.2f} s"
        f" ({total / len(b) * 1000:.1f} ms per batch; before the loop"
        f" {m.pre_loop * 1000:.1f} ms, after it {m.post_loop * 1000:.1f} ms)"
    )
    median = statistics.median(over) * 1000
    verdict = "OK" if median <= TARGET_MS else "OVER"
    print(
        f"overhead median {median:.1f} ms (target \u2264 {TARGET_MS:.0f} ms): {verdict}"
        f" \u2014 {median / TARGET_MS:.2f}\u00d7 the target"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=20, help="batches in the plan (default 20)")
    parser.add_argument(
        "--budgets", action="store_true", help="set all four budgets (never reached)"
    )
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        metavar="ROWS",
        help="first add an earlier run with ROWS usage records (what the budgets count)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args(argv)
    if args.batches < 1:
        parser.error("--batches must be at least 1")
    if importlib.util.find_spec("pytest") is None:
        print("overhead: the tests gate needs pytest in this interpreter", file=sys.stderr)
        return 1
    print(HEADER.format(n=args.batches), flush=True)
    if args.budgets or args.history:
        print(
            f"budgets: {'all four set, never reached' if args.budgets else 'none'};"
            f" an earlier run with {args.history} usage record(s)",
            flush=True,
        )
    workdir = Path(tempfile.mkdtemp(prefix="nightcrew-bench-"))
    try:
        measurement = run_bench(workdir, args.batches, budgets=args.budgets, history=args.history)
    except (RunFailed, NightcrewError) as exc:
        reason = exc.message if isinstance(exc, NightcrewError) else str(exc)
        print(f"overhead: the run failed: {reason}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report(measurement)
    return 0


if __name__ == "__main__":
    sys.exit(main())
