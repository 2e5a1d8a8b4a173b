"""What ``nightcrew status --watch`` shows of a run in progress in another
process: the live console's panel (one line per lane, the merge queue, the
money so far), from the store alone.

Each lane is :mod:`views.lanes`' row (a run in place is lane 0), with the tool
its running attempt called last (the stored ``tool_call`` events; the console
takes it from its progress snapshots, which are not stored). The money is the
settled attempts' cost plus what the running ones' responses were priced at so
far, as the build's own panel counts it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from nightcrew.core.states import ItemState, RunState
from nightcrew.core.usage import TokenCounts
from nightcrew.engine.liveness import orchestrator_gone
from nightcrew.engine.recording import describe_tool
from nightcrew.store.records import RunRow, Store
from nightcrew.store.usage_query import responses_cost
from nightcrew.views.lanes import AGENT, LandedRow, LaneRow, QueuedRow, in_place_row, lanes_view

_DONE = frozenset({ItemState.PASSED, ItemState.FAILED, ItemState.SKIPPED, ItemState.BLOCKED})


@dataclass(frozen=True)
class WatchedLane:
    row: LaneRow
    tool: str | None  # its running agent's latest tool call: "Bash: pytest -q"


@dataclass(frozen=True)
class RunWatch:
    run_id: str
    build: bool  # a backlog build (features), else a plan's run (batches)
    state: str  # the run's state
    started_at: str
    items: int  # batches or features in the run
    done: int  # of them, finished one way or another
    backlog: dict[str, int]  # a build's backlog: features by state (a plan's run: empty)
    lanes: tuple[WatchedLane, ...]
    merge_queue: tuple[QueuedRow, ...]
    landed: tuple[LandedRow, ...]
    cost_usd: Decimal | None  # settled and in flight; None: nothing known yet
    cost_unknown: bool  # some of it is unknown: the cost is at least that
    tokens: TokenCounts
    budget_usd: Decimal | None  # the run's --max-budget-usd


def run_in_progress(store: Store) -> RunRow | None:
    """The project's latest run when it is running and its process is alive."""
    run = store.latest_run()
    if run is None or run.state != RunState.RUNNING or orchestrator_gone(store, run) is not None:
        return None
    return run


def run_watch(store: Store, run_id: str, root: Path, *, now: datetime | None = None) -> RunWatch:
    """The panel's facts for ``run_id`` now (``root``: where tool paths are named from)."""
    run = store.run(run_id)
    view = lanes_view(store, run_id, now=now)
    rows: tuple[LaneRow, ...] = view.lanes
    if not rows:
        alone = in_place_row(store, run_id, now=now)
        rows = (alone,) if alone is not None else ()
    tools = _latest_tools(store, run_id, root)
    items = store.items(run_id)
    attempts = store.attempts(run_id=run_id)
    totals = store.totals(attempts)
    cost, unknown = totals.cost_usd, totals.unknown_cost > 0
    flying, flying_unknown = _in_flight(store, [a.id for a in attempts if a.finished_at is None])
    if flying is not None:
        cost = flying if cost is None else cost + flying
    budget = run.config.get("max_budget_usd")
    return RunWatch(
        run_id=run.id,
        build=run.kind == "backlog",
        state=str(run.state),
        started_at=run.started_at,
        items=len(items),
        done=sum(1 for i in items if i.state in _DONE),
        backlog=_backlog(store) if run.kind == "backlog" else {},
        lanes=tuple(
            WatchedLane(r, tools.get((r.lane, r.attempt or 0)) if r.phase == AGENT else None)
            for r in rows
        ),
        merge_queue=view.merge_queue,
        landed=view.landed,
        # nothing spent yet is $0; only an unknown price makes it unknown
        cost_usd=cost if cost is not None or unknown or flying_unknown else Decimal(0),
        cost_unknown=unknown or flying_unknown,
        tokens=totals.tokens,
        budget_usd=Decimal(str(budget)) if isinstance(budget, int | float) else None,
    )


def _backlog(store: Store) -> dict[str, int]:
    rows = store.db.execute("SELECT state, COUNT(*) FROM features GROUP BY state").fetchall()
    return {str(state): int(count) for state, count in rows}


def _latest_tools(store: Store, run_id: str, root: Path) -> dict[tuple[int, int], str]:
    """(lane, attempt number) → the latest tool call of each running attempt."""
    found: dict[tuple[int, int], str] = {}
    for attempt in store.attempts(run_id=run_id):
        if attempt.finished_at is not None:
            continue
        row = store.db.execute(
            "SELECT payload_json FROM events WHERE run_id = ? AND attempt_id = ?"
            " AND kind = 'tool_call' ORDER BY id DESC LIMIT 1",
            (run_id, attempt.id),
        ).fetchone()
        if row is None:
            continue
        payload: dict[str, Any] = json.loads(row[0])
        tool_input = payload.get("input")
        found[(attempt.lane or 0, attempt.number)] = describe_tool(
            str(payload.get("name", "a tool")),
            tool_input if isinstance(tool_input, dict) else {},
            root,
        )
    return found


def _in_flight(store: Store, attempt_ids: list[int]) -> tuple[Decimal | None, bool]:
    """What the running attempts' responses were priced at so far."""
    total: Decimal | None = None
    unknown = False
    for attempt_id in attempt_ids:
        so_far, some_unknown = responses_cost(store, attempt_id)
        unknown = unknown or some_unknown
        if so_far is not None:
            total = so_far if total is None else total + so_far
    return total, unknown
