"""One backlog feature: attempts until the harness's checks pass, or the model
ladder is climbed to the top, or the attempts run out.

A feature is a work item like a batch and its attempts are the same attempts
(``attempt_run``); what differs is the policy. The same failure
``stuck_after`` times in a row on one model climbs to the next model of the
chain; at the top of the chain (or after ``max_attempts_per_feature``) the
feature is given up: skipped (moved behind the ready ones), its changes kept as
a patch, and a failure record written. Everything the policy needs is in the
store, so a build killed mid-feature continues where it was with ``--resume``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from nightcrew import gitops
from nightcrew.agents.base import HarnessTool
from nightcrew.config import Settings
from nightcrew.core.states import AttemptState, ItemState
from nightcrew.engine import gates as gates_mod
from nightcrew.engine.attempt_run import (
    AttemptRun,
    Job,
    abandon,
    commit_or_fail,
    over_budget_before,
    run_attempt,
)
from nightcrew.engine.batch import BatchContext
from nightcrew.engine.feature_prompt import feature_suffix
from nightcrew.engine.policy import Climb, Decision, FeaturePolicy, failed, model_ladder
from nightcrew.engine.prompt import PreviousFailure
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import AttemptRow, ItemRow
from nightcrew.work.backlog import Feature

FeatureEnd = Literal["passed", "gave_up", "failed", "needs_input", "interrupted", "over_budget"]

# Attempts that say nothing about the feature: the person stopped the build,
# or the orchestrator died under it. They are not counted against it.
_NOT_COUNTED = {AttemptState.CANCELLED, AttemptState.OVER_BUDGET, AttemptState.RUNNING}


@dataclass
class BuildContext(BatchContext):
    backlog: Backlog
    resume_session: bool
    # The tools an attempt at ``feature`` gives the agent (None: no tools).
    tools_for: Callable[[Feature, AttemptRow], Sequence[HarnessTool]] | None


@dataclass(frozen=True)
class FeatureOutcome:
    kind: FeatureEnd
    message: str


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
    settings: Settings, feature_model: str | None, attempts: Sequence[AttemptRow], start: int
) -> Climb:
    """Where a feature stands, from its item's attempts numbered ``start`` and
    up: the policy is replayed over the ones that count, so a restarted build
    goes on with the same model, the same failures in a row and the same count."""
    climb = Climb(model_ladder(settings.escalation, settings.model, feature_model))
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


def _resumable_session(ctx: BuildContext, item: ItemRow) -> str | None:
    """With ``--resume-session``: the session of the item's last attempt when
    the build stopped during it (interrupted, or crashed with the orchestrator)."""
    if not ctx.resume_session:
        return None
    attempts = ctx.store.attempts(item_id=item.id)
    if not attempts:
        return None
    last = attempts[-1]
    stopped = last.state == AttemptState.CANCELLED or (
        last.state == AttemptState.CRASHED and last.digest is None
    )
    return last.session_id if stopped and last.number >= item.window_start else None


def _job(ctx: BuildContext, feature: Feature) -> Job:
    root = ctx.project.root
    built_on = ctx.backlog.require(list(feature.depends_on)) if feature.depends_on else []

    def suffix(number: int, previous: PreviousFailure | None) -> str:
        return feature_suffix(
            feature=feature,
            built_on=built_on,
            recent_commits=gitops.recent_commits(root, 5),
            attempt=number,
            previous=previous,
        )

    def hold() -> str | None:
        now = ctx.backlog.feature(feature.id)
        if now.state == ItemState.NEEDS_INPUT:
            return f"the agent asked a person: {now.input_request}"
        if now.state != ItemState.IN_PROGRESS or now.claimed_by != ctx.run.id:
            return f"the feature was set to {now.state} during the attempt"
        return None

    tools_for = ctx.tools_for
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


def _base(ctx: BuildContext, item: ItemRow) -> str | None:
    """The commit the feature's work started from: its window's first attempt's
    base after a restart (the agent may have committed since), else HEAD."""
    for attempt in ctx.store.attempts(item_id=item.id):
        if attempt.number >= item.window_start and attempt.base_sha:
            return attempt.base_sha
    return gitops.head_sha(ctx.project.root)


def run_feature(ctx: BuildContext, feature: Feature, item: ItemRow) -> FeatureOutcome:
    """Work on ``feature``, which this build has claimed (it is in progress)."""
    store, backlog, run_id = ctx.store, ctx.backlog, ctx.run.id
    if item.state in (ItemState.FAILED, ItemState.SKIPPED, ItemState.NEEDS_INPUT):
        # Sent back by a person (retry, answer): a fresh count and ladder.
        store.set_item_state(item.id, ItemState.PENDING, reason="back in the backlog")
        store.start_window(item.id)
        item = store.item(item.id)
    store.set_item_state(item.id, ItemState.IN_PROGRESS, reason="feature started")
    climb = replay(
        ctx.settings, feature.model, ctx.store.attempts(item_id=item.id), item.window_start
    )
    base_sha = _base(ctx, item)
    if climb.verdict is not None:  # decided before a crash, not carried out
        if climb.verdict.action == "stop":
            return _stop(ctx, feature, item, climb.verdict, None)
        return _give_up(ctx, feature, item, climb.verdict, base_sha)
    job = _job(ctx, feature)
    session = _resumable_session(ctx, item)
    while True:
        spent = over_budget_before(ctx, job, item)
        if spent is not None:
            return _put_back(ctx, feature, item, "over_budget", spent)
        backlog.count_attempt(feature.id)
        run = run_attempt(
            ctx,
            job,
            item,
            model=climb.model,
            previous=climb.previous,
            base_sha=base_sha,
            resume_session_id=session,
        )
        session = None
        if isinstance(run, str):
            return _put_back(ctx, feature, item, "over_budget", run)
        if run.end == "interrupted":
            return _put_back(ctx, feature, item, "interrupted", "interrupted")
        if run.end == "over_budget":
            return _put_back(ctx, feature, item, "over_budget", run.message)
        if run.end == "stopped":
            return _held(ctx, feature, item, run, base_sha)
        if run.end == "passed":
            return _pass(ctx, feature, item, run)
        refuted = backlog.judge_claims(feature.id, confirmed=False)
        if refuted:
            ctx.reporter.note(
                f"feature {feature.label}: the agent claimed it passes; the harness's"
                " checks say it does not",
                "warn",
            )
        climb.previous = run.previous
        decision = failed(
            policy(ctx.settings),
            climb,
            run.signature,
            run.attempt.number,
            _used(store.attempt(run.attempt.id)),
        )
        store.event(
            run_id,
            "decision",
            {
                "feature": feature.id,
                "action": decision.action,
                "reason": decision.reason,
                "model": decision.model,
                "stuck": decision.stuck,
            },
            attempt_id=run.attempt.id,
        )
        if decision.action == "retry":
            ctx.reporter.note(f"feature {feature.label}: {decision.reason}")
            continue
        if decision.action == "stop":
            return _stop(ctx, feature, item, decision, run)
        return _give_up(ctx, feature, item, decision, base_sha)


def _put_back(
    ctx: BuildContext, feature: Feature, item: ItemRow, kind: FeatureEnd, message: str
) -> FeatureOutcome:
    ctx.store.set_item_state(item.id, ItemState.PENDING, reason=message[:200])
    ctx.backlog.release(feature.id, ItemState.PENDING, by=ctx.run.id, reason=message[:200])
    return FeatureOutcome(kind, message)


def _pass(ctx: BuildContext, feature: Feature, item: ItemRow, run: AttemptRun) -> FeatureOutcome:
    trailers = {"Nightcrew-Run": ctx.run.id, "Nightcrew-Feature": str(feature.id)}
    message = f"feat({feature.category}): {feature.name}"
    commit, error = commit_or_fail(ctx, run, f"feature {feature.label}", message, trailers)
    if error is not None:
        failure = Decision("stop", f"commit failed: {error}")
        return _stop(ctx, feature, item, failure, None)
    confirmed = ctx.backlog.judge_claims(feature.id, confirmed=True)
    ctx.store.set_item_state(item.id, ItemState.PASSED, reason="checks passed", commit_sha=commit)
    ctx.backlog.release(feature.id, ItemState.PASSED, by=ctx.run.id, reason="checks passed")
    short = commit[:10] if commit else "no commit"
    claimed = " (the agent's claim confirmed)" if confirmed else ""
    ctx.reporter.note(f"feature {feature.label} passed ({short}){claimed}")
    return FeatureOutcome("passed", "passed")


def _held(
    ctx: BuildContext, feature: Feature, item: ItemRow, run: AttemptRun, base_sha: str | None
) -> FeatureOutcome:
    """The feature left the build during its attempt: the agent asked a person
    (it waits in needs_input) or someone skipped it. The next feature gets a
    clean tree; this one's changes are kept as a patch."""
    kept = abandon(ctx, ctx.project.run_dir(ctx.run.id), base_sha, f"feature-{feature.id}")
    if ctx.backlog.feature(feature.id).state == ItemState.NEEDS_INPUT:
        ctx.store.set_item_state(item.id, ItemState.NEEDS_INPUT, reason=run.message[:200])
        message = (
            f"feature {feature.label} waits for a person ({run.message}){kept};"
            f" answer with `nightcrew backlog answer {feature.id} TEXT`"
        )
        ctx.reporter.note(message, "warn")
        return FeatureOutcome("needs_input", message)
    ctx.store.set_item_state(item.id, ItemState.SKIPPED, reason=run.message[:200])
    message = f"feature {feature.label}: {run.message}{kept}"
    ctx.reporter.note(message, "warn")
    return FeatureOutcome("gave_up", message)


