"""One attempt at a work item: a plan's batch, a backlog's feature, or the
initializer's spec.

An attempt checks the budgets, writes the prompt, runs one fresh agent session,
records its money, and has the harness run the gates. It does not decide what
the result means: the work-item loop (``item``) does that with the item's
policy. Every attempt is finished by :func:`finish`, which stores its state and
returns the typed :class:`AttemptResult`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal

from nightcrew import debris, gitops
from nightcrew.agents.base import AgentFailure, AgentRequest, HarnessTool
from nightcrew.core import events as ev
from nightcrew.core.errors import AgentUnusable, GitError
from nightcrew.core.states import AttemptState
from nightcrew.core.usage import TokenCounts
from nightcrew.engine import gates as gates_mod
from nightcrew.engine import signals as stop_signals
from nightcrew.engine.attempt import AgentOutcome, drive_agent
from nightcrew.engine.baseline import baseline_event
from nightcrew.engine.budget import BudgetGuard
from nightcrew.engine.context import RunContext
from nightcrew.engine.digest import failure_signature, make_digest
from nightcrew.engine.gate_lines import gate_detail, gate_reason, record_gate
from nightcrew.engine.limits import MAX_WAITS, refuse_wait
from nightcrew.engine.prompt import PreviousFailure, Prompt
from nightcrew.engine.recording import EXCERPT, Recorder, record_final
from nightcrew.store.records import AttemptRow, ItemRow
from nightcrew.toolpolicy import ToolPolicy

# "held": the work item left the run during the attempt (a person was asked).
# "limited" stays inside run_attempt: the run waits for the usage limit and tries again.
AttemptEnd = Literal["passed", "failed", "held", "interrupted", "over_budget", "limited"]


@dataclass(frozen=True)
class Job:
    """What an attempt works on, as the attempt needs to know it."""

    name: str  # "batch 2" or "feature #7": budgets and messages
    heading: str  # "batch 2/3 'Add login'": the console line of each attempt
    number: int  # shown by the live display
    title: str
    evidence_root: Path
    suffix: Callable[[int, PreviousFailure | None], str]  # (attempt number, previous)
    extra_gates: tuple[gates_mod.GateSpec, ...] = ()  # run before the project's gates
    # Tools the harness gives the agent in-process (the backlog tools), built per attempt.
    tools: Callable[[AttemptRow], Sequence[HarnessTool]] | None = None
    # Asked after the agent ends and before the gates: a reason not to judge
    # this attempt (the agent asked a person for input), or None.
    hold: Callable[[], str | None] | None = None


@dataclass(frozen=True)
class BudgetSpent:
    """No attempt was started: a budget was already spent (``message`` says which)."""

    message: str


@dataclass(frozen=True)
class AttemptResult:
    """How an attempt ended. ``state`` is what the store holds: None while a
    ``passed`` attempt waits for its commit (see :func:`conclude`)."""

    end: AttemptEnd
    attempt: AttemptRow
    model: str | None
    state: AttemptState | None = None
    message: str = ""
    results: tuple[gates_mod.GateResult, ...] = ()
    gate_seconds: float = 0.0
    common: Mapping[str, object] = field(default_factory=dict)
    digest: str | None = None
    signature: str | None = None
    previous: PreviousFailure | None = None  # what the next attempt is told
    last_text: str | None = None
    session_id: str | None = None
    commit: str | None = None
    limit_resets_at: datetime | None = None  # end "limited": when to try again
    name: str = ""  # the work item, as a person names it ("batch 2")
    tokens: TokenCounts = field(default_factory=TokenCounts)  # the agent session's
    base_after: str | None = None  # where the next attempt starts, when not where this one did
    # In a lane: the git tree of the work its gates ran on (the merge queue need
    # not check that tree again); None in place, or when git could not tell.
    checked_tree: str | None = None

    @property
    def number(self) -> int:
        return self.attempt.number

    @property
    def cost_usd(self) -> Decimal | None:
        cost = self.common.get("cost_usd")
        return cost if isinstance(cost, Decimal) else None


CHANGES_PATCH = "changes.patch"  # an attempt's diff from its base, in its evidence


def finish(
    ctx: RunContext,
    result: AttemptResult,
    state: AttemptState,
    reason: str,
    *,
    end: AttemptEnd | None = None,
    told: str | None = None,
    **fields: object,
) -> AttemptResult:
    """Store the attempt's end (the one place an attempt is finished), emit
    :class:`~nightcrew.core.events.AttemptFinished` (``told``: why the agent's
    session failed, for watchers; gate failures are told by their own events)
    and return the result as finished."""
    values: dict[str, object] = {**result.common}
    if result.results:  # the gates ran
        values["gate_seconds"] = result.gate_seconds
    values.update(fields)
    ctx.store.finish_attempt(result.attempt.id, state, reason=reason, **values)
    seconds = values.get("agent_seconds")
    ctx.reporter.emit(
        ev.AttemptFinished(
            run_id=ctx.run.id,
            item_id=result.attempt.item_id,
            attempt_id=result.attempt.id,
            item=result.name,
            number=result.number,
            state=str(state),
            model=result.model,
            tokens=result.tokens,
            cost_usd=result.cost_usd,
            seconds=float(seconds) if isinstance(seconds, int | float) else None,
            digest=told,
        )
    )
    digest = fields.get("digest", result.digest)
    commit = fields.get("commit_sha", result.commit)
    return replace(
        result,
        state=state,
        end=end or result.end,
        digest=digest if isinstance(digest, str) else None,
        commit=commit if isinstance(commit, str) else None,
    )


def budget_guard(ctx: RunContext, job: Job, item: ItemRow) -> BudgetGuard:
    return BudgetGuard.of(
        ctx.ledger,
        ctx.settings,
        item_id=item.id,
        item_name=job.name,
        store=ctx.store,
        run_id=ctx.run.id,
        reporter=ctx.reporter,
    )


def over_budget_before(ctx: RunContext, job: Job, item: ItemRow) -> BudgetSpent | None:
    """A budget already spent before an attempt starts, or None."""
    guard = budget_guard(ctx, job, item)
    guard.check()
    return _spent(ctx, guard) if guard.exceeded() is not None else None


def _spent(ctx: RunContext, guard: BudgetGuard, attempt_id: int | None = None) -> BudgetSpent:
    """A budget is spent: say which (:class:`~nightcrew.core.events.BudgetStop`)."""
    ctx.reporter.emit(guard.stop(attempt_id=attempt_id))
    return BudgetSpent(guard.message())


async def run_attempt(
    ctx: RunContext,
    job: Job,
    item: ItemRow,
    *,
    model: str | None,
    previous: PreviousFailure | None,
    base_sha: str | None,
    baseline: gates_mod.TestIds | None,
    resume_session_id: str | None = None,
) -> AttemptResult | BudgetSpent:
    """Run one attempt. With ``--wait-on-limit`` an attempt stopped by a usage
    limit is followed, once the limit resets, by another one: the caller sees
    only the attempt that was judged."""
    waits = 0
    while True:
        run = await _attempt_once(
            ctx,
            job,
            item,
            model=model,
            previous=previous,
            base_sha=base_sha,
            baseline=baseline,
            resume_session_id=resume_session_id,
        )
        if isinstance(run, BudgetSpent) or run.end != "limited" or run.limit_resets_at is None:
            return run
        until = run.limit_resets_at
        if waits == MAX_WAITS:  # the limit did not lift when it said it would: never spin
            raise AgentUnusable(
                f"the agent cannot work: the usage limit was still reached after {waits}"
                " waits for its reset",
                ctx.run.id,
            )
        waits += 1
        ctx.reporter.emit(
            ev.UsageLimitWait(
                run_id=ctx.run.id, attempt_id=run.attempt.id, until=until.isoformat(), item=job.name
            )
        )
        ctx.limits.wait_until(until)
        ctx.reporter.emit(ev.UsageLimitReset(run_id=ctx.run.id, item=job.name))
        resume_session_id = None


async def _attempt_once(
    ctx: RunContext,
    job: Job,
    item: ItemRow,
    *,
    model: str | None,
    previous: PreviousFailure | None,
    base_sha: str | None,
    baseline: gates_mod.TestIds | None,
    resume_session_id: str | None = None,
) -> AttemptResult | BudgetSpent:
    store, settings = ctx.store, ctx.settings
    root = ctx.workspace.cwd
    guard = budget_guard(ctx, job, item)
    guard.check()
    if guard.exceeded() is not None:
        return _spent(ctx, guard)
    left = guard.left()
    number = store.next_attempt_number(item.id)
    evidence = job.evidence_root / f"attempt-{number}"
    evidence.mkdir(parents=True, exist_ok=True)
    prompt = Prompt(ctx.prefix, job.suffix(number, previous))
    (evidence / "prompt.txt").write_text(prompt.text, encoding="utf-8")
    attempt = store.start_attempt(
        run_id=ctx.run.id,
        item_id=item.id,
        backend=ctx.backend.name,
        model=model,
        prefix_sha256=prompt.prefix_sha256,
        prompt_sha256=prompt.sha256,
        base_sha=base_sha,
        evidence_dir=evidence,
        lane=ctx.lane or None,
    )
    ctx.progress.set(
        batch_number=job.number,
        title=job.title,
        attempt=number,
        model=model,
        phase="agent",
        started_at=time.monotonic(),
        current_tool=None,
    )
    ctx.reporter.emit(
        ev.AttemptStarted(
            run_id=ctx.run.id,
            item_id=item.id,
            attempt_id=attempt.id,
            heading=job.heading,
            number=number,
            model=model,
            resume_session_id=resume_session_id,
        )
    )
    item_spent = ctx.ledger.item_spent(item.id)
    request = AgentRequest(
        prompt=prompt.text,
        cwd=root,
        model=model,
        allowed_tools=(
            settings.allowed_tools
            if settings.allowed_tools is not None
            else ctx.backend.default_allowed_tools
        ),
        env=ctx.agent_env,
        # Never an infinite budget: Claude Code refuses `--max-budget-usd inf`.
        max_budget_usd=float(left) if left is not None and math.isfinite(left) else None,
        work_dir=evidence,
        resume_session_id=resume_session_id,
        harness_tools=tuple(job.tools(attempt)) if job.tools is not None else (),
        tool_policy=ToolPolicy(settings.policy.spec(), root),
    )
    temps_before = _agent_temps(root)
    outcome = await drive_agent(
        ctx.backend,
        request,
        timeout_s=settings.attempt_timeout,
        pricer=ctx.pricer,
        budget_left_usd=left,
        on_event=Recorder(ctx, attempt, item_spent, guard),
        watch=ctx.watch,
        over_budget=lambda live: guard.exceeded(live) is not None,
        starting=ctx.slot.starting if ctx.slot is not None else None,
    )
    cost, source = record_final(ctx, attempt, outcome, ctx.pricer)
    ctx.ledger.settle(attempt.id, item.id, cost)
    if outcome.end != "finished":
        _remove_debris(ctx, job, temps_before)
    result = AttemptResult(
        "failed",
        attempt,
        model,
        common=_common(outcome, cost, source),
        last_text=outcome.last_text,
        session_id=outcome.session_id,
        name=job.name,
        tokens=_tokens(outcome),
    )
    if outcome.end != "finished":
        return _ended_early(ctx, job, item, result, outcome)
    held = job.hold() if job.hold is not None else None
    if held is not None:
        ended = finish(ctx, result, AttemptState.FAILED, held[:300], end="held")
        return replace(ended, message=held)
    return await _judge(ctx, job, result, evidence, base_sha=base_sha, baseline=baseline)


def _tokens(outcome: AgentOutcome) -> TokenCounts:
    """The session's tokens: the agent's final totals, else those seen streaming."""
    finished = outcome.finished
    if finished is not None and finished.model_usage:
        return sum((u.tokens for u in finished.model_usage), TokenCounts())
    return outcome.live.tokens


def _common(outcome: AgentOutcome, cost: Decimal | None, source: str | None) -> dict[str, object]:
    """What every end of an attempt stores about its agent session."""
    return dict(
        models_json=json.dumps(outcome.models),
        session_id=outcome.session_id,
        tool_calls=outcome.tool_calls,
        tool_denials=outcome.tool_denials,
        agent_seconds=outcome.agent_seconds,
        cost_usd=cost,
        cost_source=source,
        result_subtype=outcome.finished.result_subtype if outcome.finished else None,
        is_error=outcome.finished.is_error if outcome.finished else None,
        last_text=(outcome.last_text or "")[:EXCERPT] or None,
    )


def _ended_early(
    ctx: RunContext, job: Job, item: ItemRow, result: AttemptResult, outcome: AgentOutcome
) -> AttemptResult:
    """The agent's session did not finish normally: stopped, over budget, timed out, crashed."""
    if outcome.end == "cancelled":
        why = ctx.watch.reason() if ctx.watch is not None else stop_signals.reason()
        return finish(ctx, result, AttemptState.CANCELLED, why, end="interrupted")
    if outcome.end == "over_budget":
        ended = finish(
            ctx,
            result,
            AttemptState.OVER_BUDGET,
            "the budget ran out during this attempt",
            end="over_budget",
        )
        spent = _spent(ctx, budget_guard(ctx, job, item), result.attempt.id)
        return replace(ended, message=spent.message)
    if outcome.end == "timed_out":
        digest = (
            f"The agent did not finish within {ctx.settings.attempt_timeout:g} s and"
            " was stopped. Work in smaller steps and finish sooner."
        )
    else:
        finished = outcome.finished
        error = finished and (finished.error or finished.result_text)
        digest = f"The agent session ended with an error: {error or 'unknown error'}"
    signature = f"{outcome.end}:{digest[:120]}"
    known = outcome.finished.agent_failure if outcome.finished else None
    if outcome.end == "crashed" and known is not None and not known.retryable:
        # Another attempt would fail the same way: stop (or wait out a
        # usage limit), and spend no retry.
        return _unusable(ctx, result, known, digest, signature)
    state = AttemptState.TIMED_OUT if outcome.end == "timed_out" else AttemptState.CRASHED
    ended = finish(
        ctx, result, state, digest[:300], told=digest, digest=digest, signature=signature
    )
    kind = "timed_out" if outcome.end == "timed_out" else "crashed"
    return replace(
        ended, signature=signature, previous=PreviousFailure(result.number, kind, digest)
    )


