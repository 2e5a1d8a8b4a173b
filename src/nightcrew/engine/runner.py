"""``nightcrew run``: a plan's batches, one fresh agent session at a time.

The store is the state. A run is created (or resumed), each batch in range
that has not passed is attempted, judged by the harness's gates, committed,
and accounted; the exit code says how it ended.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from nightcrew.agents.base import AgentBackend
from nightcrew.config import Settings
from nightcrew.core import events as ev
from nightcrew.core.errors import BadInput, ExitCode, GitError
from nightcrew.core.states import ItemState, RunState
from nightcrew.engine import gates as gates_mod
from nightcrew.engine.batch import BatchWork
from nightcrew.engine.context import RunContext
from nightcrew.engine.item import STOPS, ItemOutcome, run_item
from nightcrew.engine.orchestrator import (
    NothingToDo,
    Orchestrator,
    PreRun,
    RunResult,
    gate_line,
)
from nightcrew.engine.prompt import prefix_sha256, stable_prefix
from nightcrew.engine.report import Progress, Reporter
from nightcrew.engine.run_branch import RunBranch
from nightcrew.engine.scheduler import Scheduler
from nightcrew.engine.signals import Interrupted, StopWatch
from nightcrew.engine.workspace import InWorktree
from nightcrew.project import Project
from nightcrew.store.records import ItemRow, RunRow, Store
from nightcrew.work.plan import Batch, Plan


@dataclass(frozen=True)
class RunOptions:
    start_batch: int | None = None
    end_batch: int | None = None
    resume: bool = False
    new: bool = False  # abandon an unfinished run of the plan and start over
    allow_dirty: bool = False  # leave the user's uncommitted files alone
    agent_env: Mapping[str, str] = field(default_factory=dict)
    # Add the project to the user's registry (usage --all-projects); the demo's
    # throw-away repository does not belong there.
    register: bool = True
    branch: str | None = None  # work on this branch (made from HEAD) instead of the current one
    worktree: bool = False  # with branch: in a worktree of it, the user's checkout untouched


class Runner(Orchestrator):
    def __init__(
        self,
        project: Project,
        plan: Plan,
        settings: Settings,
        backend: AgentBackend,
        reporter: Reporter,
        options: RunOptions,
    ) -> None:
        super().__init__(project, settings, backend, reporter, register=options.register)
        self.plan = plan
        self.options = options
        self.prerun = PreRun(
            allow_dirty=options.allow_dirty, new=options.new, resume=options.resume
        )
        # Where the run works when not on the current branch: what the options
        # ask, or on --resume what the resumed run recorded (see :meth:`problems`).
        self.branch: RunBranch | None = None
        self._entered = False  # the branch (or its worktree) was made ready

    def _latest(self, store: Store) -> RunRow | None:
        return store.latest_run(self.project.relative(self.plan.path))

    def _unfinished_message(self, run: RunRow, why: str) -> str:
        return (
            f"run {run.id} of {run.source_path} is unfinished ({why}):"
            " continue with --resume, or start over with --new"
        )

    def _check(self) -> None:
        self._check_range()
        self.branch = RunBranch.of(self.options.branch, self.options.worktree)

    # ---- the branch it works on -------------------------------------------------------

    def _placement(self, store: Store | None) -> RunBranch | None:
        """The branch this run works on: the options', or on --resume the one
        the resumed run recorded (given again, they must agree)."""
        asked = RunBranch.of(self.options.branch, self.options.worktree)
        latest = self._latest(store) if store is not None and self.options.resume else None
        kept = RunBranch.stored(latest.config) if latest is not None else None
        if latest is None or kept is None or asked in (None, kept):
            return kept if asked is None else asked
        raise BadInput(
            f"run {latest.id} of {latest.source_path} works with {kept.flags()}:"
            " resume it with those options, or with none"
        )

    def problems(self, store: Store | None) -> list[str]:
        self.branch = self._placement(store)
        found = super().problems(store)
        if self.branch is not None:
            found += self.branch.problems(self.project.root, resume=self.options.resume)
        return found

    def _in_worktree(self) -> bool:
        return self.branch is not None and self.branch.worktree

    def _tree_problems(self, prerun: PreRun) -> list[str]:
        # A run in a worktree never works in the user's tree: its files are no matter.
        return [] if self._in_worktree() else super()._tree_problems(prerun)

    def _preflight(self, store: Store) -> frozenset[str]:
        left = super()._preflight(store)
        return frozenset() if self._in_worktree() else left

    def _config(self) -> dict[str, Any]:
        """The run's stored config: the settings, and the branch it works on."""
        placed = self.branch.snapshot() if self.branch is not None else {}
        return {**self.settings.snapshot(), **placed}

    def _check_range(self) -> None:
        numbers = [b.number for b in self.plan.batches]
        for flag, value in (
            ("--start-batch", self.options.start_batch),
            ("--end-batch", self.options.end_batch),
        ):
            if value is not None and value not in numbers:
                raise BadInput(
                    f"{flag} {value}: the plan has no batch {value}"
                    f" (batches: {', '.join(map(str, numbers))})"
                )
        start, end = self.options.start_batch, self.options.end_batch
        if start is not None and end is not None and start > end:
            raise BadInput(f"--start-batch {start} comes after --end-batch {end}")

    def _batches_in_range(self) -> list[Batch]:
        lo = self.options.start_batch or -1
        hi = self.options.end_batch if self.options.end_batch is not None else 1 << 62
        return [b for b in self.plan.batches if lo <= b.number <= hi]

    # ---- the run --------------------------------------------------------------

    def _resumable(self, store: Store) -> RunRow:
        """The run --resume continues, its items lined up with the plan; raises
        when there is none, or nothing left to do in it."""
        plan_rel = self.project.relative(self.plan.path)
        run = store.latest_run(plan_rel)
        if run is None:
            raise BadInput(f"{plan_rel}: no earlier run of this plan to resume")
        if run.state == RunState.ABANDONED:
            raise BadInput(f"run {run.id} of {plan_rel} was abandoned (--new); start a new run")
        self._sync_items(store, run)
        if run.state == RunState.SUCCEEDED and self._nothing_left(store, run):
            raise NothingToDo(
                f"run {run.id} already passed every batch in range; nothing to resume"
            )
        return run

    def _open_run(
        self, store: Store, prefix_sha: str, resumed: RunRow | None
    ) -> tuple[RunRow, bool]:
        if resumed is not None:
            store.set_run_state(
                resumed.id,
                RunState.RUNNING,
                reason="resumed",
                orchestrator_pid=_pid(),
                source_sha256=self.plan.sha256,
                config_json=_json(self._config()),
            )
            return store.run(resumed.id), True
        run = store.create_run(
            kind="plan",
            source_path=self.project.relative(self.plan.path),
            source_sha256=self.plan.sha256,
            config=self._config(),
            prefix_sha256=prefix_sha,
            pid=_pid(),
        )
        for batch in self.plan.batches:
            _add_item(store, run.id, batch)
        store.set_run_state(run.id, RunState.RUNNING, reason="started")
        return store.run(run.id), False

    def _nothing_left(self, store: Store, run: RunRow) -> bool:
        wanted = {str(b.number) for b in self._batches_in_range()}
        return all(
            item.state == ItemState.PASSED for item in store.items(run.id) if item.key in wanted
        )

    def _sync_items(self, store: Store, run: RunRow) -> None:
        """On resume, line the stored items up with the plan as it is now."""
        if run.source_sha256 != self.plan.sha256:
            self.reporter.emit(ev.PlanChanged(run_id=run.id, source_path=run.source_path))
        existing = {item.key: item for item in store.items(run.id)}
        for batch in self.plan.batches:
            item = existing.get(str(batch.number))
            if item is None:
                _add_item(store, run.id, batch)
                self.reporter.emit(ev.BatchNew(run_id=run.id, number=batch.number))
                continue
            if item.body_sha256 != batch.sha256:
                store.update_item_text(
                    item.id, title=batch.title, body=batch.body, sha=batch.sha256
                )
                if item.state == ItemState.PASSED:
                    store.set_item_state(
                        item.id, ItemState.PENDING, reason="its text changed in the plan"
                    )
                    self.reporter.emit(ev.BatchChanged(run_id=run.id, number=batch.number))
        planned = {str(b.number) for b in self.plan.batches}
        for key in sorted(set(existing) - planned):
            self.reporter.emit(ev.BatchGone(run_id=run.id, key=key))

    def _execute(self, store: Store, crashed: list[str]) -> RunResult:
        previous = self._resumable(store) if self.options.resume else None
        where = self.project.root  # where the agent, the baseline and the gates work
        if self.branch is not None:
            where = self.branch.enter(self.project.root)
            self._entered = True
        specs = self._gate_specs()
        prefix = stable_prefix(
            project_root=where,
            plan_path=self.project.relative(self.plan.path),
            plan_preamble=self.plan.preamble,
            gate_lines=[gate_line(s) for s in specs],
            commit=self.settings.commit,
        )
        run, resumed = self._open_run(store, prefix_sha256(prefix), previous)
        self._record_left_alone(store, run.id, resumed)
        self.reporter.emit(
            ev.RunStarted(run_id=run.id, work="plan", resumed=resumed, source_path=run.source_path)
        )
        if not self.settings.gates:  # --gate replaces the tests gate: no detection to report
            self.reporter.emit(gates_mod.detected_tests(where, run.id))
        for warning in self.plan.warnings:
            self.reporter.emit(
                ev.PlanWarning(
                    run_id=run.id,
                    source_path=run.source_path,
                    line=warning.line,
                    message=warning.message,
                )
            )

        batches = self._batches_in_range()
        items = {item.key: item for item in store.items(run.id)}
        todo = [b for b in batches if items[str(b.number)].state != ItemState.PASSED]
        for batch in batches:
            if items[str(batch.number)].state == ItemState.PASSED:
                self.reporter.emit(ev.BatchAlreadyPassed(run_id=run.id, number=batch.number))

        ctx = self._context(
            store,
            run,
            prefix=prefix,
            gate_specs=specs,
            agent_env=self.options.agent_env,
            count=len(self.plan.batches),
            progress=Progress(run_id=run.id, batch_total=len(batches)),
        )
        if self.branch is not None and self.branch.worktree:
            ctx = replace(ctx, workspace=InWorktree(where, branch=self.branch.name))
        try:
            baseline = None
            if todo:
                self._start_preparing()
                baseline = self._baseline(
                    store,
                    run.id,
                    specs,
                    self.project.run_dir(run.id) / "baseline",
                    "batch",
                    "batches",
                    root=where,
                )
            return self._loop(store, run, batches, todo, ctx, baseline)
        except (KeyboardInterrupt, Interrupted):
            self._mark_interrupted(store, run.id)
            return self._stop(store, run.id, "interrupted")

    def _loop(
        self,
        store: Store,
        run: RunRow,
        batches: list[Batch],
        todo: list[Batch],
        ctx: RunContext,
        baseline: gates_mod.TestIds | None,
    ) -> RunResult:
        source = _PlanSource(ctx, batches, todo)
        tests = [baseline]  # the baseline each passed batch hands on

        async def work(claimed: tuple[Batch, ItemRow], lane: int) -> ItemOutcome:
            batch, item = claimed
            outcome = await run_item(ctx, BatchWork.of(ctx, batch, item), tests[0])
            tests[0] = outcome.baseline
            return outcome

        scheduler = Scheduler(
            source, work, lambda o: o.kind in STOPS, watch=_watch(ctx), controls=ctx.controls
        )
        failed_skipped: list[int] = []
        for outcome in scheduler.run():
            if outcome.kind == "passed":
                continue
            if outcome.kind == "interrupted":
                return self._stop(store, run.id, "interrupted")
            if outcome.kind == "over_budget":
                return self._stop(store, run.id, "over_budget", outcome.message)
            if outcome.kind == "skipped":
                failed_skipped.append(int(outcome.key))
                continue
            return self._stop(store, run.id, "failed", outcome.message)
        if ctx.controls is not None and ctx.controls.stopping is not None:
            return self._stop(store, run.id, "interrupted")  # `nightcrew stop`, between batches
        if failed_skipped:
            listed = ", ".join(map(str, failed_skipped))
            return self._finish(
                store,
                run.id,
                RunState.FAILED,
                ExitCode.OK,
                f"done; batch(es) {listed} failed and were skipped (--on-failure skip)",
            )
        return self._finish(store, run.id, RunState.SUCCEEDED, ExitCode.OK, "every batch passed")

    def _finish(
        self, store: Store, run_id: str, state: RunState, code: ExitCode, message: str
    ) -> RunResult:
        """End the run as the frame does; on a branch, the last line also says
        where the work is (a finished run's worktree is removed first)."""
        if self.branch is not None and self._entered:
            message = f"{message}; {self._leave(store, run_id, state)}"
        return super()._finish(store, run_id, state, code, message)

    def _leave(self, store: Store, run_id: str, state: RunState) -> str:
        assert self.branch is not None
        left_open = any(
            item.state in (ItemState.PENDING, ItemState.IN_PROGRESS)
            for item in store.items(run_id)
            if item.key in {str(b.number) for b in self._batches_in_range()}
        )
        # A run that stopped short keeps its worktree for --resume.
        finished = state == RunState.SUCCEEDED or (state == RunState.FAILED and not left_open)
        try:
            return self.branch.leave(self.project.root, finished=finished)
        except GitError as exc:
            return f"work is on branch {self.branch.name}; its worktree stays: {exc.message}"


