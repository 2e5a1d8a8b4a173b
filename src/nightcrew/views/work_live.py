"""What a feature page shows changes only with these: the feature's state
and text, its attempts (one added, one ended), their gate results, a
decision about it, a review comment, and a running attempt's cost so far in
whole cents (or a response of unknown price). :func:`feature_signature`
reads them in one query, so the page's stream can tell the page to fetch it
again only when something it shows moved: at most once a cent spent, never
for each usage row and tool call a working agent writes."""

from __future__ import annotations

import hashlib
import json

from nightcrew.store.migrations import DECISION_KINDS
from nightcrew.store.records import ItemRow, Store
from nightcrew.views.work_page import item_label

_SIGNATURE_SQL = """
SELECT f.state || ':' || f.version || ':' || f.attempts || ':' || ifnull(f.updated_at, ''),
  (SELECT count(*) || ':' || ifnull(group_concat(a.id || '=' || a.state || '@'
          || ifnull(a.finished_at, ''), ','), '')
     FROM attempts a JOIN work_items w ON w.id = a.item_id WHERE w.feature_id = f.id),
  (SELECT count(*) FROM gate_results g JOIN attempts a ON a.id = g.attempt_id
     JOIN work_items w ON w.id = a.item_id WHERE w.feature_id = f.id),
  (SELECT count(*) || ':' || ifnull(max(sent_at), '') FROM review_comments r
     WHERE r.feature_id = f.id),
  (SELECT ifnull(max(e.id), 0) FROM events e WHERE e.kind IN (SELECT value FROM json_each(?))
     AND (json_extract(e.payload_json, '$.feature') = f.id
          OR json_extract(e.payload_json, '$.item') = 'feature #' || f.id)),
  (SELECT CAST(ifnull(sum(CAST(u.cost_usd AS REAL)), 0) * 100 AS INTEGER) || ':'
          || ifnull(sum(u.cost_usd IS NULL), 0)
     FROM usage_records u JOIN attempts a ON a.id = u.attempt_id
     JOIN work_items w ON w.id = a.item_id
     WHERE w.feature_id = f.id AND a.state = 'running' AND u.kind = 'response')
FROM features f WHERE f.id = ?
"""


def feature_signature(store: Store, feature_id: int) -> str:
    """A short text (for a URL) that changes whenever the feature's page
    would; "" when there is no such feature."""
    row = store.db.execute(_SIGNATURE_SQL, (json.dumps(DECISION_KINDS), feature_id)).fetchone()
    if row is None:
        return ""
    return hashlib.sha256("|".join(str(v) for v in row).encode()).hexdigest()[:16]


_ITEM_SIGNATURE_SQL = """
SELECT w.state || ':' || w.attempts || ':' || ifnull(w.commit_sha, ''),
  (SELECT count(*) || ':' || ifnull(group_concat(a.id || '=' || a.state || '@'
          || ifnull(a.finished_at, ''), ','), '')
     FROM attempts a WHERE a.item_id = w.id),
  (SELECT count(*) FROM gate_results g JOIN attempts a ON a.id = g.attempt_id
     WHERE a.item_id = w.id),
  (SELECT ifnull(max(e.id), 0) FROM events e WHERE e.run_id = w.run_id
     AND e.kind IN (SELECT value FROM json_each(?))
     AND json_extract(e.payload_json, '$.item') = ?)
FROM work_items w WHERE w.run_id = ? AND w.key = ?
"""


def item_signature(store: Store, run_id: str, key: str) -> str:
    """As :func:`feature_signature`, for work item ``key`` of run ``run_id``
    (a plan's batch); "" when there is none."""
    item = store.db.execute(
        "SELECT * FROM work_items WHERE run_id = ? AND key = ?", (run_id, key)
    ).fetchone()
    if item is None:
        return ""
    label = item_label(ItemRow.from_row(item))
    row = store.db.execute(
        _ITEM_SIGNATURE_SQL, (json.dumps(DECISION_KINDS), label, run_id, key)
    ).fetchone()
    if row is None:
        return ""
    return hashlib.sha256("|".join(str(v) for v in row).encode()).hexdigest()[:16]