async def _judge(
    ctx: RunContext,
    job: Job,
    result: AttemptResult,
    evidence: Path,
    *,
    base_sha: str | None,
    baseline: gates_mod.TestIds | None,
) -> AttemptResult:
    """The harness runs the gates; a passed attempt waits for its commit."""
    _keep_files(ctx, result.attempt.id, base_sha)
    checked_tree = _keep_diff(ctx, evidence, base_sha)
    # Its agent's time, stored now: `status` (maybe in another process) tells
    # an attempt in its gates from one whose agent still works by it.
    ctx.store.update_attempt(result.attempt.id, agent_seconds=result.common.get("agent_seconds"))
    ctx.progress.set(phase="gates")
    ctx.reporter.emit(ctx.progress.event())
    started = time.monotonic()
    gates = functools.partial(
        gates_mod.run_gates,
        [*job.extra_gates, *ctx.gate_specs],
        root=ctx.workspace.cwd,
        evidence_dir=evidence,
        baseline=baseline,
        base_sha=base_sha,
        timeout_s=ctx.settings.gate_timeout,
        # A lane's gates get its variables on top of the whole environment (run_gates
        # takes an environment, not additions).
        env={**os.environ, **ctx.lane_env} if ctx.lane_env else None,
        left_alone=ctx.left_alone,
    )
    if ctx.landing is None:
        results = gates()
    else:  # several lanes: the others' agents stream on while these gates run
        results = await asyncio.to_thread(gates)
        stopped_now = ctx.watch is not None and ctx.watch.now  # nightcrew stop --now
        if stop_signals.received() is not None or stopped_now:  # the stop killed them
            why = ctx.watch.reason() if ctx.watch is not None else stop_signals.reason()
            return finish(ctx, result, AttemptState.CANCELLED, why, end="interrupted")
    result = replace(
        result,
        gate_seconds=time.monotonic() - started,
        results=tuple(results),
        checked_tree=checked_tree,
    )
    for gate in results:
        record_gate(ctx.store, result.attempt.id, gate)
        ctx.reporter.emit(
            ev.GateChecked(
                run_id=ctx.run.id,
                item_id=result.attempt.item_id,
                attempt_id=result.attempt.id,
                name=gate.name,
                passed=gate.passed,
                detail=gate_detail(gate),
                reason="" if gate.passed else gate_reason(gate),
            )
        )
    if gates_mod.gates_passed(results):
        return replace(result, end="passed")
    digest = make_digest(results)
    signature = failure_signature(results)
    ended = finish(
        ctx, result, AttemptState.FAILED, "gates failed", digest=digest, signature=signature
    )
    return replace(
        ended, signature=signature, previous=PreviousFailure(result.number, "failed", digest)
    )


