"""What an attempt leaves in the store while and after its agent runs: events,
per-response usage (live, priced), and the agent's authoritative totals."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from nightcrew.agents.base import (
    AgentEvent,
    Finished,
    ProcessStarted,
    SessionStarted,
    Text,
    Thinking,
    ToolCall,
    ToolDenied,
    ToolResult,
    Usage,
)
from nightcrew.core import events as ev
from nightcrew.core.usage import TokenCounts
from nightcrew.engine.attempt import AgentOutcome, LiveUsage
from nightcrew.store.records import AttemptRow
from nightcrew.usage.pricing import Pricer

if TYPE_CHECKING:
    from collections.abc import Mapping

    from nightcrew.engine.budget import BudgetGuard
    from nightcrew.engine.context import RunContext

EXCERPT = 2000


def spent(ctx: RunContext) -> Decimal:
    """What the run's ended attempts have cost (unknown costs count nothing)."""
    return ctx.ledger.run_spent()


class Recorder:
    """Writes an attempt's events and usage to the store and the display."""

    def __init__(
        self,
        ctx: RunContext,
        attempt: AttemptRow,
        batch_spent: Decimal,
        guard: BudgetGuard | None = None,
    ) -> None:
        self.ctx = ctx
        self.guard = guard
        self.attempt = attempt
        self.batch_spent = batch_spent
        self.tools: dict[str, str] = {}  # tool_use_id → how the display named the call
        self.denied: set[str] = set()  # tool_use_ids the policy refused
        self.run_spent = spent(ctx)
        self.run_tokens = ctx.store.totals(ctx.store.attempts(run_id=ctx.run.id)).tokens
        # The display starts each attempt from what was already spent, not
        # from the previous batch's figures or "unknown".
        progress = ctx.progress
        progress.set(
            batch_cost=batch_spent,
            run_cost=self.run_spent,
            batch_tokens=TokenCounts(),
            run_tokens=self.run_tokens,
        )
        ctx.reporter.emit(progress.event())

    def __call__(self, event: AgentEvent, live: LiveUsage) -> None:
        store, aid, run_id = self.ctx.store, self.attempt.id, self.ctx.run.id
        emit = self.ctx.reporter.emit
        progress = self.ctx.progress
        if isinstance(event, ProcessStarted):
            store.update_attempt(aid, agent_pid=event.pid, agent_create_time=event.create_time)
        elif isinstance(event, SessionStarted):
            store.update_attempt(aid, session_id=event.session_id)
            emit(
                ev.SessionStarted(
                    run_id=run_id,
                    item_id=self.attempt.item_id,
                    attempt_id=aid,
                    session_id=event.session_id,
                    model=event.model,
                )
            )
        elif isinstance(event, ToolCall):
            tool = _describe_tool(event, self.ctx.project.root)
            progress.set(current_tool=tool, tool_calls=progress.now.tool_calls + 1)
            self.tools[event.tool_use_id] = tool
            emit(
                ev.ToolCalled(
                    run_id=run_id,
                    item_id=self.attempt.item_id,
                    attempt_id=aid,
                    name=event.name,
                    input=_clip(dict(event.input)),
                )
            )
        elif isinstance(event, ToolDenied):
            if event.tool_use_id is not None:
                self.denied.add(event.tool_use_id)  # its error result is this denial
            denied = ev.ToolDenied(
                run_id=run_id,
                item_id=self.attempt.item_id,
                attempt_id=aid,
                tool=event.tool,
                summary=event.summary[:EXCERPT],
                rule=event.rule,
                reason=event.reason,
                message=event.message,
            )
            emit(denied)
        elif isinstance(event, ToolResult):
            if event.is_error:
                emit(
                    ev.ToolFailed(
                        run_id=run_id,
                        item_id=self.attempt.item_id,
                        attempt_id=aid,
                        excerpt=event.excerpt,
                    )
                )
            if event.is_error and event.tool_use_id not in self.denied:  # a denial has its line
                tool = self.tools.get(event.tool_use_id, "a tool call")
                why = " ".join(event.excerpt.split())[:160] or "no reason given"
                progress.set(
                    tool_failure=f"{tool} failed: {why}",
                    tool_failures=progress.now.tool_failures + 1,
                )
        elif isinstance(event, Text):
            emit(
                ev.TextSeen(
                    run_id=run_id,
                    item_id=self.attempt.item_id,
                    attempt_id=aid,
                    text=event.text[:EXCERPT],
                )
            )
        elif isinstance(event, Thinking):
            emit(
                ev.ThinkingSeen(
                    run_id=run_id,
                    item_id=self.attempt.item_id,
                    attempt_id=aid,
                    text=event.text[:500],
                )
            )
        elif isinstance(event, Usage):
            cost = live.responses[event.message_id][2]
            store.record_usage(
                aid,
                kind="response",
                message_id=event.message_id,
                request_id=event.request_id,
                model=event.model,
                tokens=event.tokens,
                cost_usd=cost,
                cost_source="priced" if cost is not None else None,
            )
            progress.set(
                model=event.model or progress.now.model,
                batch_cost=self.batch_spent + live.cost_usd,
                run_cost=self.run_spent + live.cost_usd,
                batch_tokens=live.tokens,
                run_tokens=self.run_tokens + live.tokens,
            )
            seen = ev.UsageSeen(
                run_id=run_id,
                item_id=self.attempt.item_id,
                attempt_id=aid,
                model=event.model,
                tokens=event.tokens,
                cost_usd=cost,
                attempt_cost_usd=live.cost_usd if live.unknown == 0 else None,
                run_cost_usd=progress.now.run_cost,
            )
            emit(seen)
            if self.guard is not None:
                self.guard.check(live.cost_usd, attempt_id=aid)
        self.ctx.reporter.emit(progress.event())


