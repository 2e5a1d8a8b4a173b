"""The project page's feed of what happened: the store's events, newest
first, each with its id (the SSE ``id:``), so a page that reconnects or
reloads continues exactly after the last one it showed.

A line is made from the event's stored fields (the kind, the item, one
detail chosen per kind), never from console words. Usage events move the
cost badge instead of filling the feed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nightcrew.store.records import Store
from nightcrew.views.event_levels import level_of
from nightcrew.views.live import tool_line

QUIET = frozenset({"usage_seen"})  # shown by the cost badge, not as lines
FEED_LINES = 50
BATCH = 200  # events read per tick of a stream; the rest at once after
_DETAIL_WIDTH = 200
# The payload field that says the most about each kind, for its one line.
_DETAIL = {
    "tool_error": "excerpt",
    "text": "text",
    "thinking": "text",
    "decision": "reason",
    "run_finished": "message",
    "feature_rejected": "reason",
    "item_waits": "reason",
    "merge_rejected": "failed",
    "merge_checking": "items",
    "merge_conflict": "files",
    "worktree_ready": "branch",
    "branch_kept": "branch",
    "budget_warning": "name",
    "usage_limit_wait": "until",
    "session": "model",
    "routing": "why",
    "left_alone": "paths",
}


@dataclass(frozen=True)
class ActivityRow:
    id: int
    ts: str
    kind: str
    lane: int
    item: str  # "feature #3", or "" when the event names none
    detail: str
    level: str  # debug | info | warn | error (views/event_levels.py): its colour
    page: str = ""  # its item's page under the project's URL, "" when it names none


def latest(store: Store, limit: int = FEED_LINES) -> list[ActivityRow]:
    """The newest lines, newest first."""
    rows = store.db.execute(
        f"SELECT {_COLUMNS}"
        f" FROM events e {_ITEM_JOIN} WHERE e.kind NOT IN ({_quiet()})"
        " ORDER BY e.id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [_row(r) for r in rows]


def after(store: Store, last_id: int, limit: int = BATCH) -> tuple[list[ActivityRow], int, bool]:
    """The lines of the events after ``last_id``, oldest first; the id of the
    last event read (quiet ones included: the stream's id moves past them);
    whether more are left to read."""
    rows = store.db.execute(
        f"SELECT {_COLUMNS} FROM events e {_ITEM_JOIN} WHERE e.id > ? ORDER BY e.id LIMIT ?",
        (last_id, limit),
    ).fetchall()
    last = rows[-1][0] if rows else last_id
    return [_row(r) for r in rows if r[2] not in QUIET], last, len(rows) == limit


def last_event_id(store: Store) -> int:
    return int(store.db.execute("SELECT COALESCE(max(id), 0) FROM events").fetchone()[0])


_COLUMNS = (
    "e.id, e.ts, e.kind, e.payload_json, e.attempt_id, w.feature_id, w.number, w.key, w.run_id"
)
_ITEM_JOIN = (
    "LEFT JOIN attempts a ON a.id = e.attempt_id"
    " LEFT JOIN work_items w ON w.id = COALESCE(a.item_id,"
    " CAST(json_extract(e.payload_json, '$.item_id') AS INTEGER))"
)


def _quiet() -> str:
    return ", ".join(f"'{k}'" for k in sorted(QUIET))


def _row(r: Any) -> ActivityRow:
    event_id, ts, kind, payload_json, _attempt, feature_id, number, key, run_id = r
    try:
        payload = json.loads(payload_json)
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    item = str(payload.get("item") or "")
    if not item and feature_id is not None:
        item = f"feature #{feature_id}"
    elif not item and (number is not None or key is not None):
        item = f"batch {number if number is not None else key}"
    return ActivityRow(
        id=int(event_id),
        ts=ts,
        kind=kind,
        lane=int(payload.get("lane", 0) or 0),
        item=item,
        detail=_detail(kind, payload),
        level=level_of(kind, payload),
        page=_page(item, feature_id, run_id, key),
    )


def _page(item: str, feature_id: int | None, run_id: str | None, key: str | None) -> str:
    """The page of the work item the event was joined to (as
    :func:`nightcrew.views.live.item_page` names it), or of the feature it
    names (a lane's or the merge queue's events carry only its label)."""
    if feature_id is not None:
        return f"features/{feature_id}"
    if run_id is not None and key is not None:
        return f"runs/{run_id}/items/{key}"
    named = item.removeprefix("feature #")
    return f"features/{named}" if named != item and named.isdigit() else ""


def _detail(kind: str, payload: dict[str, Any]) -> str:
    if kind == "tool_call":
        tool_input = payload.get("input")
        return tool_line(
            str(payload.get("name", "?")), tool_input if isinstance(tool_input, dict) else {}
        )
    if kind == "tool_denied":
        return f"{payload.get('summary', '')} ({payload.get('reason', '')})"
    if kind == "merge_landed":
        return f"on {payload.get('branch', '?')} as {str(payload.get('sha', ''))[:10]}"
    if kind == "merge_queued":
        ahead = payload.get("ahead") or 0
        return f"{ahead} ahead in the merge queue" if ahead else "first in the merge queue"
    if kind == "claim_checked":
        return "confirmed" if payload.get("passed") else "refuted"
    value = payload.get(_DETAIL.get(kind, ""))
    if value is None:
        return ""
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    text = " ".join(str(value).split())
    return text if len(text) <= _DETAIL_WIDTH else text[: _DETAIL_WIDTH - 1] + "…"
