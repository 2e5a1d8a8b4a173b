"""What ``nightcrew run`` and ``nightcrew build`` share around their loops:
the project lock, SIGTERM as an interruption, crash recovery, the usage
registry, the baseline test run, and how a run ends (state, event, summary)."""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Literal

from nightcrew import gitops
from nightcrew.agents.base import AgentBackend
from nightcrew.config import Settings
from nightcrew.engine import gates as gates_mod
from nightcrew.engine import preflight
from nightcrew.engine.batch import BatchContext
from nightcrew.engine.lock import ProjectLock
from nightcrew.engine.recovery import recover
from nightcrew.engine.report import Progress, Reporter, SummaryRow
from nightcrew.engine.states import AttemptState, ItemState, RunState
from nightcrew.errors import BadInput, ExitCode, NightcrewError
from nightcrew.project import Project
from nightcrew.store.records import RunRow, Store
from nightcrew.usage.globaldb import open_global, register_project
from nightcrew.usage.pricing import Pricer, model_price_from_config


@dataclass(frozen=True)
class RunResult:
    exit_code: ExitCode
    run_id: str | None
    message: str


class NothingToDo(Exception):
    """--resume of a run with nothing left to do."""


class Interrupted(BaseException):
    """SIGTERM outside the agent: treated like Ctrl-C."""


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted()


@dataclass(frozen=True)
class PreRun:
    """What a person said about the checks before the first attempt."""

    allow_dirty: bool = False  # --allow-dirty: leave uncommitted files alone
    new: bool = False  # --new: abandon an unfinished run and start over
    resume: bool = False  # --resume: continue the latest run


LEFT_ALONE = "left_alone"  # the event recording the paths --allow-dirty left alone


