"""One work item, whatever its kind: attempts until the harness's checks pass
or the item's policy ends it, then commit, abandon, or wait for a person.

Plan batches, backlog features and the initializer's spec all go through
:func:`run_item`; what differs between them (the prompt, the policy, what a
pass or a give-up writes) is their :class:`Work`. The loop owns no state of the
run: the tests' baseline comes in and goes out with the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, Protocol

from nightcrew.core.events import DecisionMade
from nightcrew.engine import gates as gates_mod
from nightcrew.engine.attempt_run import AttemptResult, BudgetSpent, Job, run_attempt
from nightcrew.engine.context import RunContext
from nightcrew.engine.policy import Climb, Decision, Policy, failed
from nightcrew.store.records import ItemRow

OutcomeKind = Literal[
    "passed", "failed", "skipped", "gave_up", "needs_input", "interrupted", "over_budget"
]
# Outcomes after which a run claims nothing more.
STOPS: frozenset[OutcomeKind] = frozenset({"failed", "interrupted", "over_budget"})


@dataclass(frozen=True)
class ItemOutcome:
    kind: OutcomeKind
    message: str
    baseline: gates_mod.TestIds | None = None  # the tests' baseline after this item
    key: str = ""  # which item: the batch number or the feature id


@dataclass(frozen=True)
class Start:
    """Where an item's work begins: its ladder so far, its base commit, and a
    session to resume (``--resume-session``)."""

    climb: Climb
    base_sha: str | None
    session: str | None = None


class Work(Protocol):
    """What one kind of work item does at each step of :func:`run_item`."""

    @property
    def job(self) -> Job: ...

    @property
    def item(self) -> ItemRow: ...

    @property
    def policy(self) -> Policy: ...

    def start(self, ctx: RunContext) -> Start: ...

    def before_attempt(self, ctx: RunContext) -> BudgetSpent | None: ...

    def put_back(
        self,
        ctx: RunContext,
        kind: Literal["interrupted", "over_budget"],
        message: str,
        result: AttemptResult | None,
    ) -> ItemOutcome:
        """Stopped short (``result`` is None when no attempt started): back to pending."""
        ...

    def held(self, ctx: RunContext, result: AttemptResult, base_sha: str | None) -> ItemOutcome: ...

    async def passed(
        self, ctx: RunContext, result: AttemptResult, baseline: gates_mod.TestIds | None
    ) -> ItemOutcome | AttemptResult:
        """Commit (and land) passed work. An :class:`AttemptResult` back means the
        work failed after all (its merged result did): the policy goes on with it."""
        ...

    def failed(self, ctx: RunContext, result: AttemptResult) -> str | None:
        """Note a judged failure; return the model the attempt really ran on."""
        ...

    def decision_event(self, decision: Decision, model: str | None) -> DecisionMade | None:
        """The decision as an event (``model``: the attempt's), or None."""
        ...

    def ended(
        self,
        ctx: RunContext,
        decision: Decision,
        result: AttemptResult | None,
        base_sha: str | None,
    ) -> ItemOutcome: ...


async def run_item(ctx: RunContext, work: Work, baseline: gates_mod.TestIds | None) -> ItemOutcome:
    """Work on one item until its policy ends it; the outcome carries the baseline."""
    outcome = await _attempts(ctx, work, baseline)
    if outcome.baseline is None and outcome.kind != "passed":
        outcome = replace(outcome, baseline=baseline)
    return replace(outcome, key=work.item.key)


async def _may_start(ctx: RunContext) -> bool:
    """Before each attempt (the first, a retry): wait while a person has the
    run paused, and hold the lane's agent slot (given back while the last
    attempt's work was in the merge queue). False: the run is stopping."""
    controls = ctx.controls
    if controls is None:
        if ctx.slot is not None:
            await ctx.slot.take()
        return True
    while await controls.hold():
        if ctx.slot is not None:
            await ctx.slot.take()
        if not controls.blocked():  # no pause came in while it waited for the slot
            return True
    return False


async def _attempts(ctx: RunContext, work: Work, baseline: gates_mod.TestIds | None) -> ItemOutcome:
    start = work.start(ctx)
    climb = start.climb
    if climb.verdict is not None:  # decided before a crash, not carried out
        return work.ended(ctx, climb.verdict, None, start.base_sha)
    session = start.session
    while True:
        if not await _may_start(ctx):  # a person stopped the run: this item waits for --resume
            stopping = ctx.controls.stopping if ctx.controls is not None else None
            return work.put_back(ctx, "interrupted", stopping or "interrupted", None)
        spent = work.before_attempt(ctx)
        if spent is not None:
            return work.put_back(ctx, "over_budget", spent.message, None)
        model = climb.model
        result = await run_attempt(
            ctx,
            work.job,
            work.item,
            model=model,
            previous=climb.previous,
            base_sha=start.base_sha,
            baseline=baseline,
            resume_session_id=session,
        )
        session = None
        if isinstance(result, BudgetSpent):
            return work.put_back(ctx, "over_budget", result.message, None)
        if result.end == "interrupted":
            return work.put_back(ctx, "interrupted", "interrupted", result)
        if result.end == "over_budget":
            return work.put_back(ctx, "over_budget", result.message, result)
        if result.end == "held":
            return work.held(ctx, result, start.base_sha)
        if result.end == "passed":
            done = await work.passed(ctx, result, baseline)
            if isinstance(done, ItemOutcome):
                return done
            result = done
            if result.base_after is not None:  # the next attempt starts from the merged result
                start = replace(start, base_sha=result.base_after)
        used = work.failed(ctx, result)
        climb.previous = result.previous
        decision = failed(work.policy, climb, result.signature, result.number, used)
        made = work.decision_event(decision, model)
        if made is not None:
            ctx.reporter.emit(replace(made, run_id=ctx.run.id, attempt_id=result.attempt.id))
        if decision.action == "retry":
            continue
        return work.ended(ctx, decision, result, start.base_sha)
