"""What ``nightcrew run`` and ``nightcrew build`` share around their loops:
the project lock, SIGTERM as an interruption, crash recovery, the usage
registry, the baseline test run, and how a run ends (state, event, summary)."""

from __future__ import annotations

import signal
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Literal

from nightcrew import gitops
from nightcrew.agents.base import AgentBackend
from nightcrew.config import Settings
from nightcrew.core import events as ev
from nightcrew.core.errors import AgentUnusable, BadInput, ExitCode, NightcrewError
from nightcrew.core.states import AttemptState, ItemState, RunState
from nightcrew.engine import gates as gates_mod
from nightcrew.engine import preflight
from nightcrew.engine import signals as stop_signals
from nightcrew.engine.baseline import baseline_event, stored_baseline
from nightcrew.engine.bus import Bus
from nightcrew.engine.context import RunContext
from nightcrew.engine.controls import Controls
from nightcrew.engine.ledger import BudgetLedger
from nightcrew.engine.limits import LimitWaiter
from nightcrew.engine.lock import ProjectLock
from nightcrew.engine.recovery import recover
from nightcrew.engine.report import Progress, Reporter, SummaryRow
from nightcrew.engine.signals import Interrupted, StopWatch
from nightcrew.engine.workspace import InPlace
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


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    stop_signals.note(signum)
    raise Interrupted()


_RAISING = (signal.SIGTERM, signal.SIGHUP)  # SIGINT is Python's KeyboardInterrupt


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
        if settings.allowed_tools is None:  # the config names none: the agent's own default
            settings = settings.model_copy(update={"allowed_tools": backend.default_allowed_tools})
        self.settings = settings
        self.backend = backend
        # The engine reports to the run's bus; the watcher given here (the
        # console) is its subscriber, and the store is attached once open.
        self.bus = Bus()
        self._preparing: threading.Thread | None = None  # the backend's prepare()
        self.bus.subscribe(reporter.emit, name="the console", close=reporter.close)
        self.reporter: Reporter = self.bus
        self.register = register
        overrides = {
            name: model_price_from_config(name, table) for name, table in settings.pricing.items()
        }
        self.pricer = Pricer(
            overrides, unknown=lambda model: self.bus.emit(ev.PriceUnknown(model=model))
        )
        self.limits = LimitWaiter()  # tests give a clock and a sleeper of their own
        # A person's pause and stop from another process, once the run is open.
        self.controls: Controls | None = None

    def _check(self) -> None:
        """Refuse bad input before anything is locked or written."""

    def _execute(self, store: Store, crashed: list[str]) -> RunResult:
        raise NotImplementedError

    def _start_preparing(self) -> None:
        """Start the backend's one-time set-up (``prepare``) in a thread, once
        the run has work for an agent: it runs while the baseline tests run,
        instead of stalling the event loop when the first agent starts. A run
        that ends before (nothing to do, bad input) never pays for it."""
        prepare = getattr(self.backend, "prepare", None)
        if prepare is None or self._preparing is not None:
            return
        self._preparing = threading.Thread(target=prepare, name="nightcrew-agent-prepare")
        self._preparing.start()

    def execute(self) -> RunResult:
        try:
            self._check()
            gitops.ensure_excluded(self.project.root)
            with ProjectLock(self.project.lock_path):
                stop_signals.reset()
                previous = {sig: signal.signal(sig, _raise_interrupted) for sig in _RAISING}
                store = Store.open(self.project.store_path)
                self.bus.attach_store(store)
                try:
                    crashed = recover(store, self.bus, self.project.root)
                    self.left_alone = self._preflight(store)
                    if self.register:
                        self._register()
                    return self._execute(store, crashed)
                except AgentUnusable as unusable:
                    self._mark_interrupted(store, unusable.run_id, reason=unusable.message)
                    told = ev.BackendUnusable(run_id=unusable.run_id, message=unusable.message)
                    self.bus.emit(told)
                    return self._finish(
                        store,
                        unusable.run_id,
                        RunState.FAILED,
                        ExitCode.BAD_INPUT,
                        unusable.message,
                    )
                except NothingToDo as done:
                    self.bus.emit(ev.NothingLeft(message=str(done)))
                    return RunResult(ExitCode.OK, None, str(done))
                finally:
                    for sig, handler in previous.items():
                        signal.signal(sig, handler)
                    self.bus.detach_store()
                    store.close()
        finally:
            self.reporter.close()
            if self._preparing is not None:
                self._preparing.join()

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
        return problems + self._tree_problems(self.prerun)

    def _tree_problems(self, prerun: PreRun) -> list[str]:
        """What in the user's tree stops the run: secrets, uncommitted files
        (see :func:`preflight.tree_problems`); none for a run that never works there."""
        return preflight.tree_problems(
            self.project.root, allow_dirty=prerun.allow_dirty, resume=prerun.resume
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
                self.bus.emit(ev.RunAbandoned(run_id=latest.id, abandoned=latest.id, why=why))
        return preflight.left_alone(self.project.root) if self.prerun.allow_dirty else frozenset()

    def _record_left_alone(self, store: Store, run_id: str, resumed: bool) -> None:
        if not self.left_alone:
            return
        paths = tuple(sorted(self.left_alone))
        self.bus.emit(ev.LeftAlone(run_id=run_id, paths=paths, resumed=resumed))

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
            self.bus.emit(ev.RegistryFailed(error=str(exc)))

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
    ) -> RunContext:
        """What every attempt of this run needs to know."""
        watch = StopWatch()
        self.controls = Controls(store, run.id, self.bus, watch)
        self.controls.expire_stale()  # a request a gone orchestrator left never steers this run
        return RunContext(
            project=self.project,
            store=store,
            run=run,
            settings=self.settings,
            backend=self.backend,
            reporter=self.reporter,
            pricer=self.pricer,
            prefix=prefix,
            gate_specs=tuple(gate_specs),
            agent_env=agent_env,
            batch_count=count,
            progress=progress,
            limits=self.limits,
            workspace=InPlace(self.project.root, self.left_alone),
            left_alone=self.left_alone,
            watch=watch,
            ledger=BudgetLedger.seed(store, run.id),
            controls=self.controls,
        )

    def _baseline(
        self,
        store: Store,
        run_id: str,
        specs: list[gates_mod.GateSpec],
        directory: Path,
        unit: str,
        units: str,
        *,
        root: Path | None = None,
    ) -> gates_mod.TestIds | None:
        """Run the tests once before the first unit, so later regressions show.

        A resumed run keeps the baseline it recorded (after its last passed
        unit): the tree it resumes on may hold a stopped attempt's half-done
        work, and tests that work broke must not count as "already failing"."""
        if not any(s.kind == "tests" for s in specs):
            return None
        kept = stored_baseline(store, run_id)
        if kept is not None:
            self.bus.emit(ev.BaselineKept(run_id=run_id, tests=len(kept.all)))
            return kept
        self.bus.emit(ev.BaselineStarted(run_id=run_id))
        where = root if root is not None else self.project.root
        baseline = gates_mod.run_baseline(where, directory, self.settings.gate_timeout)
        if baseline is not None:
            self.bus.emit(baseline_event(run_id, baseline))
        if baseline is not None and baseline.failed:
            failing = ev.BaselineFailing(
                run_id=run_id, failed=len(baseline.failed), unit=unit, units=units
            )
            self.bus.emit(failing)
        return baseline

    def _mark_interrupted(
        self, store: Store, run_id: str, *, reason: str = "run interrupted"
    ) -> None:
        for attempt in store.attempts(run_id=run_id):
            if attempt.state == AttemptState.RUNNING:
                store.finish_attempt(
                    attempt.id, AttemptState.CANCELLED, reason=stop_signals.reason()
                )
        for item in store.items(run_id):
            if item.state == ItemState.IN_PROGRESS:
                store.set_item_state(item.id, ItemState.PENDING, reason=reason[:300])

    def _stop(
        self,
        store: Store,
        run_id: str,
        why: Literal["interrupted", "over_budget", "failed"],
        message: str = "",
    ) -> RunResult:
        """End a run that stopped short: interrupted, over a budget, or failed."""
        if why == "interrupted":
            if self.controls is not None:  # a stop asked for and not yet taken is told now
                self.controls.finish(interrupted=True)
            what = "hung up (SIGHUP)" if stop_signals.hung_up() else "interrupted"
            if self.controls is not None and self.controls.stopping is not None:
                what = self.controls.stopping  # `nightcrew stop`: "stopped by … from …"
            message = f"{what}: state saved; continue with {self.resume_hint}"
            code = stop_signals.exit_code()
            return self._finish(store, run_id, RunState.INTERRUPTED, code, message)
        if why == "over_budget":
            return self._finish(
                store, run_id, RunState.BUDGET_EXCEEDED, ExitCode.BUDGET_EXCEEDED, message
            )
        return self._finish(store, run_id, RunState.FAILED, ExitCode.WORK_FAILED, message)

    def _finish(
        self, store: Store, run_id: str, state: RunState, code: ExitCode, message: str
    ) -> RunResult:
        if self.controls is not None:  # requests the run did not take are answered
            self.controls.finish(interrupted=state == RunState.INTERRUPTED)
        store.set_run_state(run_id, state, reason=message, message=message)
        footer = _footer(store, run_id, message)
        if self.left_alone:
            footer += " Left alone, uncommitted as before the run: " + ", ".join(
                sorted(self.left_alone)
            )
        # After a hangup the terminal may be gone: the bus leaves a failing
        # console out, and the state is saved.
        finished = ev.RunFinished(
            run_id=run_id,
            state=str(state),
            message=message,
            exit_code=int(code),
            rows=tuple(summary_rows(store, run_id)),
            footer=footer,
        )
        self.bus.emit(finished)
        return RunResult(code, run_id, message)


