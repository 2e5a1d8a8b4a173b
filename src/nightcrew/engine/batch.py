"""A plan's batch as a work item: attempts until the harness's gates pass or
the policy gives up.

Each attempt is a fresh agent session. Afterwards the harness runs the gates,
stores their evidence and digest, and either commits (pass) or decides what
the failure means (retry with the digest, escalate, skip, stop, stuck). The
loop is :func:`engine.item.run_item`; this module says what is particular to a
batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nightcrew.core import events as ev
from nightcrew.core.states import AttemptState, ItemState
from nightcrew.engine import gates as gates_mod
from nightcrew.engine import routing
from nightcrew.engine.attempt_run import AttemptResult, BudgetSpent, Job, abandon, conclude
from nightcrew.engine.context import RunContext
from nightcrew.engine.item import ItemOutcome, Start
from nightcrew.engine.policy import BatchPolicy, Climb, Decision, batch_ladder
from nightcrew.engine.prompt import PreviousFailure, variable_suffix
from nightcrew.store.records import ItemRow, Store
from nightcrew.work.plan import Batch


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


@dataclass(frozen=True)
class BatchWork:
    """One batch of the plan, with its stored item."""

    batch: Batch
    item: ItemRow
    job: Job
    policy: BatchPolicy
    route: routing.Route
    routing_fields: dict[str, object]  # what its decision events say of the routing

    @classmethod
    def of(cls, ctx: RunContext, batch: Batch, item: ItemRow) -> BatchWork:
        workspace = ctx.workspace
        root = workspace.cwd  # the files as the run sees them (a worktree's, with --worktree)

        def suffix(number: int, previous: PreviousFailure | None) -> str:
            return variable_suffix(
                project_root=root,
                batch_number=batch.number,
                batch_count=ctx.batch_count,
                title=batch.title,
                body=batch.body,
                context_refs=batch.context_refs,
                recent_commits=workspace.recent_commits(5),
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
            evidence_root=ctx.project.run_dir(ctx.run.id) / f"batch-{batch.number}",
            suffix=suffix,
            extra_gates=(gates_mod.changes_gate([ctx.run.source_path]),) if must_change else (),
        )
        route = routing.for_batch(ctx.settings, batch)
        policy = BatchPolicy(
            ctx.settings.on_failure,
            ctx.settings.max_retries,
            critical=batch.critical,
            routed=route.rule is not None,
        )
        return cls(batch, item, job, policy, route, routing.event_fields(ctx.settings, route))

    def start(self, ctx: RunContext) -> Start:
        store, item = ctx.store, self.item
        if item.state != ItemState.PENDING:  # a failed or skipped batch, run again on resume
            store.set_item_state(item.id, ItemState.PENDING, reason="runs again")
        store.set_item_state(item.id, ItemState.IN_PROGRESS, reason="batch started")
        base_sha = ctx.workspace.base()
        routing.record(
            ctx.reporter, ctx.run.id, f"batch {self.batch.number}", ctx.settings, self.route
        )
        if self.route.rule is None:
            ladder = batch_ladder(ctx.settings.model, ctx.settings.escalate_model)
        else:
            ladder = self.route.models
        climb = Climb(ladder)
        climb.previous = _last_failure(store, item)
        return Start(climb, base_sha)

    def before_attempt(self, ctx: RunContext) -> BudgetSpent | None:
        return None  # every attempt checks the budgets before it starts

    def put_back(
        self,
        ctx: RunContext,
        kind: Literal["interrupted", "over_budget"],
        message: str,
        result: AttemptResult | None,
    ) -> ItemOutcome:
        reason = "run interrupted" if kind == "interrupted" else "budget exceeded"
        ctx.store.set_item_state(self.item.id, ItemState.PENDING, reason=reason)
        return ItemOutcome(kind, message)

    def held(self, ctx: RunContext, result: AttemptResult, base_sha: str | None) -> ItemOutcome:
        raise AssertionError("a batch is never held")  # its Job has no hold

    async def passed(
        self, ctx: RunContext, result: AttemptResult, baseline: gates_mod.TestIds | None
    ) -> ItemOutcome:
        batch = self.batch
        trailers = {"Nightcrew-Run": ctx.run.id, "Nightcrew-Batch": str(batch.number)}
        result, baseline = conclude(
            ctx, result, f"batch {batch.number}", _commit_message(batch), trailers, baseline
        )
        if result.state != AttemptState.PASSED:
            error = result.message
            ctx.store.set_item_state(
                self.item.id, ItemState.FAILED, reason="commit failed", message=error
            )
            return ItemOutcome("failed", f"batch {batch.number}: commit failed: {error}", baseline)
        commit = result.commit
        ctx.store.set_item_state(
            self.item.id, ItemState.PASSED, reason="gates passed", commit_sha=commit
        )
        ctx.reporter.emit(ev.ItemPassed(run_id=ctx.run.id, item=self.job.name, commit=commit))
        return ItemOutcome("passed", "passed", baseline)

    def failed(self, ctx: RunContext, result: AttemptResult) -> str | None:
        return result.model

    def decision_event(self, decision: Decision, model: str | None) -> ev.DecisionMade:
        routed = self.routing_fields.get("routing")
        return ev.DecisionMade(
            action=decision.action,
            reason=decision.reason,
            model=decision.model,
            stuck=decision.stuck,
            item=self.job.name,
            escalated=bool(decision.model) and decision.model != model,
            routing=routed if isinstance(routed, dict) else None,
            title=self.batch.title,
        )

    def ended(
        self,
        ctx: RunContext,
        decision: Decision,
        result: AttemptResult | None,
        base_sha: str | None,
    ) -> ItemOutcome:
        store, item = ctx.store, self.item
        message = f"batch {self.batch.number} failed: {decision.reason}"
        if decision.action == "skip":
            kept = abandon(ctx, self.job.evidence_root, base_sha, "abandoned")
            message += kept
            store.set_item_state(
                item.id, ItemState.FAILED, reason=decision.reason, message=decision.reason
            )
            ctx.reporter.emit(
                ev.ItemSkipped(
                    run_id=ctx.run.id,
                    item=self.job.name,
                    reason=decision.reason,
                    kept=kept,
                    failed=True,
                    title=self.batch.title,
                )
            )
            return ItemOutcome("skipped", message)
        store.set_item_state(
            item.id, ItemState.FAILED, reason=decision.reason, message=decision.reason
        )
        ctx.reporter.emit(
            ev.ItemFailed(run_id=ctx.run.id, item=self.job.name, reason=decision.reason)
        )
        number = result.number if result is not None else 0
        evidence = self.job.evidence_root / f"attempt-{number}"
        return ItemOutcome("failed", message + f". Evidence: {evidence}")
