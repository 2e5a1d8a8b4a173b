"""``nightcrew build``: the backlog's ready features, one fresh agent session
at a time, until nothing is ready.

A build is a run of kind ``backlog``: its work items are the features it
touched. Before any agent runs, claims that a feature already passes (an
import's ``passes: true``, a person's MCP claim) are checked by running the
feature's acceptance commands and the gates; only the harness marks a feature
passed. Then the loop claims the best ready feature, works on it
(``engine.feature``), and claims the next. It stops by itself when no feature is
ready, saying why, so it never spends tokens on a finished backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from nightcrew import gitmerge, gitops
from nightcrew.agents.base import AgentBackend, HarnessTool
from nightcrew.config import Settings
from nightcrew.core import events as ev
from nightcrew.core.errors import AgentUnusable, BadInput, ExitCode, GitError
from nightcrew.core.states import ItemState, RunState
from nightcrew.engine import gates as gates_mod
from nightcrew.engine.context import RunContext
from nightcrew.engine.executor import LaneExecutor
from nightcrew.engine.feature import Build, FeatureWork
from nightcrew.engine.feature_prompt import backlog_prefix
from nightcrew.engine.item import STOPS, ItemOutcome, run_item
from nightcrew.engine.lanes import WORKTREES, Lanes, integration_branch
from nightcrew.engine.merge_queue import MergeQueue
from nightcrew.engine.orchestrator import (
    NothingToDo,
    Orchestrator,
    PreRun,
    RunResult,
    gate_line,
)
from nightcrew.engine.prompt import prefix_sha256
from nightcrew.engine.report import Progress, Reporter
from nightcrew.engine.scheduler import Scheduler
from nightcrew.engine.signals import Interrupted, StopWatch
from nightcrew.project import Project
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import AttemptRow, ItemRow, RunRow, Store
from nightcrew.work.backlog import Feature
from nightcrew.work.backlog_graph import blocked_by
from nightcrew.work.lane_conflicts import Candidate, Running, WaitNotices, pick

SOURCE = "backlog"  # the source_path of every build run


@dataclass(frozen=True)
class BuildOptions:
    resume: bool = False
    new: bool = False  # abandon an unfinished build and start a new one
    allow_dirty: bool = False  # leave the user's uncommitted files alone
    resume_session: bool = False
    max_features: int | None = None  # stop after this many features were worked on
    agent_env: Mapping[str, str] = field(default_factory=dict)
    register: bool = True
    parallel: int | None = None  # lanes (None: the config's `parallel`)
    worktree: bool = False  # work in worktrees even with one lane
    branch: str | None = None  # land on this branch (made from HEAD) instead of the current one
    # The tools each attempt gives the agent: (backlog, feature, run id, attempt).
    tools: Callable[[Backlog, Feature, str, AttemptRow], Sequence[HarnessTool]] | None = None


class Builder(Orchestrator):
    resume_hint = "`nightcrew build --resume`"

    def __init__(
        self,
        project: Project,
        settings: Settings,
        backend: AgentBackend,
        reporter: Reporter,
        options: BuildOptions,
    ) -> None:
        if options.parallel is not None:
            settings = settings.model_copy(update={"parallel": options.parallel})
        super().__init__(project, settings, backend, reporter, register=options.register)
        self.options = options
        self.lane_count = self.settings.parallel
        # Several lanes work in worktrees; so does one with --worktree or --branch.
        self.in_worktrees = (
            self.lane_count > 1
            or options.worktree
            or options.branch is not None
            or self.settings.branch_per_feature  # a branch per feature needs a worktree each
        )
        self.prerun = PreRun(
            # The user's checkout is not worked in: its uncommitted files are no matter.
            allow_dirty=options.allow_dirty or self.in_worktrees,
            new=options.new,
            resume=options.resume,
        )
        self.lanes: LaneExecutor | None = None  # with worktrees: local lanes (Lanes)

    def _preflight(self, store: Store) -> frozenset[str]:
        left = super()._preflight(store)
        return frozenset() if self.in_worktrees else left

    def _latest(self, store: Store) -> RunRow | None:
        return store.latest_run(SOURCE)

    def _unfinished_message(self, run: RunRow, why: str) -> str:
        return (
            f"build {run.id} is unfinished ({why}): continue with"
            " `nightcrew build --resume`, or start a new build with --new"
        )

    def _check(self) -> None:
        if not self.project.store_path.exists():
            raise BadInput(
                f"{self.project.root}: no backlog here yet (create one with"
                " `nightcrew backlog init SPEC.md`, `backlog import FILE` or `backlog add NAME`)"
            )

    # ---- the run ------------------------------------------------------------------

    def _open_run(self, store: Store, backlog: Backlog, prefix_sha: str) -> tuple[RunRow, bool]:
        if self.options.resume:
            run = store.latest_run(SOURCE)
            if run is None:
                raise BadInput("no earlier build to resume (start one with `nightcrew build`)")
            if run.state == RunState.ABANDONED:
                raise BadInput(f"build {run.id} was abandoned (--new); start a new build")
            if run.state == RunState.SUCCEEDED and not backlog.ready():
                raise NothingToDo(f"build {run.id} has nothing ready; nothing to resume")
            store.set_run_state(
                run.id,
                RunState.RUNNING,
                reason="resumed",
                orchestrator_pid=os.getpid(),
                config_json=json.dumps(self.settings.snapshot(), sort_keys=True),
            )
            return store.run(run.id), True
        run = store.create_run(
            kind="backlog",
            source_path=SOURCE,
            source_sha256=_backlog_sha(backlog.features()),
            config=self.settings.snapshot(),
            prefix_sha256=prefix_sha,
            pid=os.getpid(),
        )
        store.set_run_state(run.id, RunState.RUNNING, reason="started")
        return store.run(run.id), False

    def _release_dead(self, store: Store, backlog: Backlog) -> list[int]:
        """Features left in progress by builds that are no longer running (they
        crashed or were killed): back to pending. Returns their ids."""
        holders = {f.claimed_by for f in backlog.features() if f.claimed_by}
        dead = []
        for holder in holders:
            try:
                run = store.run(holder) if holder else None
            except KeyError:
                continue  # not a build: an MCP client's hold is its own business
            if run is not None and run.state != RunState.RUNNING:
                dead.append(holder)
        released = backlog.release_all(dead, reason="its build stopped") if dead else []
        for feature in released:
            self.reporter.emit(ev.FeatureReleased(item=f"feature {feature.label}"))
        return [f.id for f in released]

    def _execute(self, store: Store, crashed: list[str]) -> RunResult:
        backlog = Backlog(store)
        if not backlog.features():
            raise BadInput(
                f"{self.project.root}: the backlog is empty (create features with"
                " `nightcrew backlog init SPEC.md`, `backlog import FILE` or `backlog add NAME`)"
            )
        interrupted_features = self._release_dead(store, backlog)
        specs = self._gate_specs()
        prefix = backlog_prefix(
            project_root=self.project.root,
            gate_lines=[gate_line(s) for s in specs],
            commit=self.settings.commit,
            tools=self.backend.tool_name if self.options.tools is not None else None,
            worktree=self.in_worktrees,
        )
        run, resumed = self._open_run(store, backlog, prefix_sha256(prefix))
        self._record_left_alone(store, run.id, resumed)
        self.reporter.emit(ev.RunStarted(run_id=run.id, work="backlog", resumed=resumed))
        if not self.settings.gates:  # --gate replaces the tests gate: no detection to report
            self.reporter.emit(gates_mod.detected_tests(self.project.root, run.id))
        tools = self.options.tools
        ctx = self._context(
            store,
            run,
            prefix=prefix,
            gate_specs=specs,
            agent_env=self.options.agent_env,
            count=len(backlog.features()),
            progress=Progress(run_id=run.id, unit="feature"),
        )
        build = Build(
            backlog=backlog,
            resume_session=self.options.resume_session,
            tools_for=(
                (lambda feature, attempt: tools(backlog, feature, run.id, attempt))
                if tools is not None
                else None
            ),
        )
        if self.in_worktrees:
            self.lanes = self._open_lanes(run.id)
        try:
            baseline = None
            if backlog.ready():
                self._start_preparing()
                with self._check_tree() as tree:
                    baseline = self._baseline(
                        store,
                        run.id,
                        specs,
                        self.project.run_dir(run.id) / "baseline",
                        "feature",
                        "features",
                        root=tree,
                    )
            first = [fid for fid in interrupted_features if resumed]
            return self._loop(ctx, build, first, baseline)
        except (KeyboardInterrupt, Interrupted):
            self._mark_interrupted(store, run.id)
            backlog.release_all([run.id], reason="build interrupted")
            return self._stop(store, run.id, "interrupted")
        except AgentUnusable as unusable:
            # The orchestrator fails the run; the feature must not stay held by it.
            backlog.release_all([run.id], reason=unusable.message[:300])
            raise

    # ---- claims -------------------------------------------------------------------

    def _verify_claims(
        self, ctx: RunContext, backlog: Backlog, baseline: gates_mod.TestIds | None
    ) -> None:
        """Check every ready feature that somebody claims passes, without an agent:
        its acceptance commands and the gates decide."""
        run = ctx.run
        while True:  # a confirmed claim can make a claimed dependent ready
            claimed = [
                (f, claims) for f in backlog.ready() if (claims := backlog.open_claims(f.id))
            ]
            if not claimed:
                return
            feature, claims = claimed[0]
            held = backlog.claim(feature.id, by=run.id)
            if held is None:
                continue
            name = f"feature {feature.label}"
            self.reporter.emit(
                ev.ClaimChecking(
                    run_id=run.id,
                    item=name,
                    sources=tuple(sorted({str(c["source"]) for c in claims})),
                )
            )
            with self._check_tree() as tree:
                results = gates_mod.run_gates(
                    [
                        *(
                            gates_mod.acceptance_gate(i, c)
                            for i, c in enumerate(held.acceptance, 1)
                        ),
                        *ctx.gate_specs,
                    ],
                    root=tree,
                    evidence_dir=self.project.run_dir(run.id) / f"claim-{feature.id}",
                    baseline=baseline,
                    base_sha=gitops.head_sha(tree),
                    timeout_s=self.settings.gate_timeout,
                )
            passed = gates_mod.gates_passed(results) and bool(held.acceptance)
            backlog.judge_claims(feature.id, confirmed=passed)
            checked = ev.ClaimChecked(
                run_id=run.id,
                feature=feature.id,
                passed=passed,
                gates=tuple(ev.GateVerdict(r.name, r.passed) for r in results),
                item=name,
            )
            if passed:
                backlog.release(feature.id, ItemState.PASSED, by=run.id, reason="claim verified")
            else:
                backlog.release(feature.id, ItemState.PENDING, by=run.id, reason="claim refuted")
            self.reporter.emit(checked)

    # ---- the loop -----------------------------------------------------------------

    def _item(self, store: Store, run: RunRow, feature: Feature) -> ItemRow:
        for item in store.items(run.id):
            if item.feature_id == feature.id:
                return item
        return store.add_item(
            run.id,
            key=f"feature-{feature.id}",
            number=feature.id,
            title=feature.name,
            body=feature.description,
            sha=_sha(json.dumps([feature.name, feature.description, list(feature.acceptance)])),
            feature_id=feature.id,
        )

    def _loop(
        self,
        ctx: RunContext,
        build: Build,
        first: list[int],
        baseline: gates_mod.TestIds | None,
    ) -> RunResult:
        store, run = ctx.store, ctx.run
        source = _BuildSource(self, ctx, build, first, baseline)

        lanes = self.lanes

        async def work(feature: Feature, lane: int) -> ItemOutcome:
            try:
                return await work_on(feature, lane)
            finally:
                source.done(feature)

        async def work_on(feature: Feature, lane: int) -> ItemOutcome:
            item = self._item(store, run, feature)
            here = ctx if lanes is None else await lanes.context(ctx, feature, lane)
            if isinstance(here, str):  # the worktree's setup failed: no agent can work there
                build.backlog.release(feature.id, ItemState.PENDING, by=run.id, reason=here)
                return ItemOutcome("failed", here, key=item.key)
            if lanes is not None:
                here = replace(here, slot=scheduler.slots[lane])
            feature_work = FeatureWork.of(here, build, feature, item)
            outcome = await run_item(here, feature_work, source.baseline)
            if lanes is None or (outcome.kind == "passed" and not self.settings.branch_per_feature):
                # The tests as they are on the integration branch now (a branch
                # left unmerged changes nothing there).
                source.baseline = outcome.baseline
            if lanes is not None and outcome.kind in ("passed", "gave_up"):
                # Landed, or given up with its changes kept as a patch: the
                # worktree has nothing left. Others are kept for a resume or a person.
                keep = outcome.kind == "passed" and self.settings.branch_per_feature
                await asyncio.to_thread(lanes.remove, feature, branch=not keep)
            return outcome

        watch = ctx.watch if ctx.watch is not None else StopWatch()
        watch.threaded = lanes is not None
        scheduler = Scheduler(
            source,
            work,
            lambda o: o.kind in STOPS,
            watch=watch,
            # Two lanes per agent: a feature in the merge queue keeps its lane
            # while the next feature's agent works in another.
            lanes=self.settings.lanes if lanes is not None else 1,
            agents=lanes.count if lanes is not None else None,
            why=lambda o: o.message,
            controls=ctx.controls,
        )
        given_up: list[int] = []
        outcomes = scheduler.run()
        for outcome in outcomes:
            if outcome.kind in ("passed", "needs_input"):
                continue
            if outcome.kind == "gave_up":
                given_up.append(int(outcome.key.removeprefix("feature-")))
                continue
            if outcome.kind in ("interrupted", "over_budget", "failed"):
                message = outcome.message
                if outcome.kind == "over_budget":
                    message += _lanes_stopped(outcomes)
                return self._stop(store, run.id, outcome.kind, message)
            raise AssertionError(outcome.kind)  # every kind is handled above
        if ctx.controls is not None and ctx.controls.stopping is not None:
            return self._stop(store, run.id, "interrupted")  # `nightcrew stop`, between items
        if source.capped:
            message = (
                f"stopped after {source.worked} feature(s) (--max-features); {_left(build.backlog)}"
            )
            return self._finish(store, run.id, RunState.INTERRUPTED, ExitCode.OK, message)
        return self._done(ctx, build.backlog, given_up)

    def _open_lanes(self, run_id: str) -> LaneExecutor:
        root = self.project.root
        branch = integration_branch(root, self.options.branch)
        state_dir = self.project.store_path.parent
        queue = MergeQueue(
            root,
            branch,
            method=self.settings.merge,
            scratch=state_dir / WORKTREES,
            gate_timeout=self.settings.gate_timeout,
            run_id=run_id,
            batch=self.settings.merge_batch,
            on_take=lambda items: self.reporter.emit(ev.MergeChecking(run_id=run_id, items=items)),
        )
        return Lanes(root, state_dir, queue, self.lane_count)

    @contextlib.contextmanager
    def _check_tree(self) -> Iterator[Path]:
        """Where checks without an agent run (the baseline, claims): the user's
        tree in place; with lanes, a scratch worktree at the integration head."""
        lanes = self.lanes
        if lanes is None:
            yield self.project.root
            return
        path = self.project.store_path.parent / WORKTREES / "check"
        gitmerge.add_detached(self.project.root, path, lanes.queue.head())
        try:
            yield path
        finally:
            gitmerge.remove_worktree(self.project.root, path)

    def _done(self, ctx: RunContext, backlog: Backlog, given_up: list[int]) -> RunResult:
        """Nothing is ready: end the build and say why."""
        features = backlog.features()
        left = _left(backlog)
        # Either way the build did what its policy says (exit 0), so it succeeded;
        # the message counts what is skipped, blocked, manual or waiting.
        if all(f.state == ItemState.PASSED or f.manual for f in features):
            message = f"the backlog is done: {left}"
        else:
            message = f"nothing is ready: {left}"
        state = RunState.SUCCEEDED
        if given_up:
            listed = ", ".join(f"#{i}" for i in given_up)
            message += f" (given up in this build: {listed}; see `nightcrew backlog failures`)"
        return self._finish(ctx.store, ctx.run.id, state, ExitCode.OK, message)


class _BuildSource:
    """The ready features, best first, claimed for this build; features a
    stopped build left in progress come first; ``--max-features`` caps them."""

    def __init__(
        self,
        builder: Builder,
        ctx: RunContext,
        build: Build,
        first: list[int],
        baseline: gates_mod.TestIds | None,
    ) -> None:
        self.builder = builder
        self.ctx = ctx
        self.build = build
        self.first = list(first)
        self.baseline = baseline  # the tests' baseline, handed on by each passed feature
        self.worked = 0
        self.capped = False
        self.running: dict[int, Feature] = {}  # claimed and not done (landed or ended)
        self.notices = WaitNotices()

    def done(self, feature: Feature) -> None:
        self.running.pop(feature.id, None)

    def _claim_apart(self, backlog: Backlog, run_id: str) -> Feature | None:
        """The best ready feature that shares no files with the features in
        flight (named in their texts, touched by earlier attempts, or being
        changed in their worktrees); each one that must wait is told why, once."""
        lanes, store = self.builder.lanes, self.ctx.store
        assert lanes is not None
        ready = [Candidate.of(f, store.touched_files(f.id)) for f in backlog.ready()[:_LOOK_AHEAD]]
        if not ready:
            # Nothing to start: the lanes in flight need not be asked what they
            # change (git in each worktree). Every lane asks again each time a
            # feature ends, so this is most of the claims near a build's end.
            self.notices.news(())
            return None
        try:
            head: str | None = lanes.queue.head()
        except GitError:
            head = None  # the lanes' changes are then unknown, as when git fails in one
        running = [
            Running.of(f, store.touched_files(f.id), _changing(lanes, f, head))
            for f in self.running.values()
        ]
        picked = pick(ready, running)
        for wait in self.notices.news(picked.waits):
            self.ctx.reporter.emit(wait.event(run_id))
        if picked.chosen is None:
            return None
        return backlog.claim(picked.chosen.feature_id, by=run_id)

    def claim(self, lane: int) -> Feature | None:
        backlog, run_id = self.build.backlog, self.ctx.run.id
        limit = self.builder.options.max_features
        if limit is not None and self.worked >= limit:
            self.capped = True
            return None
        self.builder._verify_claims(self.ctx, backlog, self.baseline)
        feature = None
        while self.first and feature is None:
            feature = backlog.claim(self.first.pop(0), by=run_id)
        if feature is None and self.builder.lanes is not None:
            feature = self._claim_apart(backlog, run_id)
        elif feature is None:
            feature = backlog.claim(None, by=run_id)
        if feature is None:
            return None
        self.running[feature.id] = feature
        self.notices.forget(feature.id)
        self.worked += 1
        self.ctx.progress.set(
            batch_index=self.worked, batch_total=self.worked + len(backlog.ready())
        )
        return feature


def _lanes_stopped(outcomes: Sequence[ItemOutcome]) -> str:
    """What a budget stop did to the lanes in flight, for the run's last line;
    "" when only one was working."""
    stopped = [
        "#" + o.key.removeprefix("feature-")
        for o in outcomes
        if o.kind in ("interrupted", "over_budget")
    ]
    if len(stopped) < 2:
        return ""
    return f"; {len(stopped)} lanes stopped: features {', '.join(stopped)} are back to pending"


# How far down the ready list a lane looks for a feature that may run beside the others.
_LOOK_AHEAD = 20


def _changing(lanes: LaneExecutor, feature: Feature, head: str | None) -> tuple[str, ...]:
    """The files a feature in flight has changed in its worktree so far
    (``head``: the integration branch's, read once per claim)."""
    path = lanes.path_for(feature)
    if head is None or not path.exists():
        return ()
    try:
        base = gitmerge.merge_base(path, "HEAD", head)
        return tuple(gitops.changed_files(path, base))
    except GitError:
        return ()


def _left(backlog: Backlog) -> str:
    """Where the backlog stands, in one phrase."""
    features = backlog.features()
    passed = sum(f.state == ItemState.PASSED for f in features)
    parts = [f"{passed} of {len(features)} features passed"]
    blocked = blocked_by(features)
    for state, word in (
        (ItemState.SKIPPED, "skipped"),
        (ItemState.FAILED, "failed"),
        (ItemState.NEEDS_INPUT, "waiting for a person"),
    ):
        ids = [f.label for f in features if f.state == state]
        if ids:
            parts.append(f"{len(ids)} {word} ({', '.join(ids)})")
    if blocked:
        parts.append(f"{len(blocked)} blocked")
    manual = [f for f in features if f.manual and f.state != ItemState.PASSED]
    if manual:
        parts.append(f"{len(manual)} manual (a person checks them)")
    ready = [f for f in features if f.state == ItemState.PENDING and f.id not in blocked]
    ready = [f for f in ready if not f.manual]
    if ready:
        parts.append(f"{len(ready)} pending")
    return ", ".join(parts)


def _backlog_sha(features: Sequence[Feature]) -> str:
    return _sha(json.dumps([[f.id, f.name, list(f.acceptance)] for f in features]))


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
