"""Console output for a run: a live Rich panel on a terminal, plain timestamped
lines otherwise (logs, CI, pipes). Console and clock are injected so output is
testable byte for byte."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from nightcrew.cli.amounts import duration, money
from nightcrew.cli.event_lines import lines
from nightcrew.core.events import Event, Level, ProgressChanged, ProgressSnapshot, RunFinished
from nightcrew.engine.report import SummaryRow

_STYLE = {"info": "", "warn": "yellow", "error": "bold red"}


def summary_table(rows: list[SummaryRow], unit: str | None = None) -> Table:
    unit = unit or (rows[0].unit if rows else "batch")
    kind = "build" if unit == "feature" else "run"
    table = Table(title=f"nightcrew {kind} summary", title_justify="left")
    for name, justify in (
        (unit.capitalize(), "right"),
        ("Title", "left"),
        ("State", "left"),
        ("Attempts", "right"),
        ("Time", "right"),
        ("Cost", "right"),
        ("Commit", "left"),
    ):
        # Nothing is cut with "…" on a narrow terminal: cells fold, and money never wraps.
        table.add_column(name, justify=justify, no_wrap=name == "Cost", overflow="fold")  # type: ignore[arg-type]
    colors = {"passed": "green", "failed": "red", "skipped": "yellow", "pending": "dim"}
    for row in rows:
        table.add_row(
            _shown_number(row),
            row.title,
            Text(row.state, style=colors.get(row.state, "")),
            str(row.attempts),
            duration(row.seconds),
            money(row.cost_usd, unknown=row.cost_unknown) if row.attempts else "-",
            row.commit[:10] if row.commit else "-",
        )
    return table


class Printer(Protocol):
    """What the console prints with: a line, the progress, the summary."""

    def note(self, message: str, level: Level = "info") -> None: ...

    def progress(self, snapshot: ProgressSnapshot) -> None: ...

    def summary(self, rows: list[SummaryRow], footer: str) -> None: ...


class EventPrinter:
    """The console's subscriber to a run's events: each event as the words
    and level a person has always read for it (:mod:`event_lines`)."""

    def __init__(self, printer: Printer) -> None:
        self.printer = printer
        self.where: ProgressSnapshot | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, ProgressChanged):
            self.where = event.snapshot
            self.printer.progress(event.snapshot)
        elif isinstance(event, RunFinished):
            self.printer.summary(list(event.rows), event.footer)
        else:
            for text, level in lines(event, self.where):
                self.printer.note(text, level)


class PlainReporter:
    """One timestamped line per thing that happened."""

    def __init__(self, console: Console, clock: Callable[[], datetime] = datetime.now) -> None:
        self.console = console
        self.clock = clock
        self._events = EventPrinter(self)
        self._last_tool: str | None = None
        self._last_calls = 0
        self._last_failures = 0

    def _line(self, text: str, level: Level = "info") -> None:
        stamp = self.clock().strftime("%H:%M:%S")
        self.console.print(
            f"[{stamp}] {text}", style=_STYLE[level], markup=False, highlight=False, soft_wrap=True
        )

    def emit(self, event: Event) -> None:
        self._events(event)

    def note(self, message: str, level: Level = "info") -> None:
        self._line(message if level == "info" else f"{level}: {message}", level)

    def progress(self, snapshot: ProgressSnapshot) -> None:
        new_call = snapshot.tool_calls != self._last_calls
        if snapshot.current_tool and (snapshot.current_tool != self._last_tool or new_call):
            self._line(f"  {snapshot.unit} {_number(snapshot)} › {snapshot.current_tool}")
        self._last_tool, self._last_calls = snapshot.current_tool, snapshot.tool_calls
        if snapshot.tool_failures != self._last_failures and snapshot.tool_failure:
            where = f"{snapshot.unit} {_number(snapshot)}"
            self._line(f"  {where} › {snapshot.tool_failure}", "warn")
        self._last_failures = snapshot.tool_failures

    def summary(self, rows: list[SummaryRow], footer: str) -> None:
        if rows:  # nothing was worked on: the footer says why
            self.console.print(summary_table(rows))
        self.console.print(footer, markup=False, highlight=False, soft_wrap=True)

    def close(self) -> None:
        pass


class LiveReporter:
    """A live panel under the scrolling notes: where the run is, what the
    agent is doing, and what it has cost so far."""

    def __init__(self, console: Console, clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console
        self.clock = clock
        self._events = EventPrinter(self)
        self.snapshot: ProgressSnapshot | None = None
        self._last_failures = 0
        self.live = Live(
            console=console, get_renderable=self._render, refresh_per_second=4, transient=True
        )
        self.live.start()

    def _render(self) -> RenderableType:
        s = self.snapshot
        if s is None or s.batch_number is None:
            return Text("nightcrew: starting…", style="dim")
        elapsed = duration(self.clock() - s.started_at) if s.started_at else "-"
        head = Text.assemble(
            ("nightcrew ", "bold"),
            (f"{s.unit} {s.batch_index}/{s.batch_total} ", "cyan"),
            (f"#{s.batch_number} {s.title}", "bold"),
            f" · attempt {s.attempt} · {s.model or 'default model'} · {s.phase} · {elapsed}",
        )
        tool = Text(f"  ▸ {s.current_tool or '…'}", style="dim")
        t = s.run_tokens
        money_line = Text(
            f"  {s.unit} {money(s.batch_cost)} · run {money(s.run_cost)} · tokens"
            f" {t.input + t.cache_read + t.cache_write:,} in / {t.output:,} out"
        )
        return Group(head, tool, money_line)

    def emit(self, event: Event) -> None:
        self._events(event)

    def note(self, message: str, level: Level = "info") -> None:
        text = message if level == "info" else f"{level}: {message}"
        self.console.print(text, style=_STYLE[level], markup=False, highlight=False)

    def progress(self, snapshot: ProgressSnapshot) -> None:
        self.snapshot = snapshot
        if snapshot.tool_failures != self._last_failures and snapshot.tool_failure:
            # Scrolls above the panel, which only ever shows the current tool.
            where = f"{snapshot.unit} {_number(snapshot)}"
            self.console.print(
                f"  {where} › {snapshot.tool_failure}",
                style="yellow",
                markup=False,
                highlight=False,
            )
        self._last_failures = snapshot.tool_failures

    def summary(self, rows: list[SummaryRow], footer: str) -> None:
        self.live.stop()
        if rows:
            self.console.print(summary_table(rows))
        self.console.print(footer, markup=False, highlight=False)

    def close(self) -> None:
        self.live.stop()


def _number(snapshot: ProgressSnapshot) -> str:
    """How the plain console names the unit: ``batch 2``, ``feature #7``."""
    prefix = "#" if snapshot.unit == "feature" else ""
    return f"{prefix}{snapshot.batch_number}"


def _shown_number(row: SummaryRow) -> str:
    if row.number is None:
        return "-"
    return f"#{row.number}" if row.unit == "feature" else str(row.number)


def console_reporter() -> PlainReporter | LiveReporter:
    """The live panel on a terminal; timestamped lines anywhere else (a log, CI)."""
    console = Console(highlight=False)
    return LiveReporter(console) if console.is_terminal else PlainReporter(console)
