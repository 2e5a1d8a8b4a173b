"""The log's line for a stored event: the console's own words
(:mod:`event_lines`) for every event the console prints, and for the few it
keeps quiet about (tool calls and failures, which the console shows through
its progress line; the agent's words; the run's end, which it prints as a
table) words in the same voice. Nothing here reads English back: every line
is made from the typed event."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from nightcrew.cli.event_lines import lines, unit_name
from nightcrew.core import events as ev
from nightcrew.core.events import Event, ProgressSnapshot
from nightcrew.engine.recording import describe_tool
from nightcrew.views.event_log import LogEntry

_WIDTH = 160  # the agent's words and a tool's error, cut to one line of this


def log_renderer(root: Path) -> Callable[[LogEntry], str]:
    """The :data:`~nightcrew.views.event_log.Render` for the project at ``root``
    (tool calls name files from it, as the console does)."""
    return lambda entry: log_line(entry, root)


def log_line(entry: LogEntry, root: Path) -> str:
    """One line for one stored event; several console lines are joined by " — "."""
    event = entry.event
    if event is None:  # a kind this version does not know: its fields, plainly
        return _fields(entry.kind, entry.payload)
    where = entry.where()
    if isinstance(event, ev.ToolDenied) and not event.message:
        # stored before denials kept their message
        event = dataclasses.replace(event, message=f"denied ({event.rule}): {event.reason}")
    try:
        said = [text for text, _ in lines(event, where)]
        if said:
            return " — ".join(said)
        quiet = _QUIET.get(type(event))
        if quiet is not None:
            return quiet(event, where, root)
    except (ValueError, TypeError, KeyError, AttributeError, ArithmeticError):
        pass  # a row the words do not fit (a hand-edited store, a zero budget): its fields
    return _fields(entry.kind, entry.payload)


def console_prints(entry: LogEntry) -> bool:
    """Whether the build's own live console printed a line for this event
    (a failed tool call among them: its progress line), so a watcher of the
    build shows what its terminal shows, no more."""
    if entry.kind == "tool_error":
        return True
    if entry.event is None or isinstance(entry.event, ev.RunFinished):
        return False  # the summary ends the watch
    return bool(lines(entry.event, entry.where()))


def _fields(kind: str, payload: dict[str, Any]) -> str:
    shown = ", ".join(f"{k}={v}" for k, v in payload.items() if k not in ("item_id", "lane"))
    return f"{kind}: {shown}" if shown else kind


def _clip(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _WIDTH else flat[: _WIDTH - 1] + "…"


def _usd(value: Decimal | None) -> str:
    return "unknown" if value is None else f"${value:.4f}"


def _run_finished(e: ev.RunFinished) -> str:
    return e.footer or f"run {e.run_id}: {e.state}" + (f": {e.message}" if e.message else "")


def _attempt_finished(e: ev.AttemptFinished) -> str:
    parts = [e.model or "default model", _usd(e.cost_usd)]
    if e.seconds is not None:
        parts.append(f"{e.seconds:.0f} s")
    return f"{e.item} attempt {e.number}: {e.state} ({', '.join(parts)})"


def _decision(e: ev.DecisionMade) -> str:
    return f"{e.item or 'the item'}: {e.action.replace('_', ' ')}: {e.reason}"


def _routing(e: ev.ItemRouted) -> str:
    models = " → ".join(m or "default model" for m in e.models)
    return f"{e.item}: models {models} ({e.rule or 'default route'}: {e.why})"


def _baseline(e: ev.BaselineRecorded) -> str:
    return (
        f"baseline recorded: {len(e.passed)} passed, {len(e.failed)} failed,"
        f" {len(e.skipped)} skipped"
    )


def _budget_stop(e: ev.BudgetStop) -> str:
    return f"budget spent: {e.name} ({_usd(e.spent_usd)} of {_usd(e.limit_usd)})"


def _on(where: ProgressSnapshot | None) -> str:
    return f"  {unit_name(where)} › " if where is not None else "  "


Quiet = Callable[[Any, ProgressSnapshot | None, Path], str]


def _plain(text: Callable[[Any], str]) -> Quiet:
    return lambda e, where, root: text(e)


_QUIET: dict[type[Event], Quiet] = {
    ev.RunStarted: _plain(lambda e: f"starting backlog init {e.run_id}"),
    ev.RunFinished: _plain(_run_finished),
    ev.CrashRecovered: _plain(lambda e: f"run {e.run} had crashed: closed by recovery"),
    ev.BaselineRecorded: _plain(_baseline),
    ev.WorktreeSetupRan: _plain(lambda e: f"{e.item}: worktree ready (no setup commands)"),
    ev.AttemptFinished: _plain(_attempt_finished),
    ev.SessionStarted: lambda e, where, root: (
        f"{_on(where)}session {e.session_id}" + (f" ({e.model})" if e.model else "")
    ),
    ev.ToolCalled: lambda e, where, root: f"{_on(where)}{describe_tool(e.name, e.input, root)}",
    ev.ToolFailed: lambda e, where, root: f"{_on(where)}a tool call failed: {_clip(e.excerpt)}",
    ev.TextSeen: lambda e, where, root: f"{_on(where)}says: {_clip(e.text)}",
    ev.ThinkingSeen: lambda e, where, root: f"{_on(where)}thinks: {_clip(e.text)}",
    ev.CommitMade: lambda e, where, root: (
        f"{unit_name(where) if where else 'the work'}: committed {e.sha[:10]}"
        f" {_clip(e.message.splitlines()[0] if e.message else '')}"
    ).rstrip(),
    ev.DecisionMade: _plain(_decision),
    ev.ItemRouted: _plain(_routing),
    ev.BudgetStop: _plain(_budget_stop),
    ev.UsageSeen: lambda e, where, root: (
        f"{_on(where)}{e.model}: {e.tokens.input + e.tokens.cache_read + e.tokens.cache_write:,}"
        f" in / {e.tokens.output:,} out, {_usd(e.cost_usd)} (attempt {_usd(e.attempt_cost_usd)},"
        f" run {_usd(e.run_cost_usd)})"
    ),
}