_UNITS = {"plan": "batch", "backlog": "feature", "init": "spec"}


def summary_unit(kind: str) -> str:
    """What a run of ``kind`` works through: batch, feature or spec."""
    return _UNITS.get(kind, "batch")


def summary_rows(store: Store, run_id: str) -> list[SummaryRow]:
    unit = summary_unit(store.run(run_id).kind)
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
    attempts = store.attempts(run_id=run_id)
    totals = store.totals(attempts)
    cost = "unknown" if totals.cost_usd is None else f"${totals.cost_usd:.4f}"
    if not attempts:  # nothing ran, so nothing was spent: that is known
        cost = "$0.0000"
    if totals.unknown_cost and totals.cost_usd is not None:
        cost = f"at least {cost} ({totals.unknown_cost} attempt(s) of unknown cost)"
    t = totals.tokens
    kind = "build" if store.run(run_id).kind == "backlog" else "run"
    return (
        f"{kind} {run_id}: {message}. Cost {cost}; tokens: {t.input:,} in, {t.output:,} out,"
        f" {t.cache_read:,} cache read, {t.cache_write:,} cache write."
    )


def gate_line(spec: gates_mod.GateSpec) -> str:
    if spec.kind == "clean":
        return "clean: the tree must be committable (no secrets, no unfinished merge, history kept)"
    if spec.kind == "changes":
        ignored = f" (not counting {', '.join(spec.ignore)})" if spec.ignore else ""
        return f"changes: the attempt must change a file{ignored}"
    shown = spec.command or spec.shown
    return f"{spec.name}: `{shown}`" if shown else spec.name
