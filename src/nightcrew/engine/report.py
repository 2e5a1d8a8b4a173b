"""What the runner tells whoever is watching: a small interface the console
(live or plain) implements, so the run loop never prints. The engine emits
typed events (:mod:`nightcrew.core.events`) on a bus (:mod:`nightcrew.engine.bus`);
a reporter is the console's subscriber."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from nightcrew.core.events import Event, Level, ProgressSnapshot, SummaryRow
from nightcrew.core.usage import TokenCounts

__all__ = ["Level", "NullReporter", "Progress", "Reporter", "SummaryRow"]


@dataclass
class Progress:
    """A snapshot of the run for a live display."""

    run_id: str
    unit: str = "batch"  # what the run works through: batch or feature
    batch_index: int = 0  # 1-based position among the batches this run executes
    batch_total: int = 0
    batch_number: int | None = None
    title: str = ""
    attempt: int = 0
    model: str | None = None
    phase: str = "starting"  # agent | gates | commit | …
    started_at: float = 0.0  # monotonic, of the current attempt
    current_tool: str | None = None
    tool_calls: int = 0  # tool calls seen: two identical calls in a row are two calls
    tool_failure: str | None = None  # the latest refused or failed tool call, described
    tool_failures: int = 0
    batch_cost: Decimal | None = None
    run_cost: Decimal | None = None
    batch_tokens: TokenCounts = field(default_factory=TokenCounts)
    run_tokens: TokenCounts = field(default_factory=TokenCounts)

    def snapshot(self) -> ProgressSnapshot:
        """The progress as it is now, as a value a watcher may keep."""
        return ProgressSnapshot(**vars(self))


class Reporter(Protocol):
    """What the engine reports to: the run's bus, or a watcher given to an
    orchestrator (the console), which then subscribes it to the bus."""

    def emit(self, event: Event) -> None: ...

    # TRANSITIONAL (see engine/bus.py): prose and the live progress object.
    def note(self, message: str, level: Level = "info") -> None: ...

    def progress(self, snapshot: Progress) -> None: ...

    def close(self) -> None: ...


class NullReporter:
    def emit(self, event: Event) -> None:
        pass

    def note(self, message: str, level: Level = "info") -> None:
        pass

    def progress(self, snapshot: Progress) -> None:
        pass

    def summary(self, rows: list[SummaryRow], footer: str) -> None:
        pass

    def close(self) -> None:
        pass