def _keep_files(ctx: RunContext, attempt_id: int, base_sha: str | None) -> None:
    """Store the files the agent changed, before the gates add their own
    (caches, reports), so a parallel build can keep apart features that
    touch the same files. Git failing leaves them unknown: the clean gate
    reports it."""
    try:
        changed = gitops.changed_files(ctx.workspace.cwd, base_sha)
    except GitError:
        return
    ctx.store.set_attempt_files(attempt_id, [p for p in changed if p not in ctx.left_alone])


def _keep_diff(ctx: RunContext, evidence: Path, base_sha: str | None) -> str | None:
    """Keep the attempt's changes as ``changes.patch`` in its evidence, before
    the gates run: a failed attempt's work is never committed, and the
    dashboard shows (and a person reviews) each attempt's diff from it. Git
    failing leaves no patch; the page says so. In a lane, returns the git
    tree of the work the gates are about to check (from the same throwaway
    index: one more git call), else None."""
    try:
        diff, tree = gitops.diff_and_tree(
            ctx.workspace.cwd, base_sha, leave=ctx.left_alone, tree=ctx.landing is not None
        )
    except GitError:
        return None
    (evidence / CHANGES_PATCH).write_text(diff, encoding="utf-8")
    return tree


def _unusable(
    ctx: RunContext,
    result: AttemptResult,
    known: AgentFailure,
    digest: str,
    signature: str,
) -> AttemptResult:
    """An attempt the agent could not work in. A usage limit the run may wait
    for ends it ``limited``: recorded crashed without a digest, so no policy
    counts it. Anything else stops the run (AgentUnusable)."""
    reason = f"{known.message}; {known.advice}"
    refused = None
    if known.kind == "usage_limit" and ctx.settings.wait_on_limit:
        refused = refuse_wait(known, ctx.limits)
        if refused is None and known.reset_at is not None:
            ended = finish(
                ctx,
                result,
                AttemptState.CRASHED,
                f"{known.message}; waiting until {known.reset_at.isoformat()}"[:300],
                end="limited",
            )
            return replace(ended, limit_resets_at=known.reset_at)
        reason = f"{known.message}; {refused}"
    finish(ctx, result, AttemptState.CRASHED, digest[:300], digest=digest, signature=signature)
    raise AgentUnusable(f"the agent cannot work: {reason}", ctx.run.id)


