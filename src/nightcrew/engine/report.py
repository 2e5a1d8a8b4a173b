"""What the runner tells whoever is watching: a small interface the console
(live or plain) implements, so the run loop never prints. The engine emits
typed events (:mod:`nightcrew.core.events`) on a bus (:mod:`nightcrew.engine.bus`);
a reporter is the console's subscriber."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

from nightcrew.core.events import Event, Level, ProgressChanged, ProgressSnapshot, SummaryRow

__all__ = ["Level", "NullReporter", "Progress", "Reporter", "SummaryRow"]


class Progress:
    """One lane's line of the live display. The engine changes it with
    :meth:`set` and tells watchers with :meth:`event`: they only ever get a
    frozen :class:`ProgressSnapshot`, never this object."""

    def __init__(self, run_id: str, **fields: Any) -> None:
        self.now = ProgressSnapshot(run_id=run_id, **fields)

    def set(self, **changes: Any) -> None:
        self.now = replace(self.now, **changes)

    def event(self) -> ProgressChanged:
        """The lane's progress as it is now, for the bus."""
        return ProgressChanged(run_id=self.now.run_id, snapshot=self.now)


class Reporter(Protocol):
    """What the engine reports to: the run's bus, or a watcher given to an
    orchestrator (the console), which then subscribes it to the bus."""

    def emit(self, event: Event) -> None: ...

    def close(self) -> None: ...


class NullReporter:
    def emit(self, event: Event) -> None:
        pass

    def summary(self, rows: list[SummaryRow], footer: str) -> None:
        pass

    def close(self) -> None:
        pass
