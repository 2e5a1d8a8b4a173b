"""What ``nightcrew usage --source transcripts`` shows: imported Claude Code
usage grouped by day, week, month, model, session, project or 5-hour block,
each API response once, added up in SQLite (:mod:`nightcrew.views.usage_sql`)."""

from __future__ import annotations

import sqlite3
from datetime import datetime, tzinfo

from nightcrew.usage.globaldb import KEPT_RESPONSES, transcript_bounds, transcript_entries
from nightcrew.usage.ledger import Group
from nightcrew.views.usage_sql import (
    TIME_KEYS,
    LocalDays,
    Query,
    TooLarge,
    entry_groups,
    group_of,
    local_groups,
    order,
)

_QUERY = Query(KEPT_RESPONSES, "r.", "r.ts")
_KEYS = {
    "model": "r.model",
    "session": "COALESCE(NULLIF(r.session_id, ''), '(no session)')",
    "project": "COALESCE(NULLIF(r.project, ''), '(no project)')",
}


def transcript_groups(
    db: sqlite3.Connection, by: str, since: datetime | None, until: datetime | None, tz: tzinfo
) -> list[Group]:
    """Imported transcript usage grouped ``by``; ``since`` inclusive, ``until``
    exclusive, days local to ``tz``."""
    bounds = transcript_bounds(since, until)
    days = LocalDays.of("r.ts", tz) if by in TIME_KEYS else None
    try:
        if days is not None:
            rows = _QUERY.rows(db, days.key, days.label, bounds)
            return local_groups(rows, by, days, datetime.fromisoformat)
        if by in _KEYS:
            rows = _QUERY.rows(db, _KEYS[by], _KEYS[by], bounds)
            return order([group_of(row, datetime.fromisoformat) for row in rows], by)
    except TooLarge:
        pass
    # transcript_entries yields in time order, so blocks need no sort
    return entry_groups(transcript_entries(db, since, until), by, tz, in_time_order=True)