def _record(
    ctx: BuildContext, feature: Feature, item: ItemRow, reason: str, last_text: str | None
) -> None:
    attempts = [a for a in ctx.store.attempts(item_id=item.id) if a.number >= item.window_start]
    cost = ctx.store.totals(attempts).cost_usd
    ctx.backlog.record_failure(
        feature.id,
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
        last_text=last_text,
    )


def _last_text(ctx: BuildContext, item: ItemRow) -> str | None:
    for attempt in reversed(ctx.store.attempts(item_id=item.id)):
        if attempt.last_text:
            return attempt.last_text
    return None


def _give_up(
    ctx: BuildContext,
    feature: Feature,
    item: ItemRow,
    decision: Decision,
    base_sha: str | None,
) -> FeatureOutcome:
    kept = abandon(ctx, ctx.project.run_dir(ctx.run.id), base_sha, f"feature-{feature.id}")
    _record(ctx, feature, item, decision.reason, _last_text(ctx, item))
    ctx.store.set_item_state(
        item.id, ItemState.SKIPPED, reason=decision.reason, message=decision.reason
    )
    ctx.backlog.release(feature.id, ItemState.SKIPPED, by=ctx.run.id, reason=decision.reason)
    message = f"feature {feature.label} skipped: {decision.reason}{kept}"
    ctx.reporter.note(message, "warn")
    return FeatureOutcome("gave_up", message)


def _stop(
    ctx: BuildContext,
    feature: Feature,
    item: ItemRow,
    decision: Decision,
    run: AttemptRun | None,
) -> FeatureOutcome:
    _record(ctx, feature, item, decision.reason, _last_text(ctx, item))
    ctx.store.set_item_state(
        item.id, ItemState.FAILED, reason=decision.reason, message=decision.reason
    )
    ctx.backlog.release(feature.id, ItemState.FAILED, by=ctx.run.id, reason=decision.reason)
    message = f"feature {feature.label} failed: {decision.reason}"
    if run is not None and run.attempt.evidence_dir:
        message += f". Evidence: {run.attempt.evidence_dir}"
    ctx.reporter.note(message, "error")
    return FeatureOutcome("failed", message)
