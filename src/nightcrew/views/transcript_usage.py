"""What ``nightcrew usage --source transcripts`` shows: imported Claude Code
usage grouped by day, week, month, model, session, project or 5-hour block,
each API response once, added up in SQLite (:mod:`nightcrew.views.usage_sql`).

A big table is read in two halves of its ids at once, on two connections:
SQLite runs without Python's lock, so each half has a CPU of its own, and the
two halves' groups are added up by key (a day may be in both)."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

from nightcrew.usage.globaldb import (
    BUSY_TIMEOUT_MS,
    KEPT_RESPONSES,
    transcript_bounds,
    transcript_entries,
)
from nightcrew.usage.ledger import Group
from nightcrew.views.usage_sql import (
    TIME_KEYS,
    LocalDays,
    Query,
    TooLarge,
    entry_groups,
    group_of,
    local_groups,
    merge,
)

_QUERY = Query(f"{KEPT_RESPONSES} AND r.id BETWEEN :first AND :last", "r.", "r.ts")
_KEYS = {
    "model": "r.model",
    "session": "COALESCE(NULLIF(r.session_id, ''), '(no session)')",
    "project": "COALESCE(NULLIF(r.project, ''), '(no project)')",
}
# Below this many rows a second connection and thread cost more than they save.
SPLIT_ROWS = 20_000

Rows = list[Any]


def transcript_groups(
    db: sqlite3.Connection, by: str, since: datetime | None, until: datetime | None, tz: tzinfo
) -> list[Group]:
    """Imported transcript usage grouped ``by``; ``since`` inclusive, ``until``
    exclusive, days local to ``tz``."""
    bounds: dict[str, object] = {**transcript_bounds(since, until)}
    days = LocalDays.of("r.ts", tz) if by in TIME_KEYS else None
    try:
        if days is not None:
            rows = _in_halves(db, lambda c, p: _QUERY.rows(c, days.key, days.label, p), bounds)
            return local_groups(rows, by, days, datetime.fromisoformat)
        if by in _KEYS:
            key = _KEYS[by]
            rows = _in_halves(db, lambda c, p: _QUERY.rows(c, key, key, p), bounds)
            return merge([[group_of(row, datetime.fromisoformat) for row in rows]], by)
    except TooLarge:
        pass
    # transcript_entries yields in time order, so blocks need no sort
    return entry_groups(transcript_entries(db, since, until), by, tz, in_time_order=True)


def _in_halves(
    db: sqlite3.Connection,
    query: Callable[[sqlite3.Connection, dict[str, object]], Rows],
    params: dict[str, object],
) -> Rows:
    """``query``'s rows over every id, run in two halves at once when the table is big
    (the rows of a key may then come twice)."""
    first, last = db.execute("SELECT min(id), max(id) FROM transcript_usage").fetchone()
    if first is None:
        return query(db, {**params, "first": 0, "last": -1})
    path = db.execute("PRAGMA database_list").fetchone()[2]
    if last - first < SPLIT_ROWS or (os.cpu_count() or 1) < 2 or not path:
        return query(db, {**params, "first": first, "last": last})
    middle = (first + last) // 2
    other = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    later: list[Rows] = []
    failed: list[BaseException] = []

    def second_half() -> None:
        try:
            later.append(query(other, {**params, "first": middle + 1, "last": last}))
        except BaseException as exc:  # handed to the caller below  # noqa: BLE001
            failed.append(exc)

    thread = threading.Thread(target=second_half, name="usage-report")
    try:
        thread.start()
        rows = query(db, {**params, "first": first, "last": middle})
    finally:
        thread.join()
        other.close()
    if failed:
        raise failed[0]
    return rows + later[0]
