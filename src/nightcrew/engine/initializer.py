"""``nightcrew backlog init SPEC.md``: one agent session that reads an app spec
and creates the backlog through the backlog tools.

The session is a run of kind ``init`` with one work item and one attempt, so
its tokens and dollars are recorded and its budget is enforced like any
other. The agent only proposes: every feature goes through the store's
checks (a name, an acceptance command or ``manual``, dependencies that exist,
no cycles), and what the store rejects is reported to the agent in the tool's
reply and to the person at the end. The session passes when it created at
least one feature.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from nightcrew.agents.base import AgentBackend, HarnessTool, ToolReply
from nightcrew.config import Settings
from nightcrew.core import events as ev
from nightcrew.core.errors import BadInput, ExitCode
from nightcrew.core.events import DecisionMade, FeatureRejected
from nightcrew.core.states import AttemptState, ItemState, RunState
from nightcrew.engine import gates as gates_mod
from nightcrew.engine import routing
from nightcrew.engine.attempt_run import AttemptResult, BudgetSpent, Job, finish
from nightcrew.engine.context import RunContext
from nightcrew.engine.item import STOPS, ItemOutcome, Start, run_item
from nightcrew.engine.orchestrator import Orchestrator, RunResult
from nightcrew.engine.policy import Climb, Decision
from nightcrew.engine.prompt import prefix_sha256
from nightcrew.engine.report import Progress, Reporter
from nightcrew.engine.scheduler import Scheduler
from nightcrew.engine.signals import Interrupted, StopWatch
from nightcrew.project import Project
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import AttemptRow, ItemRow, Store
from nightcrew.work.backlog import Feature

SPEC_MAX_CHARS = 200_000  # a spec longer than this is read by the agent from the file


@dataclass(frozen=True)
class InitOptions:
    spec: Path
    append: bool = False  # add to a backlog that already has features
    agent_env: dict[str, str] = field(default_factory=dict)
    register: bool = True
    # The tools the session gives the agent: (backlog, run id, attempt).
    tools: Callable[[Backlog, str, AttemptRow], Sequence[HarnessTool]] | None = None


def init_prompt(
    *, project_root: Path, spec_path: str, existing: int, tool_name: Callable[[str], str]
) -> str:
    """The initializer's instructions (the stable part of its prompt);
    ``tool_name`` names a backlog tool as the agent knows it."""
    have = (
        f"The backlog already has {existing} feature(s): read them with get_stats and"
        " get_dependency_graph, and add only what is missing (depends_on may name them)."
        if existing
        else "The backlog is empty."
    )
    return "\n".join(
        [
            "You are the initializer of an unattended build, driven by nightcrew.",
            f"Project root: {project_root}",
            "",
            f"Read the app spec below (from {spec_path}) and turn it into a backlog of"
            f" features with the backlog tools ({tool_name('create_features')} and the"
            " others). Do not write any code: other sessions build the features, one at a"
            " time, in dependency order.",
            have,
            "",
            "## What makes a good feature",
            "- One thing a user can do or see, small enough for one session (an hour of"
            " work), with a one-line name and a category (functional, style, infra, …).",
            "- A description and steps saying how to check it by hand.",
            "- At least one acceptance command: a shell command, run from the project"
            " root, that exits 0 only when the feature works (a test file to be written"
            " with the feature, such as `pytest -q tests/test_login.py`, or a script)."
            " The harness runs these commands to decide that a feature passed; the agent"
            " that builds it cannot mark it passed. Mark a feature manual only when no"
            " command can check it.",
            "- Dependencies on the features that must work first: in one"
            " create_features call, depends_on_indices names earlier features of the"
            " same call by 0-based index. No cycles.",
            "- Lower priority numbers for the foundations (project setup, data model).",
            "",
            "Create everything with as few create_features calls as you can, read each"
            " reply (it lists what was rejected and why), fix and resend the rejected"
            " ones, then end with a short summary.",
        ]
    )


def _spec_text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read the spec: {exc}") from None
    if not text.strip():
        raise BadInput(f"{path}: the spec is empty")
    return text


class Initializer(Orchestrator):
    def __init__(
        self,
        project: Project,
        settings: Settings,
        backend: AgentBackend,
        reporter: Reporter,
        options: InitOptions,
    ) -> None:
        super().__init__(project, settings, backend, reporter, register=options.register)
        self.options = options
        self.spec_text = ""
        self.rejected: list[tuple[str, str]] = []  # (name, reason), as the agent was told

    def _check(self) -> None:
        self.spec_text = _spec_text(self.options.spec)

    def _watch(self, tool: HarnessTool, run_id: str) -> HarnessTool:
        """The tool, telling the person (and the event log) what the store rejected."""
        call = tool.call

        async def watched(args: Mapping[str, Any]) -> ToolReply:
            reply = await call(args)
            refused: list[tuple[str, str]] = []
            if reply.data is not None and isinstance(reply.data.get("rejected"), list):
                refused = [(str(r["name"]), str(r["reason"])) for r in reply.data["rejected"]]
            elif reply.is_error and tool.name == "create_feature":
                refused = [(str(args.get("name", "")), reply.text)]
            for name, reason in refused:
                self.rejected.append((name, reason))
                self.reporter.emit(FeatureRejected(run_id=run_id, name=name, reason=reason))
            return reply

        return replace(tool, call=watched)

    def _execute(self, store: Store, crashed: list[str]) -> RunResult:
        backlog = Backlog(store)
        existing = len(backlog.features())
        if existing and not self.options.append:
            raise BadInput(
                f"the backlog already has {existing} feature(s); add --append to let the"
                " initializer add to it"
            )
        spec_rel = self.project.relative(self.options.spec.resolve())
        prefix = init_prompt(
            project_root=self.project.root,
            spec_path=spec_rel,
            existing=existing,
            tool_name=self.backend.tool_name,
        )
        run = store.create_run(
            kind="init",
            source_path=spec_rel,
            source_sha256=hashlib.sha256(self.spec_text.encode()).hexdigest(),
            config=self.settings.snapshot(),
            prefix_sha256=prefix_sha256(prefix),
            pid=os.getpid(),
        )
        store.set_run_state(run.id, RunState.RUNNING, reason="started")
        run = store.run(run.id)
        # (the notifier times the run from here, as a build's; the console says nothing)
        self.reporter.emit(ev.RunStarted(run_id=run.id, work="init", source_path=spec_rel))
        item = store.add_item(
            run.id,
            key="spec",
            number=1,
            title=f"backlog from {spec_rel}",
            body=self.spec_text[:SPEC_MAX_CHARS],
            sha=run.source_sha256,
        )
        store.set_item_state(item.id, ItemState.IN_PROGRESS, reason="initializer started")
        ctx = self._context(
            store,
            run,
            prefix=prefix,
            gate_specs=[],
            agent_env=self.options.agent_env,
            count=1,
            progress=Progress(run_id=run.id, unit="spec", batch_total=1, batch_index=1),
        )
        tools = self.options.tools
        spec = self.spec_text
        if len(spec) > SPEC_MAX_CHARS:
            spec = spec[:SPEC_MAX_CHARS] + f"\n… (cut here: read the rest from {spec_rel})"
        job = Job(
            name="the initializer",
            heading=f"initializer reading {spec_rel}",
            number=1,
            title=f"backlog from {spec_rel}",
            evidence_root=self.project.run_dir(run.id) / "init",
            suffix=lambda number, previous: f"# The spec: {spec_rel}\n\n{spec}",
            tools=(
                (
                    lambda attempt: [
                        self._watch(tool, run.id) for tool in tools(backlog, run.id, attempt)
                    ]
                )
                if tools
                else None
            ),
        )
        route = routing.for_init(self.settings, len(self.spec_text))
        routing.record(self.reporter, run.id, "the initializer", self.settings, route)
        work = _InitWork(item, job, backlog, route.models[0], self.rejected)
        claimed = [work]

        async def run_spec(spec_work: _InitWork, lane: int) -> ItemOutcome:
            return await run_item(ctx, spec_work, None)

        watch = ctx.watch if ctx.watch is not None else StopWatch()
        scheduler = Scheduler(
            _Once(claimed),
            run_spec,
            lambda outcome: outcome.kind in STOPS,
            watch=watch,
            controls=ctx.controls,
        )
        try:
            outcomes = scheduler.run()
        except (KeyboardInterrupt, Interrupted):
            self._mark_interrupted(store, run.id)
            return self._finish(
                store, run.id, RunState.INTERRUPTED, ExitCode.INTERRUPTED, "interrupted"
            )
        if not outcomes:  # `nightcrew stop` before its attempt started
            stopping = ctx.controls.stopping if ctx.controls is not None else None
            message = stopping or "interrupted"
            self._mark_interrupted(store, run.id, reason=message)
            return self._finish(store, run.id, RunState.INTERRUPTED, ExitCode.INTERRUPTED, message)
        outcome = outcomes[0]
        state, code = {
            "passed": (RunState.SUCCEEDED, ExitCode.OK),
            "interrupted": (RunState.INTERRUPTED, ExitCode.INTERRUPTED),
            "over_budget": (RunState.BUDGET_EXCEEDED, ExitCode.BUDGET_EXCEEDED),
        }.get(outcome.kind, (RunState.FAILED, ExitCode.WORK_FAILED))
        return self._finish(store, run.id, state, code, outcome.message)


class _Once:
    """The initializer's one work item."""

    def __init__(self, items: list[_InitWork]) -> None:
        self.items = items

    def claim(self, lane: int) -> _InitWork | None:
        return self.items.pop(0) if self.items else None


