"""A backlog feature as a work item: attempts until the harness's checks pass, or the model
ladder is climbed to the top, or the attempts run out.

A feature is a work item like a batch and its attempts are the same attempts
(``attempt_run``) in the same loop (``item``); what differs is the policy. The same failure
``stuck_after`` times in a row on one model climbs to the next model of the
chain; at the top of the chain (or after ``max_attempts_per_feature``) the
feature is given up: skipped (moved behind the ready ones), its changes kept as
a patch, and a failure record written. Everything the policy needs is in the
store, so a build killed mid-feature continues where it was with ``--resume``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from nightcrew.agents.base import HarnessTool
from nightcrew.config import Settings
from nightcrew.core import events as ev
from nightcrew.core.states import AttemptState, ItemState
from nightcrew.engine import gates as gates_mod
from nightcrew.engine import routing
from nightcrew.engine.attempt_run import (
    AttemptResult,
    BudgetSpent,
    Job,
    abandon,
    conclude,
    over_budget_before,
)
from nightcrew.engine.context import RunContext
from nightcrew.engine.feature_prompt import feature_suffix
from nightcrew.engine.item import ItemOutcome, Start
from nightcrew.engine.landing import CONFLICT_SIGNATURE, land, rebase_left
from nightcrew.engine.policy import Climb, Decision, FeaturePolicy, failed, model_ladder
from nightcrew.engine.prompt import PreviousFailure
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import AttemptRow, ItemRow, Store
from nightcrew.store.reviews import Reviews
from nightcrew.work.backlog import Feature

# Attempts that say nothing about the feature: the person stopped the build,
# or the orchestrator died under it. They are not counted against it.
_NOT_COUNTED = {AttemptState.CANCELLED, AttemptState.OVER_BUDGET, AttemptState.RUNNING}


@dataclass(frozen=True)
class Build:
    """What every feature of a build shares beyond the run's context."""

    backlog: Backlog
    resume_session: bool
    # The tools an attempt at ``feature`` gives the agent (None: no tools).
    tools_for: Callable[[Feature, AttemptRow], Sequence[HarnessTool]] | None


def counts(attempt: AttemptRow) -> bool:
    """Whether an attempt counts against its feature: it was judged (a digest)."""
    return attempt.state not in _NOT_COUNTED and attempt.digest is not None


def policy(settings: Settings) -> FeaturePolicy:
    return FeaturePolicy(
        on_failure=settings.on_failure,
        max_attempts=settings.max_attempts_per_feature,
        stuck_after=settings.stuck_after,
    )


def _used(attempt: AttemptRow) -> str | None:
    return attempt.models[-1] if attempt.models else attempt.model


def replay(
    settings: Settings,
    feature_model: str | None,
    attempts: Sequence[AttemptRow],
    start: int,
    ladder: tuple[str | None, ...] | None = None,
) -> Climb:
    """Where a feature stands, from its item's attempts numbered ``start`` and
    up: the policy is replayed over the ones that count, so a restarted build
    goes on with the same model, the same failures in a row and the same count.
    ``ladder`` is the feature's routed chain (None: the settings' ladder)."""
    if ladder is None:
        ladder = model_ladder(settings.escalation, settings.model, feature_model)
    climb = Climb(ladder)
    for attempt in attempts:
        if attempt.number < start or not counts(attempt):
            continue
        outcome = {"timed_out": "timed_out", "crashed": "crashed"}.get(attempt.state, "failed")
        climb.previous = PreviousFailure(attempt.number, outcome, attempt.digest or "")
        decision = failed(
            policy(settings), climb, attempt.signature, attempt.number, _used(attempt)
        )
        climb.verdict = decision if decision.action != "retry" else None
    return climb


def _conflict_given(store: Store, item_id: int) -> tuple[str, ...] | None:
    """The files of the conflict the attempt before this one ended on (the
    merge queue's ``conflict:`` signature), so this attempt was given it to
    resolve; None when it was not."""
    attempts = store.attempts(item_id=item_id)
    signature = attempts[-2].signature if len(attempts) >= 2 else None
    if signature is None or not signature.startswith(CONFLICT_SIGNATURE):
        return None
    return tuple(f for f in signature.removeprefix(CONFLICT_SIGNATURE).split(",") if f)


