"""A run's test baseline, kept in the store: the test ids later attempts are
judged against. It is recorded before the first unit and after each passed
one, so a resumed run judges its next attempt against the last committed
state, not against a tree a stopped attempt left half done."""

from __future__ import annotations

import json

from nightcrew.core.events import BaselineRecorded
from nightcrew.engine.testrun import TestIds
from nightcrew.store.records import Store

BASELINE_EVENT = BaselineRecorded.kind


def baseline_event(run_id: str, ids: TestIds) -> BaselineRecorded:
    """The test ids later attempts are judged against, as the event that keeps
    them for a resume (emitted on the run's bus; the store keeps it)."""
    return BaselineRecorded(
        run_id=run_id,
        passed=tuple(sorted(ids.passed)),
        failed=tuple(sorted(ids.failed)),
        skipped=tuple(sorted(ids.skipped)),
    )


def stored_baseline(store: Store, run_id: str) -> TestIds | None:
    """The newest baseline this run recorded, or None."""
    row = store.db.execute(
        "SELECT payload_json FROM events WHERE run_id = ? AND kind = ? ORDER BY id DESC LIMIT 1",
        (run_id, BASELINE_EVENT),
    ).fetchone()
    if row is None:
        return None
    data = json.loads(row[0])
    return TestIds(
        passed=frozenset(data["passed"]),
        failed=frozenset(data["failed"]),
        skipped=frozenset(data["skipped"]),
    )
