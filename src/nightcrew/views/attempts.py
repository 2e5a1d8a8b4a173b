"""Attempts as reports see them: how long one took, and a feature's attempts
across every build that worked on it."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from nightcrew.store.rows import AttemptRow

if TYPE_CHECKING:
    from nightcrew.store.records import Store


def attempt_seconds(attempt: AttemptRow) -> float:
    """How long an attempt took, agent and gates (0 while it runs)."""
    if attempt.finished_at is None:
        return 0.0
    started = datetime.fromisoformat(attempt.started_at)
    return (datetime.fromisoformat(attempt.finished_at) - started).total_seconds()


def feature_attempts(store: Store, feature_id: int) -> list[AttemptRow]:
    rows = store.db.execute(
        "SELECT a.* FROM attempts a JOIN work_items w ON w.id = a.item_id"
        " WHERE w.feature_id = ? ORDER BY a.started_at, a.id",
        (feature_id,),
    ).fetchall()
    return [AttemptRow.from_row(r) for r in rows]
