"""One batch: attempts until the harness's gates pass or the policy gives up.

Each attempt is a fresh agent session. Afterwards the harness runs the gates,
stores their evidence and digest, and either commits (pass) or decides what
the failure means (retry with the digest, escalate, skip, stop, stuck).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from nightcrew import gitops
from nightcrew.agents.base import AgentBackend
from nightcrew.config import Settings
from nightcrew.core.states import ItemState
from nightcrew.engine import gates as gates_mod
from nightcrew.engine.attempt_run import AttemptRun, Job, abandon, commit_or_fail, run_attempt
from nightcrew.engine.limits import LimitWaiter
from nightcrew.engine.policy import BatchPolicy, Climb, batch_ladder, failed
from nightcrew.engine.prompt import PreviousFailure, variable_suffix
from nightcrew.engine.report import Progress, Reporter
from nightcrew.project import Project
from nightcrew.store.records import ItemRow, RunRow, Store
from nightcrew.usage.pricing import Pricer
from nightcrew.work.plan import Batch

OutcomeKind = Literal["passed", "failed", "skipped", "over_budget", "interrupted"]


@dataclass
class BatchContext:
    project: Project
    store: Store
    run: RunRow
    settings: Settings
    backend: AgentBackend
    reporter: Reporter
    pricer: Pricer
    prefix: str
    gate_specs: list[gates_mod.GateSpec]
    agent_env: Mapping[str, str]
    batch_count: int
    progress: Progress
    baseline: gates_mod.TestIds | None
    limits: LimitWaiter  # how a run waits for a usage limit (--wait-on-limit)
    # Paths dirty before the run (--allow-dirty): never staged, never reset.
    left_alone: frozenset[str] = field(default=frozenset(), kw_only=True)


@dataclass(frozen=True)
class BatchOutcome:
    kind: OutcomeKind
    message: str


def _last_failure(store: Store, item: ItemRow) -> PreviousFailure | None:
    """The newest judged failure of this batch, also from before a resume."""
    for attempt in reversed(store.attempts(item_id=item.id)):
        if attempt.digest:
            outcome = {"timed_out": "timed_out", "crashed": "crashed"}.get(attempt.state, "failed")
            return PreviousFailure(attempt.number, outcome, attempt.digest)
    return None


def _commit_message(batch: Batch) -> str:
    lines = [f"Batch {batch.number}: {batch.title}"]
    if batch.tasks:
        lines.append("")
        lines += [f"- Task {t.number}: {t.title}" for t in batch.tasks]
    return "\n".join(lines)


def run_batch(ctx: BatchContext, batch: Batch, item: ItemRow) -> BatchOutcome:
    store, settings, root = ctx.store, ctx.settings, ctx.project.root
    if item.state != ItemState.PENDING:  # a failed or skipped batch, run again on resume
        store.set_item_state(item.id, ItemState.PENDING, reason="runs again")
    store.set_item_state(item.id, ItemState.IN_PROGRESS, reason="batch started")
    base_sha = gitops.head_sha(root)
    climb = Climb(batch_ladder(settings.model, settings.escalate_model))
    climb.previous = _last_failure(store, item)
    policy = BatchPolicy(settings.on_failure, settings.max_retries, critical=batch.critical)
    batch_dir = ctx.project.run_dir(ctx.run.id) / f"batch-{batch.number}"

    def suffix(number: int, previous: PreviousFailure | None) -> str:
        return variable_suffix(
            project_root=root,
            batch_number=batch.number,
            batch_count=ctx.batch_count,
            title=batch.title,
            body=batch.body,
            context_refs=batch.context_refs,
            recent_commits=gitops.recent_commits(root, 5),
            attempt=number,
            previous=previous,
        )

    # With nothing else to judge the work, an attempt that changed no file fails.
    must_change = not batch.no_change_ok and not gates_mod.judges_the_work(ctx.gate_specs)
    job = Job(
        name=f"batch {batch.number}",
        heading=f"batch {batch.number}/{ctx.batch_count} '{batch.title}'",
        number=batch.number,
        title=batch.title,
        evidence_root=batch_dir,
        suffix=suffix,
        extra_gates=(gates_mod.changes_gate([ctx.run.source_path]),) if must_change else (),
    )
    while True:
        model = climb.model
        run = run_attempt(ctx, job, item, model=model, previous=climb.previous, base_sha=base_sha)
        if isinstance(run, str):
            store.set_item_state(item.id, ItemState.PENDING, reason="budget exceeded")
            return BatchOutcome("over_budget", run)
        if run.end == "interrupted":
            store.set_item_state(item.id, ItemState.PENDING, reason="run interrupted")
            return BatchOutcome("interrupted", "interrupted")
        if run.end == "over_budget":
            store.set_item_state(item.id, ItemState.PENDING, reason="budget exceeded")
            return BatchOutcome("over_budget", run.message)
        if run.end == "passed":
            return _pass(ctx, batch, item, run)
        climb.previous = run.previous
        decision = failed(policy, climb, run.signature, run.number, model)
        store.event(
            ctx.run.id,
            "decision",
            {
                "action": decision.action,
                "reason": decision.reason,
                "model": decision.model,
                "stuck": decision.stuck,
            },
            attempt_id=run.attempt.id,
        )
        if decision.action == "retry":
            if decision.model and decision.model != model:
                ctx.reporter.note(f"batch {batch.number}: escalating to {decision.model}")
            ctx.reporter.note(f"batch {batch.number}: {decision.reason}")
            continue
        message = f"batch {batch.number} failed: {decision.reason}"
        if decision.action == "skip":
            message += abandon(ctx, batch_dir, base_sha, "abandoned")
            store.set_item_state(
                item.id, ItemState.FAILED, reason=decision.reason, message=decision.reason
            )
            ctx.reporter.note(message, "warn")
            return BatchOutcome("skipped", message)
        store.set_item_state(
            item.id, ItemState.FAILED, reason=decision.reason, message=decision.reason
        )
        ctx.reporter.note(message, "error")
        evidence = batch_dir / f"attempt-{run.number}"
        return BatchOutcome("failed", message + f". Evidence: {evidence}")


def _pass(ctx: BatchContext, batch: Batch, item: ItemRow, run: AttemptRun) -> BatchOutcome:
    trailers = {"Nightcrew-Run": ctx.run.id, "Nightcrew-Batch": str(batch.number)}
    commit, error = commit_or_fail(
        ctx, run, f"batch {batch.number}", _commit_message(batch), trailers
    )
    if error is not None:
        ctx.store.set_item_state(item.id, ItemState.FAILED, reason="commit failed", message=error)
        return BatchOutcome("failed", f"batch {batch.number}: commit failed: {error}")
    ctx.store.set_item_state(item.id, ItemState.PASSED, reason="gates passed", commit_sha=commit)
    short = commit[:10] if commit else "no commit"
    ctx.reporter.note(f"batch {batch.number} passed ({short})")
    return BatchOutcome("passed", "passed")