class _Never:
    """The initializer's policy: one attempt, no retry."""

    def decide(self, climb: Climb) -> Decision:
        return Decision("stop", "the initializer failed")


@dataclass(frozen=True)
class _InitWork:
    """The spec as a work item: one attempt, which passes when it created a feature."""

    item: ItemRow
    job: Job
    backlog: Backlog
    model: str | None
    rejected: list[tuple[str, str]]  # (name, reason), as the agent was told
    before: frozenset[int] = frozenset()
    policy: _Never = field(default_factory=_Never)

    def __post_init__(self) -> None:
        object.__setattr__(self, "before", frozenset(f.id for f in self.backlog.features()))

    def _created(self) -> list[Feature]:
        return [f for f in self.backlog.features() if f.id not in self.before]

    def start(self, ctx: RunContext) -> Start:
        return Start(Climb((self.model,)), None)

    def before_attempt(self, ctx: RunContext) -> BudgetSpent | None:
        return None

    def put_back(
        self,
        ctx: RunContext,
        kind: Literal["interrupted", "over_budget"],
        message: str,
        result: AttemptResult | None,
    ) -> ItemOutcome:
        if result is None:  # no attempt started: a budget was spent before
            ctx.store.set_item_state(self.item.id, ItemState.PENDING, reason="budget exceeded")
            return ItemOutcome(kind, message)
        ctx.store.set_item_state(self.item.id, ItemState.PENDING, reason=result.end)
        return ItemOutcome(kind, f"{result.message or result.end}{_kept(self._created())}")

    def held(self, ctx: RunContext, result: AttemptResult, base_sha: str | None) -> ItemOutcome:
        raise AssertionError("the initializer is never held")  # its Job has no hold

    async def passed(
        self, ctx: RunContext, result: AttemptResult, baseline: gates_mod.TestIds | None
    ) -> ItemOutcome:
        created = self._created()
        if not created:
            failed = finish(ctx, result, AttemptState.FAILED, "no feature was created")
            return self._failed(ctx, failed, created)
        finish(ctx, result, AttemptState.PASSED, f"created {len(created)} feature(s)")
        ctx.store.set_item_state(self.item.id, ItemState.PASSED, reason="features created")
        manual = sum(f.manual for f in created)
        message = f"created {len(created)} feature(s)" + (
            f", {manual} of them manual" if manual else ""
        )
        names = {f.name for f in created}
        refused = sorted({name for name, _ in self.rejected if name not in names})
        if refused:
            message += (
                f"; {len(refused)} rejected and not sent again ({', '.join(refused)}):"
                " add them with `nightcrew backlog add`"
            )
        message += "; see `nightcrew backlog list`, then `nightcrew build`"
        return ItemOutcome("passed", message)

    def failed(self, ctx: RunContext, result: AttemptResult) -> str | None:
        return result.model

    def decision_event(self, decision: Decision, model: str | None) -> DecisionMade | None:
        return None  # nothing to decide: the initializer has one attempt

    def ended(
        self,
        ctx: RunContext,
        decision: Decision,
        result: AttemptResult | None,
        base_sha: str | None,
    ) -> ItemOutcome:
        assert result is not None  # the initializer has no verdict from before
        return self._failed(ctx, result, self._created())

    def _failed(
        self, ctx: RunContext, result: AttemptResult, created: Sequence[Feature]
    ) -> ItemOutcome:
        why = result.message or (result.digest or "").splitlines()[0:1]
        detail = why if isinstance(why, str) else " ".join(why)
        last = (result.last_text or "").strip().splitlines()
        message = "the initializer created no features" if not created else "the initializer failed"
        if detail:
            message += f": {detail}"
        if last:
            message += f" (its last words: {last[-1][:200]})"
        ctx.store.set_item_state(
            self.item.id, ItemState.FAILED, reason=message[:200], message=message
        )
        return ItemOutcome("failed", message + _kept(created))


def _kept(created: Sequence[object]) -> str:
    return f"; the {len(created)} feature(s) it created are kept" if created else ""
