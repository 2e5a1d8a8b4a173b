"""One attempt at a work item, a plan's batch or a backlog's feature.

An attempt checks the budgets, writes the prompt, runs one fresh agent session,
records its money, and has the harness run the gates. It does not decide what
the result means: ``batch`` and ``feature`` do that (commit, retry, escalate,
give up), each with its own policy.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from nightcrew import debris, gitops
from nightcrew.agents.base import AgentFailure, AgentRequest, HarnessTool
from nightcrew.core.errors import AgentUnusable, GitError
from nightcrew.core.states import AttemptState
from nightcrew.engine import gates as gates_mod
from nightcrew.engine import signals as stop_signals
from nightcrew.engine.attempt import drive_agent
from nightcrew.engine.baseline import record_baseline
from nightcrew.engine.budget import BudgetGuard
from nightcrew.engine.digest import failure_signature, make_digest
from nightcrew.engine.ledger import BudgetLedger
from nightcrew.engine.limits import MAX_WAITS, local_time, refuse_wait
from nightcrew.engine.prompt import PreviousFailure, Prompt
from nightcrew.engine.recording import EXCERPT, Recorder, record_final
from nightcrew.store.records import AttemptRow, ItemRow, Store
from nightcrew.toolpolicy import ToolPolicy

if TYPE_CHECKING:
    from nightcrew.engine.batch import BatchContext

# "limited" stays inside run_attempt: the run waits for the usage limit and tries again.
AttemptEnd = Literal["passed", "failed", "stopped", "interrupted", "over_budget", "limited"]


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


@dataclass
class AttemptRun:
    """How an attempt ended. A ``passed`` attempt is left running in the store:
    the caller commits, then finishes it."""

    end: AttemptEnd
    attempt: AttemptRow
    number: int
    model: str | None
    message: str = ""
    results: list[gates_mod.GateResult] = field(default_factory=list)
    gate_seconds: float = 0.0
    common: dict[str, object] = field(default_factory=dict)
    digest: str | None = None
    signature: str | None = None
    previous: PreviousFailure | None = None  # what the next attempt is told
    last_text: str | None = None
    session_id: str | None = None
    limit_resets_at: datetime | None = None  # end "limited": when to try again


def run_ledger(ctx: BatchContext) -> BudgetLedger:
    """The run's budget ledger, seeded from the store the first time it is asked for."""
    if ctx.ledger is None:
        ctx.ledger = BudgetLedger.seed(ctx.store, ctx.run.id)
    return ctx.ledger


def budget_guard(ctx: BatchContext, job: Job, item: ItemRow) -> BudgetGuard:
    return BudgetGuard.of(
        run_ledger(ctx),
        ctx.settings,
        item_id=item.id,
        item_name=job.name,
        store=ctx.store,
        run_id=ctx.run.id,
        reporter=ctx.reporter,
    )


def over_budget_before(ctx: BatchContext, job: Job, item: ItemRow) -> str | None:
    """The message of a budget already spent before an attempt starts, or None."""
    guard = budget_guard(ctx, job, item)
    guard.check()
    return guard.message() if guard.exceeded() is not None else None


def run_attempt(
    ctx: BatchContext,
    job: Job,
    item: ItemRow,
    *,
    model: str | None,
    previous: PreviousFailure | None,
    base_sha: str | None,
    resume_session_id: str | None = None,
) -> AttemptRun | str:
    """Run one attempt; a string instead means a budget was already spent (the
    message says which) and no attempt was started. With ``--wait-on-limit``
    an attempt stopped by a usage limit is followed, once the limit resets, by
    another one: the caller sees only the attempt that was judged."""
    waits = 0
    while True:
        run = _attempt_once(
            ctx,
            job,
            item,
            model=model,
            previous=previous,
            base_sha=base_sha,
            resume_session_id=resume_session_id,
        )
        if isinstance(run, str) or run.end != "limited" or run.limit_resets_at is None:
            return run
        until = run.limit_resets_at
        if waits == MAX_WAITS:  # the limit did not lift when it said it would: never spin
            raise AgentUnusable(
                f"the agent cannot work: the usage limit was still reached after {waits}"
                " waits for its reset",
                ctx.run.id,
            )
        waits += 1
        ctx.reporter.note(
            f"usage limit reached: waiting until {local_time(until)} (local) — Ctrl-C to stop",
            "warn",
        )
        ctx.store.event(
            ctx.run.id,
            "usage_limit_wait",
            {"until": until.isoformat(), "item": job.name},
            attempt_id=run.attempt.id,
        )
        ctx.limits.wait_until(until)
        ctx.reporter.note(f"usage limit reset: {job.name} tries again")
        resume_session_id = None