def _job(ctx: RunContext, build: Build, feature: Feature, item_id: int) -> Job:
    workspace = ctx.workspace
    backlog = build.backlog
    built_on = backlog.require(list(feature.depends_on)) if feature.depends_on else []

    review = Reviews(ctx.store).latest_sent(feature.id)

    def suffix(number: int, previous: PreviousFailure | None) -> str:
        return feature_suffix(
            feature=feature,
            built_on=built_on,
            recent_commits=workspace.recent_commits(5),
            attempt=number,
            previous=previous,
            review=review,
        )

    def hold() -> str | None:
        now = backlog.feature(feature.id)
        if now.state == ItemState.NEEDS_INPUT:
            return f"the agent asked a person: {now.input_request}"
        if now.state != ItemState.IN_PROGRESS or now.claimed_by != ctx.run.id:
            return f"the feature was set to {now.state} during the attempt"
        if ctx.landing is not None:  # was this attempt given a conflict to resolve?
            given = _conflict_given(ctx.store, item_id)
            left = rebase_left(workspace.cwd)
            if given is not None:
                ctx.reporter.emit(
                    ev.MergeConflicted(
                        run_id=ctx.run.id,
                        lane=ctx.lane,
                        item=f"feature {feature.label}",
                        branch=ctx.landing.branch,
                        files=given,
                        resolved_by="agent" if left is None else "person",
                    )
                )
            if left is not None:
                backlog.request_input(feature.id, left)
                return f"the agent asked a person: {left}"
        return None

    tools_for = build.tools_for
    return Job(
        name=f"feature {feature.label}",
        heading=f"feature {feature.label} '{feature.name}'",
        number=feature.id,
        title=feature.name,
        evidence_root=ctx.project.run_dir(ctx.run.id) / f"feature-{feature.id}",
        suffix=suffix,
        extra_gates=tuple(
            gates_mod.acceptance_gate(i, command) for i, command in enumerate(feature.acceptance, 1)
        ),
        tools=(lambda attempt: tools_for(feature, attempt)) if tools_for else None,
        hold=hold,
    )