class Orchestrator:
    """The frame of a run; subclasses supply ``_execute``."""

    resume_hint = "--resume"  # how a person continues a stopped run
    # Runs without the checks before the first attempt (backlog init) leave this None.
    prerun: PreRun | None = None
    left_alone: frozenset[str] = frozenset()

    def __init__(
        self,
        project: Project,
        settings: Settings,
        backend: AgentBackend,
        reporter: Reporter,
        *,
        register: bool,
    ) -> None:
        self.project = project
        self.settings = settings
        self.backend = backend
        self.reporter = reporter
        self.register = register
        overrides = {
            name: model_price_from_config(name, table) for name, table in settings.pricing.items()
        }
        self.pricer = Pricer(overrides, warn=lambda m: reporter.note(m, "warn"))

    def _check(self) -> None:
        """Refuse bad input before anything is locked or written."""

    def _execute(self, store: Store, crashed: list[str]) -> RunResult:
        raise NotImplementedError

    def execute(self) -> RunResult:
        try:
            self._check()
            gitops.ensure_excluded(self.project.root)
            with ProjectLock(self.project.lock_path):
                previous_term = signal.signal(signal.SIGTERM, _raise_interrupted)
                store = Store.open(self.project.store_path)
                try:
                    crashed = recover(store, self.reporter, self.project.root)
                    self.left_alone = self._preflight(store)
                    if self.register:
                        self._register()
                    return self._execute(store, crashed)
                except NothingToDo as done:
                    self.reporter.note(str(done))
                    return RunResult(ExitCode.OK, None, str(done))
                finally:
                    signal.signal(signal.SIGTERM, previous_term)
                    store.close()
        finally:
            self.reporter.close()

    def _latest(self, store: Store) -> RunRow | None:
        """The run a new one would repeat: the latest of this plan, or build."""
        return None

    def _unfinished_message(self, run: RunRow, why: str) -> str:
        return (
            f"run {run.id} is unfinished ({why}): continue with --resume, or start over with --new"
        )

    def problems(self, store: Store | None) -> list[str]:
        """Everything that stops a run before its first attempt (see
        :mod:`preflight`); ``store`` is None when the project has none yet."""
        if self.prerun is None:
            return []
        problems: list[str] = []
        latest = self._latest(store) if store is not None else None
        why = preflight.unfinished(store, latest) if store is not None else None
        if latest is not None and why is not None and not (self.prerun.new or self.prerun.resume):
            problems.append(self._unfinished_message(latest, why))
        root = self.project.root
        return problems + preflight.tree_problems(
            root, allow_dirty=self.prerun.allow_dirty, resume=self.prerun.resume
        )

    def _preflight(self, store: Store) -> frozenset[str]:
        """Refuse (exit 2) what :meth:`problems` finds; abandon the unfinished run
        with --new; return the paths --allow-dirty leaves alone."""
        if self.prerun is None:
            return frozenset()
        problems = self.problems(store)
        if problems:
            raise BadInput("; ".join(problems))
        latest = self._latest(store)
        if self.prerun.resume:
            if latest is not None:
                for event in store.events(latest.id):
                    if event["kind"] == LEFT_ALONE:
                        return frozenset(event["payload"]["paths"])
            return frozenset()
        if self.prerun.new and latest is not None:
            why = preflight.unfinished(store, latest)
            if why is not None:
                store.set_run_state(latest.id, RunState.ABANDONED, reason="started over with --new")
                self.reporter.note(f"run {latest.id} ({why}) is abandoned: starting over", "warn")
        return preflight.left_alone(self.project.root) if self.prerun.allow_dirty else frozenset()

    def _record_left_alone(self, store: Store, run_id: str, resumed: bool) -> None:
        if not self.left_alone:
            return
        if not resumed:
            store.event(run_id, LEFT_ALONE, {"paths": sorted(self.left_alone)})
        self.reporter.note(
            "left alone, never committed (--allow-dirty): " + ", ".join(sorted(self.left_alone)),
            "warn",
        )

    def _register(self) -> None:
        """Put the project in the user's registry, for ``nightcrew usage
        --all-projects``. A registry that cannot be written costs a warning,
        never the run."""
        try:
            db = open_global()
            try:
                register_project(db, self.project.root)
            finally:
                db.close()
        except (OSError, sqlite3.Error, NightcrewError) as exc:
            self.reporter.note(f"could not add this project to the usage registry: {exc}", "warn")

    def _gate_specs(self) -> list[gates_mod.GateSpec]:
        specs = gates_mod.default_gates(self.project.root)
        if self.settings.gates:
            user = [gates_mod.command_gate(i, cmd) for i, cmd in enumerate(self.settings.gates, 1)]
            specs = user + [s for s in specs if s.kind == "clean"]
        return specs

    def _context(
        self,
        store: Store,
        run: RunRow,
        *,
        prefix: str,
        gate_specs: list[gates_mod.GateSpec],
        agent_env: Mapping[str, str],
        count: int,
        progress: Progress,
    ) -> BatchContext:
        """What every attempt of this run needs to know."""
        return BatchContext(
            project=self.project,
            store=store,
            run=run,
            settings=self.settings,
            backend=self.backend,
            reporter=self.reporter,
            pricer=self.pricer,
            prefix=prefix,
            gate_specs=gate_specs,
            agent_env=agent_env,
            batch_count=count,
            progress=progress,
            baseline=None,
            left_alone=self.left_alone,
        )

    def _baseline(
        self, specs: list[gates_mod.GateSpec], directory: Path, unit: str, units: str
    ) -> gates_mod.TestIds | None:
        """Run the tests once before the first unit, so later regressions show."""
        if not any(s.kind == "tests" for s in specs):
            return None
        self.reporter.note("running the tests once to record the baseline")
        baseline = gates_mod.run_baseline(self.project.root, directory, self.settings.gate_timeout)
        if baseline is not None and baseline.failed:
            self.reporter.note(
                f"{len(baseline.failed)} test(s) already fail before any {unit};"
                f" they will not count against the {units}",
                "warn",
            )
        return baseline

    def _mark_interrupted(self, store: Store, run_id: str) -> None:
        for attempt in store.attempts(run_id=run_id):
            if attempt.state == AttemptState.RUNNING:
                store.finish_attempt(
                    attempt.id, AttemptState.CANCELLED, reason="interrupted by the user"
                )
        for item in store.items(run_id):
            if item.state == ItemState.IN_PROGRESS:
                store.set_item_state(item.id, ItemState.PENDING, reason="run interrupted")

    def _stop(
        self,
        store: Store,
        run_id: str,
        why: Literal["interrupted", "over_budget", "failed"],
        message: str = "",
    ) -> RunResult:
        """End a run that stopped short: interrupted, over a budget, or failed."""
        if why == "interrupted":
            message = f"interrupted: state saved; continue with {self.resume_hint}"
            return self._finish(store, run_id, RunState.INTERRUPTED, ExitCode.INTERRUPTED, message)
        if why == "over_budget":
            return self._finish(
                store, run_id, RunState.BUDGET_EXCEEDED, ExitCode.BUDGET_EXCEEDED, message
            )
        return self._finish(store, run_id, RunState.FAILED, ExitCode.WORK_FAILED, message)

    def _finish(
        self, store: Store, run_id: str, state: RunState, code: ExitCode, message: str
    ) -> RunResult:
        store.set_run_state(run_id, state, reason=message, message=message)
        store.event(run_id, "run_finished", {"state": state, "message": message})
        footer = _footer(store, run_id, message)
        if self.left_alone:
            footer += " Left alone, uncommitted as before the run: " + ", ".join(
                sorted(self.left_alone)
            )
        self.reporter.summary(summary_rows(store, run_id), footer)
        return RunResult(code, run_id, message)


_UNITS = {"plan": "batch", "backlog": "feature", "init": "spec"}


def summary_rows(store: Store, run_id: str) -> list[SummaryRow]:
    unit = _UNITS.get(store.run(run_id).kind, "batch")
    rows = []
    for item in store.items(run_id):
        attempts = store.attempts(item_id=item.id)
        totals = store.totals(attempts)
        seconds = sum((a.agent_seconds or 0) + (a.gate_seconds or 0) for a in attempts)
        rows.append(
            SummaryRow(
                number=item.number,
                title=item.title,
                state=str(item.state),
                attempts=len(attempts),
                seconds=seconds if attempts else None,
                cost_usd=totals.cost_usd,
                cost_unknown=totals.unknown_cost > 0,
                commit=item.commit_sha,
                unit=unit,
            )
        )
    return rows


def _footer(store: Store, run_id: str, message: str) -> str:
    totals = store.totals(store.attempts(run_id=run_id))
    cost = "unknown" if totals.cost_usd is None else f"${totals.cost_usd:.4f}"
    if totals.unknown_cost and totals.cost_usd is not None:
        cost = f"at least {cost} ({totals.unknown_cost} attempt(s) of unknown cost)"
    t = totals.tokens
    return (
        f"run {run_id}: {message}. Cost {cost}; tokens: {t.input:,} in, {t.output:,} out,"
        f" {t.cache_read:,} cache read, {t.cache_write:,} cache write."
    )


def gate_line(spec: gates_mod.GateSpec) -> str:
    if spec.kind == "clean":
        return "clean: the tree must be committable (no secrets, no unfinished merge, history kept)"
    return f"{spec.name}: `{spec.command}`"