def commit_work(
    ctx: RunContext, result: AttemptResult, message: str, trailers: Mapping[str, str]
) -> AttemptResult:
    """Commit a passed attempt's work through the workspace (with commits on):
    the result with its commit, or finished failed on a git error (its
    ``message`` says it)."""
    if not ctx.settings.commit:
        return result
    ctx.progress.set(phase="commit")
    try:
        commit = ctx.workspace.commit(message, trailers, result.attempt.base_sha)
    except GitError as exc:
        failed = finish(
            ctx, result, AttemptState.FAILED, "commit failed", end="failed", digest=str(exc)
        )
        return replace(failed, message=str(exc))
    if commit is not None:
        ctx.reporter.emit(
            ev.CommitMade(
                run_id=ctx.run.id,
                item_id=result.attempt.item_id,
                attempt_id=result.attempt.id,
                sha=commit,
                message=message,
            )
        )
    return replace(result, commit=commit)


def finish_passed(
    ctx: RunContext,
    result: AttemptResult,
    name: str,
    baseline: gates_mod.TestIds | None,
    *,
    results: Sequence[gates_mod.GateResult] | None = None,
) -> tuple[AttemptResult, gates_mod.TestIds | None]:
    """Finish a committed attempt passed; the tests' baseline from now on comes
    from ``results`` (default: the attempt's own gates)."""
    base_sha = result.attempt.base_sha
    if base_sha is not None and not ctx.workspace.changed_since(base_sha):
        ctx.reporter.emit(ev.PassedWithoutChanges(run_id=ctx.run.id, item=name))
    passed = finish(ctx, result, AttemptState.PASSED, "gates passed", commit_sha=result.commit)
    for gate in result.results if results is None else results:
        if gate.tests is not None:
            baseline = gate.tests
            ctx.reporter.emit(baseline_event(result.attempt.run_id, gate.tests))
    return passed, baseline


