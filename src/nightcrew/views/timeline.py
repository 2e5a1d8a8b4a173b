"""What the dashboard's timeline (``/p/{key}/timeline``) reads besides the
event log itself (``views/event_log.py``, the same pages ``nightcrew logs``
prints): which run to show, and which lanes are thinking: a lane whose
latest agent event is its words or its thinking, with no tool call (and no
end of its attempt) after them."""

from __future__ import annotations

import json
from dataclasses import dataclass

from nightcrew.store.records import Store

THINKING_WIDTH = 140
_AGENT_KINDS = ("tool_call", "thinking", "text", "attempt_finished")
_LANE = "COALESCE(json_extract(e.payload_json, '$.lane'), a.lane, 0)"


@dataclass(frozen=True)
class LaneThought:
    lane: int  # 0: a run working in place
    thinking: bool  # its latest agent event is thinking or words
    excerpt: str  # those words, cut to one line
    event_id: int


def latest_run_id(store: Store) -> str | None:
    row = store.db.execute("SELECT id FROM runs ORDER BY started_at DESC, rowid DESC LIMIT 1")
    found = row.fetchone()
    return None if found is None else str(found[0])


def lane_thoughts(store: Store, run_id: str) -> list[LaneThought]:
    """Each lane of the run that the agent worked in, by lane, with whether it
    is thinking now (see the module's docstring)."""
    rows = store.db.execute(
        f"""
        SELECT lane, e2.id, e2.kind, e2.payload_json FROM (
            SELECT {_LANE} AS lane, max(e.id) AS last
            FROM events e LEFT JOIN attempts a ON a.id = e.attempt_id
            WHERE e.run_id = ? AND e.kind IN (SELECT value FROM json_each(?))
            GROUP BY 1
        ) JOIN events e2 ON e2.id = last
        ORDER BY lane
        """,
        (run_id, json.dumps(_AGENT_KINDS)),
    ).fetchall()
    out = []
    for lane, event_id, kind, payload_json in rows:
        thinking = kind in ("thinking", "text")
        text = ""
        if thinking:
            payload = json.loads(payload_json)
            flat = " ".join(str(payload.get("text", "")).split())
            text = flat if len(flat) <= THINKING_WIDTH else flat[: THINKING_WIDTH - 1] + "…"
        out.append(LaneThought(int(lane or 0), thinking, text, int(event_id)))
    return out
