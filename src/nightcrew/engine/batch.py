"""One batch: attempts until the harness's gates pass or the policy gives up.

Each attempt is a fresh agent session. Afterwards the harness runs the gates,
stores their evidence and digest, and either commits (pass) or decides what
the failure means (retry with the digest, escalate, skip, stop, stuck).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Literal

from nightcrew import gitops
from nightcrew.agents.base import (
    AgentBackend,
    AgentRequest,
)
from nightcrew.config import Settings
from nightcrew.engine import gates as gates_mod
from nightcrew.engine.attempt import drive_agent
from nightcrew.engine.budget import BudgetGuard, current_budgets
from nightcrew.engine.digest import failure_signature, make_digest
from nightcrew.engine.policy import after_failure
from nightcrew.engine.prompt import PreviousFailure, Prompt, variable_suffix
from nightcrew.engine.recording import EXCERPT, Recorder, record_final
from nightcrew.engine.report import Progress, Reporter
from nightcrew.engine.states import AttemptState, ItemState
from nightcrew.errors import GitError
from nightcrew.project import Project
from nightcrew.store.records import AttemptRow, ItemRow, RunRow, Store
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
    previous = _last_failure(store, item)
    signatures: list[str | None] = []
    model = settings.model
    attempts_made = 0
    batch_dir = ctx.project.run_dir(ctx.run.id) / f"batch-{batch.number}"
    progress = ctx.progress
    progress.batch_number, progress.title = batch.number, batch.title

    while True:
        guard = _guard(ctx, batch, item)
        guard.check()
        if guard.exceeded() is not None:
            store.set_item_state(item.id, ItemState.PENDING, reason="budget exceeded")
            return BatchOutcome("over_budget", guard.message())
        left = guard.left()
        attempts_made += 1
        number = store.next_attempt_number(item.id)
        evidence = batch_dir / f"attempt-{number}"
        evidence.mkdir(parents=True, exist_ok=True)
        prompt = Prompt(
            ctx.prefix,
            variable_suffix(
                project_root=root,
                batch_number=batch.number,
                batch_count=ctx.batch_count,
                title=batch.title,
                body=batch.body,
                context_refs=batch.context_refs,
                recent_commits=gitops.recent_commits(root, 5),
                attempt=number,
                previous=previous,
            ),
        )
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
        progress.attempt, progress.model, progress.phase = number, model, "agent"
        progress.started_at, progress.current_tool = time.monotonic(), None
        ctx.reporter.note(
            f"batch {batch.number}/{ctx.batch_count} '{batch.title}': attempt {number}"
            + (f" with {model}" if model else "")
        )
        batch_spent = store.totals(store.attempts(item_id=item.id)).cost_usd or Decimal(0)
        request = AgentRequest(
            prompt=prompt.text,
            cwd=root,
            model=model,
            allowed_tools=settings.allowed_tools,
            env=ctx.agent_env,
            max_budget_usd=float(left) if left is not None else None,
            work_dir=evidence,
        )
        outcome = asyncio.run(
            drive_agent(
                ctx.backend,
                request,
                timeout_s=settings.attempt_timeout,
                pricer=ctx.pricer,
                budget_left_usd=left,
                on_event=Recorder(ctx, attempt, batch_spent, guard),
            )
        )
        cost, source = record_final(ctx, attempt, outcome, ctx.pricer)
        common: dict[str, object] = dict(
            models_json=_json(outcome.models),
            session_id=outcome.session_id,
            tool_calls=outcome.tool_calls,
            agent_seconds=outcome.agent_seconds,
            cost_usd=cost,
            cost_source=source,
            result_subtype=outcome.finished.result_subtype if outcome.finished else None,
            is_error=outcome.finished.is_error if outcome.finished else None,
            last_text=(outcome.last_text or "")[:EXCERPT] or None,
        )
        if outcome.end == "cancelled":
            store.finish_attempt(
                attempt.id, AttemptState.CANCELLED, reason="interrupted by the user", **common
            )
            store.set_item_state(item.id, ItemState.PENDING, reason="run interrupted")
            return BatchOutcome("interrupted", "interrupted")
        if outcome.end == "over_budget":
            store.finish_attempt(
                attempt.id,
                AttemptState.OVER_BUDGET,
                reason="the budget ran out during this attempt",
                **common,
            )
            store.set_item_state(item.id, ItemState.PENDING, reason="budget exceeded")
            return BatchOutcome("over_budget", _guard(ctx, batch, item).message())

        signature: str | None
        if outcome.end in ("timed_out", "crashed"):
            state = AttemptState.TIMED_OUT if outcome.end == "timed_out" else AttemptState.CRASHED
            if outcome.end == "timed_out":
                digest = (
                    f"The agent did not finish within {settings.attempt_timeout:g} s and"
                    " was stopped. Work in smaller steps and finish sooner."
                )
            else:
                error = outcome.finished.error if outcome.finished else None
                digest = f"The agent session ended with an error: {error or 'unknown error'}"
            signature = f"{outcome.end}:{digest[:120]}"
            store.finish_attempt(
                attempt.id, state, reason=digest[:300], digest=digest, signature=signature, **common
            )
            ctx.reporter.note(f"batch {batch.number} attempt {number}: {digest}", "warn")
        else:
            progress.phase = "gates"
            ctx.reporter.progress(progress)
            started = time.monotonic()
            results = gates_mod.run_gates(
                ctx.gate_specs,
                root=root,
                evidence_dir=evidence,
                baseline=ctx.baseline,
                base_sha=base_sha,
                timeout_s=settings.gate_timeout,
            )
            gate_seconds = time.monotonic() - started
            for result in results:
                _record_gate(store, attempt.id, result)
                mark = "passed" if result.passed else "FAILED"
                reason = "" if result.passed else _gate_reason(result)
                ctx.reporter.note(
                    f"  {_gate_label(result.name)}: {mark}{_gate_detail(result)}{reason}",
                    "info" if result.passed else "warn",
                )
            if gates_mod.gates_passed(results):
                return _pass(ctx, batch, item, attempt, results, base_sha, gate_seconds, common)
            digest = make_digest(results)
            signature = failure_signature(results)
            store.finish_attempt(
                attempt.id,
                AttemptState.FAILED,
                reason="gates failed",
                digest=digest,
                signature=signature,
                gate_seconds=gate_seconds,
                **common,
            )
        previous = PreviousFailure(
            number, outcome.end if outcome.end != "finished" else "failed", digest
        )
        signatures.append(signature)
        decision = after_failure(
            on_failure=settings.on_failure,
            max_retries=settings.max_retries,
            attempts_made=attempts_made,
            signatures=signatures,
            model=settings.model,
            escalate_model=settings.escalate_model,
            current_model=model,
        )
        store.event(
            ctx.run.id,
            "decision",
            {
                "action": decision.action,
                "reason": decision.reason,
                "model": decision.model,
                "stuck": decision.stuck,
            },
            attempt_id=attempt.id,
        )
        if decision.action == "retry":
            if decision.model and decision.model != model:
                ctx.reporter.note(f"batch {batch.number}: escalating to {decision.model}")
            model = decision.model
            ctx.reporter.note(f"batch {batch.number}: {decision.reason}")
            continue
        message = f"batch {batch.number} failed: {decision.reason}"
        if decision.action == "skip":
            message += _abandon(ctx, batch_dir, base_sha)
            store.set_item_state(
                item.id, ItemState.FAILED, reason=decision.reason, message=decision.reason
            )
            ctx.reporter.note(message, "warn")
            return BatchOutcome("skipped", message)
        store.set_item_state(
            item.id, ItemState.FAILED, reason=decision.reason, message=decision.reason
        )
        ctx.reporter.note(message, "error")
        return BatchOutcome("failed", message + f". Evidence: {evidence}")


def _pass(
    ctx: BatchContext,
    batch: Batch,
    item: ItemRow,
    attempt: AttemptRow,
    results: list[gates_mod.GateResult],
    base_sha: str | None,
    gate_seconds: float,
    common: dict[str, object],
) -> BatchOutcome:
    store, root = ctx.store, ctx.project.root
    commit: str | None = None
    if ctx.settings.commit:
        ctx.progress.phase = "commit"
        try:
            commit = gitops.commit_all(
                root,
                _commit_message(batch),
                {"Nightcrew-Run": ctx.run.id, "Nightcrew-Batch": str(batch.number)},
            )
        except GitError as exc:
            store.finish_attempt(
                attempt.id,
                AttemptState.FAILED,
                reason="commit failed",
                digest=str(exc),
                gate_seconds=gate_seconds,
                **common,
            )
            store.set_item_state(
                item.id, ItemState.FAILED, reason="commit failed", message=str(exc)
            )
            return BatchOutcome("failed", f"batch {batch.number}: commit failed: {exc}")
        if commit is None:
            head = gitops.head_sha(root)
            commit = head if head != base_sha else None
    if base_sha is not None and not gitops.changed_files(root, base_sha):
        ctx.reporter.note(f"batch {batch.number} passed without changing any file", "warn")
    store.finish_attempt(
        attempt.id,
        AttemptState.PASSED,
        reason="gates passed",
        commit_sha=commit,
        gate_seconds=gate_seconds,
        **common,
    )
    store.set_item_state(item.id, ItemState.PASSED, reason="gates passed", commit_sha=commit)
    for result in results:
        if result.tests is not None:
            ctx.baseline = result.tests
    short = commit[:10] if commit else "no commit"
    ctx.reporter.note(f"batch {batch.number} passed ({short})")
    return BatchOutcome("passed", "passed")


def _abandon(ctx: BatchContext, batch_dir: Path, base_sha: str | None) -> str:
    """With --on-failure skip, keep the failed batch's changes as a patch and
    give the next batch the tree as it was before this one."""
    if not ctx.settings.commit or base_sha is None:
        return "; its changes are left in the working tree (--no-commit)"
    patch = batch_dir / "abandoned.patch"
    patch.write_text(gitops.diff_patch(ctx.project.root, base_sha), encoding="utf-8")
    gitops.reset_hard(ctx.project.root, base_sha)
    return f"; its changes were saved to {patch} and the tree reset"


def _record_gate(store: Store, attempt_id: int, result: gates_mod.GateResult) -> None:
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


def _gate_detail(result: gates_mod.GateResult) -> str:
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


def _gate_label(name: str) -> str:
    return name if name.startswith("gate ") else f"gate {name}"


def _gate_reason(result: gates_mod.GateResult) -> str:
    """The first telling line of a failed gate's digest, for the console."""
    for line in result.digest.splitlines():
        text = line.strip()
        if text and not text.startswith(("full output:", "summary:", "[")):
            return f" — {text[:160]}"
    return ""


def _guard(ctx: BatchContext, batch: Batch, item: ItemRow) -> BudgetGuard:
    budgets = current_budgets(
        ctx.store,
        ctx.settings,
        root=ctx.project.root,
        run_id=ctx.run.id,
        item_id=item.id,
        item_name=f"batch {batch.number}",
    )
    return BudgetGuard(budgets, store=ctx.store, run_id=ctx.run.id, reporter=ctx.reporter)


def _json(value: object) -> str:
    return json.dumps(value)
