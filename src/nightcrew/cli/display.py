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
from nightcrew.core import events as ev
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
        self.where: dict[int, ProgressSnapshot] = {}  # each lane's latest snapshot

    def __call__(self, event: Event) -> None:
        if isinstance(event, ProgressChanged):
            self.where[event.snapshot.lane] = event.snapshot
            self.printer.progress(event.snapshot)
        elif isinstance(event, RunFinished):
            self.printer.summary(list(event.rows), event.footer)
        else:
            for text, level in lines(event, self.where.get(event.lane)):
                self.printer.note(text, level)


class PlainReporter:
    """One timestamped line per thing that happened."""

    def __init__(self, console: Console, clock: Callable[[], datetime] = datetime.now) -> None:
        self.console = console
        self.clock = clock
        self._events = EventPrinter(self)
        # per lane: the tool last shown, the tool calls and failures seen
        self._last: dict[int, tuple[str | None, int, int]] = {}

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
        last_tool, last_calls, last_failures = self._last.get(snapshot.lane, (None, 0, 0))
        new_call = snapshot.tool_calls != last_calls
        if snapshot.current_tool and (snapshot.current_tool != last_tool or new_call):
            self._line(f"  {snapshot.unit} {_number(snapshot)} › {snapshot.current_tool}")
        if snapshot.tool_failures != last_failures and snapshot.tool_failure:
            where = f"{snapshot.unit} {_number(snapshot)}"
            self._line(f"  {where} › {snapshot.tool_failure}", "warn")
        self._last[snapshot.lane] = (
            snapshot.current_tool,
            snapshot.tool_calls,
            snapshot.tool_failures,
        )

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
        self.snapshot: ProgressSnapshot | None = None  # the latest, whatever its lane
        self.lanes: dict[int, ProgressSnapshot] = {}  # with several lanes, each one's
        self.queue: list[str] = []  # items in the merge queue, in the order they came
        self.checking: set[str] = set()  # those of them the queue is landing now
        self.paused: str | None = None  # "paused by NAME": a person paused the run
        self._last_failures: dict[int, int] = {}
        self.live = Live(
            console=console, get_renderable=self._render, refresh_per_second=4, transient=True
        )
        self.live.start()

    def _render(self) -> RenderableType:
        if len(self.lanes) > 1 or any(lane > 0 for lane in self.lanes):
            return self._render_lanes()
        s = self.snapshot
        if s is None or s.batch_number is None:
            if self.paused is not None:
                return Text(f"nightcrew: {self._paused_words()}", style="bold yellow")
            return Text("nightcrew: starting…", style="dim")
        elapsed = duration(self.clock() - s.started_at) if s.started_at else "-"
        head = Text.assemble(
            ("nightcrew ", "bold"),
            *self._paused_mark(after=" "),
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

    def _render_lanes(self) -> RenderableType:
        """One line per lane, then the merge queue and the run's money."""
        rows: list[RenderableType] = [
            Text.assemble(("nightcrew lanes", "bold"), *self._paused_mark(before=" "))
        ]
        latest: ProgressSnapshot | None = None
        idle: list[str] = []
        for lane, s in sorted(self.lanes.items()):
            latest = s
            if s.batch_number is None or s.phase == "done":
                idle.append(str(lane))
                continue
            elapsed = duration(self.clock() - s.started_at) if s.started_at else "-"
            tool = f" · {s.current_tool}" if s.current_tool and s.phase == "agent" else ""
            rows.append(
                Text.assemble(
                    (f"  {lane} ", "cyan"),
                    (f"#{s.batch_number} {s.title[:40]}", "bold"),
                    f" · attempt {s.attempt} · {s.model or 'default model'} · {s.phase}{tool}"
                    f" · {elapsed} · {money(s.batch_cost)}",
                )
            )
        if idle:  # a build has two lanes per agent: the spare ones are one line
            rows.append(Text(f"  idle: lane {', '.join(idle)}", style="dim"))
        if self.queue:
            now = [item for item in self.queue if item in self.checking]
            later = [item for item in self.queue if item not in self.checking]
            line = ", ".join(later)  # none taken yet (between two turns): the line as it is
            if now:
                line = f"landing {', '.join(now)}" + (f" · waiting {line}" if later else "")
            rows.append(Text(f"  merge queue: {line}", style="magenta"))
        if latest is not None:
            t = latest.run_tokens
            rows.append(
                Text(
                    f"  run {money(latest.run_cost)} · tokens"
                    f" {t.input + t.cache_read + t.cache_write:,} in / {t.output:,} out"
                )
            )
        return Group(*rows)

    def _paused_words(self) -> str:
        return f"{self.paused}: nothing new starts until `nightcrew resume`"

    def _paused_mark(self, before: str = "", after: str = "") -> tuple[tuple[str, str], ...]:
        """The header's word for a paused run (nothing when it is not)."""
        if self.paused is None:
            return ()
        return ((before, ""), ("PAUSED", "bold black on yellow"), (after, ""))

    def emit(self, event: Event) -> None:
        if isinstance(event, ev.RunPaused):
            self.paused = f"paused by {event.by}"
        elif isinstance(event, ev.RunResumed | ev.StopRequested):
            self.paused = None
        if isinstance(event, ev.MergeQueued):
            self.queue.append(event.item)
        elif isinstance(event, ev.MergeChecking):
            self.checking.update(event.items)
        elif isinstance(event, ev.MergeLanded | ev.MergeRejected | ev.MergeConflicted):
            self.checking.discard(event.item)
            if event.item in self.queue:
                self.queue.remove(event.item)
        self._events(event)

    def note(self, message: str, level: Level = "info") -> None:
        text = message if level == "info" else f"{level}: {message}"
        self.console.print(text, style=_STYLE[level], markup=False, highlight=False)

    def progress(self, snapshot: ProgressSnapshot) -> None:
        self.snapshot = snapshot
        self.lanes[snapshot.lane] = snapshot
        last_failures = self._last_failures.get(snapshot.lane, 0)
        if snapshot.tool_failures != last_failures and snapshot.tool_failure:
            # Scrolls above the panel, which only ever shows the current tool.
            where = f"{snapshot.unit} {_number(snapshot)}"
            self.console.print(
                f"  {where} › {snapshot.tool_failure}",
                style="yellow",
                markup=False,
                highlight=False,
            )
        self._last_failures[snapshot.lane] = snapshot.tool_failures

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