def _describe_tool(event: ToolCall, root: Path) -> str:
    return describe_tool(event.name, event.input, root)


def describe_tool(name: str, tool_input: Mapping[str, object], root: Path) -> str:
    """``Bash: pytest -q``, ``Write: src/cart.py``: a file inside the project is
    named from its root, so the line says what a person needs to see (the live
    console's tool line, and the log's line for a stored tool call)."""
    for key in ("command", "file_path", "path", "pattern"):
        value = tool_input.get(key)
        if isinstance(value, str) and value:
            if key in ("file_path", "path"):
                value = _from_root(value, root)
            first = value.splitlines()[0]
            return f"{name}: {first if len(first) <= 80 else first[:79] + '…'}"
    return name


def _from_root(path: str, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path


def _clip(data: dict[str, object]) -> dict[str, object]:
    return {k: (v[:EXCERPT] if isinstance(v, str) else v) for k, v in data.items()}


def record_final(
    ctx: RunContext, attempt: AttemptRow, outcome: AgentOutcome, pricer: Pricer
) -> tuple[Decimal | None, str | None]:
    """Store the agent's authoritative per-model totals; return the attempt's
    cost and its source."""
    finished: Finished | None = outcome.finished
    if finished is not None and finished.model_usage:
        known: list[Decimal] = []
        sources: set[str | None] = set()
        unknown = False
        for usage in finished.model_usage:
            cost = pricer.reported(usage)
            ctx.store.record_usage(
                attempt.id,
                kind="final",
                message_id=None,
                request_id=None,
                model=usage.model,
                tokens=usage.tokens,
                cost_usd=cost.usd,
                cost_source=cost.source,
            )
            if cost.usd is None:
                unknown = True
            else:
                known.append(cost.usd)
                sources.add(cost.source)
        if finished.reported_cost_usd is not None:
            return finished.reported_cost_usd, "reported"
        if unknown:
            # Part of the attempt has no known price: its total is unknown,
            # never a smaller number that looks complete.
            return None, None
        return sum(known, Decimal(0)), "reported" if sources == {"reported"} else "priced"
    if outcome.live.responses and outcome.live.unknown == 0:
        return outcome.live.cost_usd, "priced"
    return None, None
