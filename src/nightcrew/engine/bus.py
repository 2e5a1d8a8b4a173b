"""One bus for a run's typed events (:mod:`nightcrew.core.events`).

``Bus.emit`` hands each event to the subscribers in the order they
subscribed. The store's subscriber comes first and its failure stops the run
(the store is the record). Any other subscriber that raises (a console gone
after a hang-up, a dashboard, a notifier) is left out from then on, and its
failure is reported once, as a :class:`SubscriberFailed` event to the others.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from nightcrew.core.events import Event, StateChanged, SubscriberFailed
from nightcrew.store.records import Store

Subscriber = Callable[[Event], None]


class StoreSink:
    """Appends every stored event to the events table."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __call__(self, event: Event) -> None:
        if event.stored():
            self.store.append_event(event)


class Bus:
    def __init__(self) -> None:
        self._subscribers: list[tuple[str, Subscriber]] = []
        self._store: StoreSink | None = None
        self._failed: set[str] = set()
        self._closers: list[Callable[[], None]] = []
        self.run_id: str | None = None  # the run this bus serves, once it runs

    def subscribe(
        self, subscriber: Subscriber, *, name: str, close: Callable[[], None] | None = None
    ) -> None:
        self._subscribers.append((name, subscriber))
        if close is not None:
            self._closers.append(close)

    def attach_store(self, store: Store) -> None:
        """Record every event in ``store`` (first, before anyone is told), and
        publish its state changes on this bus."""
        self._store = StoreSink(store)
        store.publish = self._tell_others

    def detach_store(self) -> None:
        if self._store is not None:
            self._store.store.publish = None
        self._store = None

    def emit(self, event: Event) -> None:
        if event.run_id is None and self.run_id is not None:
            event = dataclasses.replace(event, run_id=self.run_id)  # e.g. an unknown price
        if self._store is not None:
            self._store(event)
        self._tell_others(event)

    def _tell_others(self, event: Event) -> None:
        if (
            isinstance(event, StateChanged)
            and event.entity == "run"
            and event.to_state == "running"
        ):
            self.run_id = event.run_id
        failures: list[SubscriberFailed] = []
        for name, subscriber in list(self._subscribers):
            if name in self._failed:
                continue
            try:
                subscriber(event)
            except Exception as exc:  # noqa: BLE001 - a watcher's failure never stops the run
                self._failed.add(name)
                error = str(exc) or type(exc).__name__
                failures.append(SubscriberFailed(run_id=event.run_id, subscriber=name, error=error))
        for failure in failures:  # told once everyone has had the event
            self.emit(failure)

    def close(self) -> None:
        for close in self._closers:
            close()