def _attempt_once(
    ctx: BatchContext,
    job: Job,
    item: ItemRow,
    *,
    model: str | None,
    previous: PreviousFailure | None,
    base_sha: str | None,
    resume_session_id: str | None = None,
) -> AttemptRun | str:
    store, settings, root = ctx.store, ctx.settings, ctx.project.root
    guard = budget_guard(ctx, job, item)
    guard.check()
    if guard.exceeded() is not None:
        return guard.message()
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
    )
    progress = ctx.progress
    progress.batch_number, progress.title = job.number, job.title
    progress.attempt, progress.model, progress.phase = number, model, "agent"
    progress.started_at, progress.current_tool = time.monotonic(), None
    ctx.reporter.note(
        f"{job.heading}: attempt {number}"
        + (f" with {model}" if model else "")
        + (f" (resuming session {resume_session_id})" if resume_session_id else "")
    )
    item_spent = run_ledger(ctx).item_spent(item.id)
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
    outcome = asyncio.run(
        drive_agent(
            ctx.backend,
            request,
            timeout_s=settings.attempt_timeout,
            pricer=ctx.pricer,
            budget_left_usd=left,
            on_event=Recorder(ctx, attempt, item_spent, guard),
        )
    )
    cost, source = record_final(ctx, attempt, outcome, ctx.pricer)
    run_ledger(ctx).settle(attempt.id, item.id, cost)
    if outcome.end != "finished":
        _remove_debris(ctx, job, temps_before)
    common: dict[str, object] = dict(
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
    run = AttemptRun(
        "failed",
        attempt,
        number,
        model,
        common=common,
        last_text=outcome.last_text,
        session_id=outcome.session_id,
    )
    if outcome.end == "cancelled":
        store.finish_attempt(
            attempt.id, AttemptState.CANCELLED, reason=stop_signals.reason(), **common
        )
        run.end = "interrupted"
        return run
    if outcome.end == "over_budget":
        store.finish_attempt(
            attempt.id,
            AttemptState.OVER_BUDGET,
            reason="the budget ran out during this attempt",
            **common,
        )
        run.end, run.message = "over_budget", budget_guard(ctx, job, item).message()
        return run

    if outcome.end in ("timed_out", "crashed"):
        state = AttemptState.TIMED_OUT if outcome.end == "timed_out" else AttemptState.CRASHED
        if outcome.end == "timed_out":
            digest = (
                f"The agent did not finish within {settings.attempt_timeout:g} s and"
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
            return _unusable(ctx, attempt, known, run, common, digest, signature)
        store.finish_attempt(
            attempt.id, state, reason=digest[:300], digest=digest, signature=signature, **common
        )
        ctx.reporter.note(f"{job.name} attempt {number}: {digest}", "warn")
        run.digest, run.signature = digest, signature
        run.previous = PreviousFailure(number, outcome.end, digest)
        return run

    held = job.hold() if job.hold is not None else None
    if held is not None:
        store.finish_attempt(attempt.id, AttemptState.FAILED, reason=held[:300], **common)
        run.end, run.message = "stopped", held
        return run

    progress.phase = "gates"
    ctx.reporter.progress(progress)
    started = time.monotonic()
    results = gates_mod.run_gates(
        [*job.extra_gates, *ctx.gate_specs],
        root=root,
        evidence_dir=evidence,
        baseline=ctx.baseline,
        base_sha=base_sha,
        timeout_s=settings.gate_timeout,
        left_alone=ctx.left_alone,
    )
    run.gate_seconds = time.monotonic() - started
    run.results = results
    for result in results:
        record_gate(store, attempt.id, result)
        mark = "passed" if result.passed else "FAILED"
        reason = "" if result.passed else gate_reason(result)
        ctx.reporter.note(
            f"  {gate_label(result.name)}: {mark}{gate_detail(result)}{reason}",
            "info" if result.passed else "warn",
        )
    if gates_mod.gates_passed(results):
        run.end = "passed"
        return run
    gate_digest = make_digest(results)
    gate_signature = failure_signature(results)
    store.finish_attempt(
        attempt.id,
        AttemptState.FAILED,
        reason="gates failed",
        digest=gate_digest,
        signature=gate_signature,
        gate_seconds=run.gate_seconds,
        **common,
    )
    run.digest, run.signature = gate_digest, gate_signature
    run.previous = PreviousFailure(number, "failed", gate_digest)
    return run


def _unusable(
    ctx: BatchContext,
    attempt: AttemptRow,
    known: AgentFailure,
    run: AttemptRun,
    common: dict[str, object],
    digest: str,
    signature: str,
) -> AttemptRun:
    """An attempt the agent could not work in. A usage limit the run may wait
    for ends it ``limited``: recorded crashed without a digest, so no policy
    counts it. Anything else stops the run (AgentUnusable)."""
    reason = f"{known.message}; {known.advice}"
    refused = None
    if known.kind == "usage_limit" and ctx.settings.wait_on_limit:
        refused = refuse_wait(known, ctx.limits)
        if refused is None and known.reset_at is not None:
            ctx.store.finish_attempt(
                attempt.id,
                AttemptState.CRASHED,
                reason=f"{known.message}; waiting until {known.reset_at.isoformat()}"[:300],
                **common,
            )
            run.end, run.limit_resets_at = "limited", known.reset_at
            return run
        reason = f"{known.message}; {refused}"
    ctx.store.finish_attempt(
        attempt.id,
        AttemptState.CRASHED,
        reason=digest[:300],
        digest=digest,
        signature=signature,
        **common,
    )
    raise AgentUnusable(f"the agent cannot work: {reason}", ctx.run.id)


def commit_or_fail(
    ctx: BatchContext,
    run: AttemptRun,
    name: str,
    message: str,
    trailers: Mapping[str, str],
) -> tuple[str | None, str | None]:
    """Commit a passed attempt's work: (commit sha or None, error or None). On
    success the attempt is finished as passed; on a git error as failed."""
    store, root = ctx.store, ctx.project.root
    base_sha = run.attempt.base_sha
    commit: str | None = None
    if ctx.settings.commit:
        ctx.progress.phase = "commit"
        try:
            commit = gitops.commit_all(root, message, dict(trailers), leave=ctx.left_alone)
        except GitError as exc:
            store.finish_attempt(
                run.attempt.id,
                AttemptState.FAILED,
                reason="commit failed",
                digest=str(exc),
                gate_seconds=run.gate_seconds,
                **run.common,
            )
            return None, str(exc)
        if commit is None:
            head = gitops.head_sha(root)
            commit = head if head != base_sha else None
    if base_sha is not None and not gitops.changed_files(root, base_sha):
        ctx.reporter.note(f"{name} passed without changing any file", "warn")
    store.finish_attempt(
        run.attempt.id,
        AttemptState.PASSED,
        reason="gates passed",
        commit_sha=commit,
        gate_seconds=run.gate_seconds,
        **run.common,
    )
    for result in run.results:
        if result.tests is not None:
            ctx.baseline = result.tests
            record_baseline(ctx.store, run.attempt.run_id, result.tests)
    return commit, None


def abandon(ctx: BatchContext, directory: Path, base_sha: str | None, name: str) -> str:
    """Keep a given-up work item's changes as a patch and give the next one the
    tree as it was before this one (with commits on)."""
    if not ctx.settings.commit or base_sha is None:
        return "; its changes are left in the working tree (--no-commit)"
    diff = gitops.diff_patch(ctx.project.root, base_sha, leave=ctx.left_alone)
    if not diff.strip() and gitops.head_sha(ctx.project.root) == base_sha:
        return ""  # nothing to keep and nothing to undo
    directory.mkdir(parents=True, exist_ok=True)
    patch = directory / f"{name}.patch"
    patch.write_text(diff, encoding="utf-8")
    gitops.reset_leaving(ctx.project.root, base_sha, ctx.left_alone)
    return f"; its changes were saved to {patch} and the tree reset"


def _agent_temps(root: Path) -> set[str]:
    try:
        return debris.agent_temps(gitops.untracked_files(root))
    except GitError:
        return set()


def _remove_debris(ctx: BatchContext, job: Job, before: set[str]) -> None:
    """A killed agent may leave a half-done atomic write (``x.tmp.<pid>.<hex>``):
    remove those the attempt made."""
    root = ctx.project.root
    try:
        removed = debris.remove_new(root, gitops.untracked_files(root), before)
    except (GitError, OSError) as exc:
        ctx.reporter.note(f"{job.name}: could not look for the agent's temp files: {exc}", "warn")
        return
    if removed:
        ctx.reporter.note(
            f"{job.name}: removed the stopped agent's unfinished write(s): {', '.join(removed)}",
            "warn",
        )


def record_gate(store: Store, attempt_id: int, result: gates_mod.GateResult) -> None:
    store.record_gate(
        attempt_id,
        name=result.name,
        command=result.command,
        passed=result.passed,
        duration_s=result.duration_s,
        exit_code=result.exit_code,
        timed_out=result.timed_out,
        tests_passed=result.tests_passed,
        tests_failed=result.tests_failed,
        failed_ids=sorted(result.tests.failed) if result.tests else [],
        regressions=result.regressions,
        output_path=str(result.output_path) if result.output_path else None,
        digest=result.digest,
    )


def gate_detail(result: gates_mod.GateResult) -> str:
    parts = []
    if result.tests_passed is not None:
        parts.append(f"{result.tests_passed} passed")
    if result.tests_failed:
        parts.append(f"{result.tests_failed} failed")
    if result.regressions:
        parts.append(f"{len(result.regressions)} regression(s)")
    if result.timed_out:
        parts.append("timed out")
    return f" ({', '.join(parts)})" if parts else ""


def gate_label(name: str) -> str:
    return name if name.startswith(("gate ", "acceptance ")) else f"gate {name}"


SHOWN_IDS = 3


def gate_reason(result: gates_mod.GateResult) -> str:
    """The first telling line of a failed gate's digest, for the console; a
    heading such as "failing tests:" with the first ids listed under it."""
    lines = result.digest.splitlines()
    for index, line in enumerate(lines):
        text = line.strip()
        if not text or text.startswith(("full output:", "summary:", "[")):
            continue
        if text.endswith(":"):
            text += _listed_ids(lines[index + 1 :])
        return f" — {text[:240]}"
    return ""


def _listed_ids(lines: Sequence[str]) -> str:
    """`` a, b, c (+N more)`` from a digest's ``  - id`` lines."""
    ids: list[str] = []
    more = 0
    for line in lines:
        if line.startswith("  - "):
            ids.append(line[4:].strip())
        elif line.startswith("  … and ") and line.rstrip().endswith(" more"):
            more += int(line.split()[2])
        else:
            break
    if not ids:
        return ""
    extra = len(ids) - SHOWN_IDS + more
    return " " + ", ".join(ids[:SHOWN_IDS]) + (f" (+{extra} more)" if extra > 0 else "")
