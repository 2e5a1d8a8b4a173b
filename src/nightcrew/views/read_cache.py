"""What the dashboard's heavier pages read (the backlog's estimate, the
Kanban board, the dependency graph, the charts, a run's log export), kept
between requests while the store says nothing they read has changed.

Store migration m012's triggers count every change to the backlog, its
dependencies and the attempts (``read_marks.work``) and every usage record
changed in place or deleted (``read_marks.usage``); new usage records show by
their ids, and new events of a run by the run's highest event id (events are
only ever appended). So one read of a few counters tells whether a kept value
is still what computing it again would give: a value is computed inside a
read transaction together with the marks it is kept under, and handed out
again only while the marks are the same. A store deleted and made again is
told apart by when its first migration ran.

On the dashboard's big project (1,000 features, 20,000 attempts, 200,000
usage records) a kept page costs the read of its marks (well under 1 ms)
where computing it took 50–300 ms; the first request after a change pays in
full.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

from nightcrew.store.records import Store

T = TypeVar("T")
KEPT = 64  # values kept per server, the least recently used dropped first

_WORK = """
SELECT (SELECT applied_at FROM _migrations WHERE name = 'm001_initial'),
       (SELECT work FROM read_marks WHERE id = 1)
"""
_USAGE = """
SELECT (SELECT COALESCE(max(id), 0) FROM usage_records),
       (SELECT usage FROM read_marks WHERE id = 1),
       (SELECT n FROM usage_edits WHERE id = 1)
"""
_RUN_EVENTS = "SELECT COALESCE(max(id), 0) FROM events WHERE run_id = ?"
_EVENTS = "SELECT COALESCE(max(id), 0) FROM events"


def marks(
    store: Store, *, usage: bool = False, run_id: str | None = None, events: bool = False
) -> tuple[Any, ...]:
    """The counters a kept value is valid under: the store's birth and its
    changes to the backlog and attempts; with ``usage`` its usage records';
    with ``run_id`` that run's latest event; with ``events`` the latest event
    of any run."""
    found: tuple[Any, ...] = tuple(store.db.execute(_WORK).fetchone())
    if usage:
        found += tuple(store.db.execute(_USAGE).fetchone())
    if run_id is not None:
        found += tuple(store.db.execute(_RUN_EVENTS, (run_id,)).fetchone())
    if events:
        found += tuple(store.db.execute(_EVENTS).fetchone())
    return found


class ReadCache:
    """Values computed from projects' stores, by project root, a name and
    the arguments that shape them; safe to share between a server's threads.
    Kept values are shared: they must not be changed by whoever gets them."""

    def __init__(self, size: int = KEPT) -> None:
        self._kept: OrderedDict[Hashable, tuple[tuple[Any, ...], Any]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(
        self,
        store: Store,
        root: Path,
        name: str,
        compute: Callable[[Store], T],
        *,
        args: Hashable = (),
        usage: bool = False,
        run_id: str | None = None,
        events: bool = False,
        keep_if: Callable[[T], bool] | None = None,
    ) -> T:
        """``compute(store)``, or the value it gave when the store's
        :func:`marks` were the same as now; a value ``keep_if`` refuses (too
        big to hold on to) is handed out and not kept."""
        key = (root, name, args)
        own = not store.db.in_transaction
        if own:
            store.db.execute("BEGIN")  # deferred: one snapshot, and no lock a build waits for
        try:
            now = marks(store, usage=usage, run_id=run_id, events=events)
            with self._lock:
                seen = self._kept.get(key)
                if seen is not None and seen[0] == now:
                    self._kept.move_to_end(key)
                    return seen[1]  # type: ignore[no-any-return]
            value = compute(store)
        finally:
            if own:
                store.db.execute("COMMIT")
        if keep_if is not None and not keep_if(value):
            return value
        with self._lock:
            self._kept[key] = (now, value)
            self._kept.move_to_end(key)
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)
        return value

    def forget(self, root: Path) -> None:
        with self._lock:
            for key in [k for k in self._kept if k[0] == root]:  # type: ignore[index]
                del self._kept[key]