@dataclass(frozen=True)
class FeatureWork:
    """A feature this build has claimed (it is in progress), with its stored item."""

    build: Build
    feature: Feature
    item: ItemRow
    job: Job
    policy: FeaturePolicy
    route: routing.Route
    routing_fields: dict[str, object]  # what its decision events say of the routing

    @classmethod
    def of(cls, ctx: RunContext, build: Build, feature: Feature, item: ItemRow) -> FeatureWork:
        store = ctx.store
        if item.state in (ItemState.FAILED, ItemState.SKIPPED, ItemState.NEEDS_INPUT):
            # Sent back by a person (retry, answer): a fresh count and ladder.
            store.set_item_state(item.id, ItemState.PENDING, reason="back in the backlog")
            store.start_window(item.id)
            item = store.item(item.id)
        route = routing.for_feature(ctx.settings, feature)
        return cls(
            build,
            feature,
            item,
            _job(ctx, build, feature, item.id),
            policy(ctx.settings),
            route,
            routing.event_fields(ctx.settings, route),
        )

    def start(self, ctx: RunContext) -> Start:
        store, item = ctx.store, self.item
        store.set_item_state(item.id, ItemState.IN_PROGRESS, reason="feature started")
        route = self.route
        routing.record(
            ctx.reporter, ctx.run.id, f"feature {self.feature.label}", ctx.settings, route
        )
        climb = replay(
            ctx.settings,
            self.feature.model,
            store.attempts(item_id=item.id),
            item.window_start,
            route.models,
        )
        return Start(climb, self._base(ctx), self._resumable_session(ctx))

    def _base(self, ctx: RunContext) -> str | None:
        """The commit the feature's work started from: its window's first attempt's
        base after a restart (the agent may have committed since), else HEAD."""
        for attempt in ctx.store.attempts(item_id=self.item.id):
            if attempt.number >= self.item.window_start and attempt.base_sha:
                return attempt.base_sha
        return ctx.workspace.base()

    def _resumable_session(self, ctx: RunContext) -> str | None:
        """With ``--resume-session``: the session of the item's last attempt when
        the build stopped during it (interrupted, or crashed with the orchestrator)."""
        if not self.build.resume_session:
            return None
        attempts = ctx.store.attempts(item_id=self.item.id)
        if not attempts:
            return None
        last = attempts[-1]
        stopped = last.state == AttemptState.CANCELLED or (
            last.state == AttemptState.CRASHED and last.digest is None
        )
        return last.session_id if stopped and last.number >= self.item.window_start else None

    def before_attempt(self, ctx: RunContext) -> BudgetSpent | None:
        spent = over_budget_before(ctx, self.job, self.item)
        if spent is None:
            self.build.backlog.count_attempt(self.feature.id)
        return spent

    def put_back(
        self,
        ctx: RunContext,
        kind: Literal["interrupted", "over_budget"],
        message: str,
        result: AttemptResult | None,
    ) -> ItemOutcome:
        ctx.store.set_item_state(self.item.id, ItemState.PENDING, reason=message[:200])
        self.build.backlog.release(
            self.feature.id, ItemState.PENDING, by=ctx.run.id, reason=message[:200]
        )
        return ItemOutcome(kind, message)

    async def passed(
        self, ctx: RunContext, result: AttemptResult, baseline: gates_mod.TestIds | None
    ) -> ItemOutcome | AttemptResult:
        feature = self.feature
        trailers = {"Nightcrew-Run": ctx.run.id, "Nightcrew-Feature": str(feature.id)}
        message = f"feat({feature.category}): {feature.name}"
        if ctx.landing is not None:
            return await land(ctx, self, result, message, trailers, baseline)
        result, baseline = conclude(
            ctx, result, f"feature {feature.label}", message, trailers, baseline
        )
        if result.state != AttemptState.PASSED:
            return self.commit_failed(ctx, result, baseline)
        return self.mark_passed(ctx, result.commit, baseline)

    def commit_failed(
        self, ctx: RunContext, result: AttemptResult, baseline: gates_mod.TestIds | None
    ) -> ItemOutcome:
        failure = Decision("stop", f"commit failed: {result.message}")
        return replace(self.ended(ctx, failure, None, None), baseline=baseline)

    def mark_passed(
        self, ctx: RunContext, commit: str | None, baseline: gates_mod.TestIds | None
    ) -> ItemOutcome:
        feature, backlog = self.feature, self.build.backlog
        confirmed = backlog.judge_claims(feature.id, confirmed=True)
        ctx.store.set_item_state(
            self.item.id, ItemState.PASSED, reason="checks passed", commit_sha=commit
        )
        backlog.release(feature.id, ItemState.PASSED, by=ctx.run.id, reason="checks passed")
        ctx.reporter.emit(
            ev.ItemPassed(
                run_id=ctx.run.id, item=self.job.name, commit=commit, claim_confirmed=confirmed > 0
            )
        )
        return ItemOutcome("passed", "passed", baseline)

    def held(self, ctx: RunContext, result: AttemptResult, base_sha: str | None) -> ItemOutcome:
        """The feature left the build during its attempt: the agent asked a person
        (it waits in needs_input) or someone skipped it. The next feature gets a
        clean tree; this one's changes are kept as a patch."""
        feature = self.feature
        kept = abandon(ctx, ctx.project.run_dir(ctx.run.id), base_sha, f"feature-{feature.id}")
        if self.build.backlog.feature(feature.id).state == ItemState.NEEDS_INPUT:
            ctx.store.set_item_state(
                self.item.id, ItemState.NEEDS_INPUT, reason=result.message[:200]
            )
            message = (
                f"feature {feature.label} waits for a person ({result.message}){kept};"
                f" answer with `nightcrew backlog answer {feature.id} TEXT`"
            )
            ctx.reporter.emit(
                ev.QuestionAsked(
                    run_id=ctx.run.id,
                    feature=feature.id,
                    item=self.job.name,
                    question=result.message,
                    kept=kept,
                    title=feature.name,
                )
            )
            return ItemOutcome("needs_input", message)
        ctx.store.set_item_state(self.item.id, ItemState.SKIPPED, reason=result.message[:200])
        message = f"feature {feature.label}: {result.message}{kept}"
        ctx.reporter.emit(
            ev.ItemSkipped(
                run_id=ctx.run.id,
                item=self.job.name,
                reason=result.message,
                kept=kept,
                by_person=True,
                title=feature.name,
            )
        )
        return ItemOutcome("gave_up", message)

    def failed(self, ctx: RunContext, result: AttemptResult) -> str | None:
        refuted = self.build.backlog.judge_claims(self.feature.id, confirmed=False)
        if refuted:
            ctx.reporter.emit(ev.ClaimRefuted(run_id=ctx.run.id, item=self.job.name))
        return _used(ctx.store.attempt(result.attempt.id))

    def decision_event(self, decision: Decision, model: str | None) -> ev.DecisionMade:
        routed = self.routing_fields.get("routing")
        return ev.DecisionMade(
            action=decision.action,
            reason=decision.reason,
            model=decision.model,
            stuck=decision.stuck,
            feature=self.feature.id,
            item=self.job.name,
            routing=routed if isinstance(routed, dict) else None,
            title=self.feature.name,
        )

    def ended(
        self,
        ctx: RunContext,
        decision: Decision,
        result: AttemptResult | None,
        base_sha: str | None,
    ) -> ItemOutcome:
        if decision.action == "stop":
            return self._stop(ctx, decision, result)
        return self._give_up(ctx, decision, base_sha)

    def _record(self, ctx: RunContext, reason: str) -> None:
        item = self.item
        attempts = [a for a in ctx.store.attempts(item_id=item.id) if a.number >= item.window_start]
        cost = ctx.store.totals(attempts).cost_usd
        self.build.backlog.record_failure(
            self.feature.id,
            run_id=ctx.run.id,
            reason=reason,
            attempts=[
                {
                    "number": a.number,
                    "model": a.model,
                    "state": str(a.state),
                    "digest": (a.digest or "")[:1000] or None,
                    "signature": a.signature,
                    "cost_usd": str(a.cost_usd) if a.cost_usd is not None else None,
                }
                for a in attempts
            ],
            cost_usd=str(cost) if cost is not None else None,
            last_text=_last_text(ctx, item),
        )

    def _give_up(self, ctx: RunContext, decision: Decision, base_sha: str | None) -> ItemOutcome:
        feature = self.feature
        kept = abandon(ctx, ctx.project.run_dir(ctx.run.id), base_sha, f"feature-{feature.id}")
        self._record(ctx, decision.reason)
        ctx.store.set_item_state(
            self.item.id, ItemState.SKIPPED, reason=decision.reason, message=decision.reason
        )
        self.build.backlog.release(
            feature.id, ItemState.SKIPPED, by=ctx.run.id, reason=decision.reason
        )
        message = f"feature {feature.label} skipped: {decision.reason}{kept}"
        ctx.reporter.emit(
            ev.ItemSkipped(
                run_id=ctx.run.id,
                item=self.job.name,
                reason=decision.reason,
                kept=kept,
                title=feature.name,
            )
        )
        return ItemOutcome("gave_up", message)

    def _stop(
        self, ctx: RunContext, decision: Decision, result: AttemptResult | None
    ) -> ItemOutcome:
        feature = self.feature
        self._record(ctx, decision.reason)
        ctx.store.set_item_state(
            self.item.id, ItemState.FAILED, reason=decision.reason, message=decision.reason
        )
        self.build.backlog.release(
            feature.id, ItemState.FAILED, by=ctx.run.id, reason=decision.reason
        )
        message = f"feature {feature.label} failed: {decision.reason}"
        evidence = result.attempt.evidence_dir if result is not None else None
        if evidence:
            message += f". Evidence: {evidence}"
        ctx.reporter.emit(
            ev.ItemFailed(
                run_id=ctx.run.id,
                item=self.job.name,
                reason=decision.reason,
                evidence=str(evidence) if evidence else None,
            )
        )
        return ItemOutcome("failed", message)


def _last_text(ctx: RunContext, item: ItemRow) -> str | None:
    for attempt in reversed(ctx.store.attempts(item_id=item.id)):
        if attempt.last_text:
            return attempt.last_text
    return None