class _PlanSource:
    """The plan's batches to run, in order; an empty one is skipped as it comes."""

    def __init__(self, ctx: RunContext, batches: list[Batch], todo: list[Batch]) -> None:
        self.ctx = ctx
        self.batches = batches
        self.todo = list(todo)

    def claim(self, lane: int) -> tuple[Batch, ItemRow] | None:
        ctx, store = self.ctx, self.ctx.store
        while self.todo:
            batch = self.todo.pop(0)
            ctx.progress.set(batch_index=self.batches.index(batch) + 1)
            item = _item(store, ctx.run.id, batch)
            if batch.is_empty:
                store.set_item_state(
                    item.id,
                    ItemState.SKIPPED,
                    reason="empty batch",
                    message="the batch has no text",
                )
                ctx.reporter.emit(ev.BatchEmpty(run_id=ctx.run.id, number=batch.number))
                continue
            return batch, item
        return None


def _watch(ctx: RunContext) -> StopWatch:
    return ctx.watch if ctx.watch is not None else StopWatch()


def _add_item(store: Store, run_id: str, batch: Batch) -> None:
    store.add_item(
        run_id,
        key=str(batch.number),
        number=batch.number,
        title=batch.title,
        body=batch.body,
        sha=batch.sha256,
    )


def _item(store: Store, run_id: str, batch: Batch) -> ItemRow:
    for item in store.items(run_id):
        if item.key == str(batch.number):
            return item
    raise KeyError(batch.number)


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True)


def _pid() -> int:
    return os.getpid()


__all__ = ["RunOptions", "RunResult", "Runner"]