def conclude(
    ctx: RunContext,
    result: AttemptResult,
    name: str,
    message: str,
    trailers: Mapping[str, str],
    baseline: gates_mod.TestIds | None,
) -> tuple[AttemptResult, gates_mod.TestIds | None]:
    """Commit a passed attempt's work through the workspace and finish it:
    passed (with its commit), or failed on a git error (``message`` of the
    result says it). Returns the result and the tests' baseline from now on."""
    committed = commit_work(ctx, result, message, trailers)
    if committed.state is not None:  # the commit failed
        return committed, baseline
    return finish_passed(ctx, committed, name, baseline)


def abandon(ctx: RunContext, directory: Path, base_sha: str | None, name: str) -> str:
    """Keep a given-up work item's changes as a patch and give the next one the
    tree as it was before this one (with commits on)."""
    if not ctx.settings.commit or base_sha is None:
        return "; its changes are left in the working tree (--no-commit)"
    patch = ctx.workspace.abandon(directory, base_sha, name)
    if patch is None:
        return ""  # nothing to keep and nothing to undo
    return f"; its changes were saved to {patch} and the tree reset"


def _agent_temps(root: Path) -> set[str]:
    try:
        return debris.agent_temps(gitops.untracked_files(root))
    except GitError:
        return set()


def _remove_debris(ctx: RunContext, job: Job, before: set[str]) -> None:
    """A killed agent may leave a half-done atomic write (``x.tmp.<pid>.<hex>``):
    remove those the attempt made."""
    root = ctx.workspace.cwd
    try:
        removed = debris.remove_new(root, gitops.untracked_files(root), before)
    except (GitError, OSError) as exc:
        ctx.reporter.emit(ev.TempFilesUnchecked(run_id=ctx.run.id, item=job.name, error=str(exc)))
        return
    if removed:
        ctx.reporter.emit(
            ev.UnfinishedWritesRemoved(run_id=ctx.run.id, paths=tuple(removed), item=job.name)
        )
