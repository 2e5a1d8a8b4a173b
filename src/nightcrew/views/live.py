"""A project's latest run as the dashboard shows it live: the run's cost so far
(the header's badge), one card per lane with its current tool, the merge
queue, and the budgets with what each has spent.

The build runs in another process, so everything comes from the store. Lanes
of a parallel build are :mod:`nightcrew.views.lanes`' rows; a run with one
lane working in place has none there, so its running attempt becomes lane 0's
card here. Money is summed as the store holds it (exact decimals); nothing is
priced here, and a cost nobody knows stays unknown, never $0.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from nightcrew.core.states import AttemptState, RunState
from nightcrew.engine.liveness import orchestrator_gone
from nightcrew.store.records import AttemptRow, ItemRow, Store
from nightcrew.store.rows import RunRow
from nightcrew.store.usage_query import parse_ts
from nightcrew.usage.pricing import CostTotal, sum_costs
from nightcrew.views.lanes import AGENT, GATES, LandedRow, QueuedRow, lanes_view
from nightcrew.views.usage_sql import TooLarge, cost_total, exact_cost_columns, fetch

BUSY_PHASES = frozenset({AGENT, GATES, "merge queue", "starting"})
_TOOL_KEYS = ("command", "file_path", "path", "pattern")
_TOOL_WIDTH = 80


@dataclass(frozen=True)
class RunHeader:
    id: str
    kind: str  # plan | backlog
    state: str  # "crashed" for a running run whose process is gone
    started_at: str
    finished_at: str | None
    message: str | None
    live: bool  # running, and its process is alive

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": "build" if self.kind == "backlog" else self.kind,
            "state": self.state,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "message": self.message,
            "live": self.live,
        }


@dataclass(frozen=True)
class LaneCard:
    """What one lane is doing: its feature (or batch), phase, model, current
    tool, the attempt's elapsed time and the item's cost so far."""

    lane: int  # 0: the run's one lane, in place
    item: str  # "feature #7", "batch 2"
    title: str
    phase: str
    attempt: int | None
    model: str | None
    tool: str | None  # "Bash: pytest -q" while its agent works
    elapsed_s: float | None
    cost: CostTotal | None  # None: nothing spent yet
    page: str | None = None  # its item's page under the project's URL (item_page)

    @property
    def busy(self) -> bool:
        return self.phase in BUSY_PHASES

    def as_json(self) -> dict[str, Any]:
        return {
            "lane": self.lane,
            "item": self.item,
            "title": self.title,
            "phase": self.phase,
            "attempt": self.attempt,
            "model": self.model,
            "tool": self.tool,
            "elapsed_s": None if self.elapsed_s is None else round(self.elapsed_s, 1),
            **cost_json(self.cost),
        }


@dataclass(frozen=True)
class BudgetBar:
    """A budget that is set, with what it has spent (known costs; ``unknown``
    counts the costs that could not be added)."""

    key: str  # run | item:<id> | today | total
    name: str  # what it is the budget of: "this run", "feature #3", "today", "in total"
    setting: str  # where its limit is set: "--max-budget-usd", "daily_budget_usd"
    limit_usd: Decimal
    spent_usd: Decimal
    unknown: int

    @property
    def fraction(self) -> float:
        return min(1.0, float(self.spent_usd / self.limit_usd)) if self.limit_usd > 0 else 1.0

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "setting": self.setting,
            "limit_usd": float(self.limit_usd),
            "spent_usd": float(self.spent_usd),
            "cost_unknown": self.unknown,
        }


@dataclass(frozen=True)
class LiveView:
    run: RunHeader | None  # None: nightcrew has not run here yet
    cost: CostTotal  # the run's so far: settled attempts and running ones' responses
    lanes: tuple[LaneCard, ...]
    merge_queue: tuple[QueuedRow, ...]
    landed: tuple[LandedRow, ...]
    budgets: tuple[BudgetBar, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "run": None if self.run is None else self.run.as_json(),
            **cost_json(self.cost),
            "lanes": [c.as_json() for c in self.lanes],
            "merge_queue": [q.as_json() for q in self.merge_queue],
            "landed": [r.as_json() for r in self.landed],
            "budgets": [b.as_json() for b in self.budgets],
        }


def cost_json(cost: CostTotal | None) -> dict[str, Any]:
    """A cost as JSON: ``cost_usd`` null when nothing is known, and how many
    costs are unknown (the amount is then at least that)."""
    if cost is None:
        return {"cost_usd": None, "cost_unknown": 0}
    return {
        "cost_usd": None if cost.usd is None else float(cost.usd),
        "cost_unknown": cost.unknown,
    }


def live_view(
    store: Store,
    *,
    today: CostTotal,
    total: CostTotal,
    now: datetime | None = None,
) -> LiveView:
    """The project's latest run, live. ``today`` and ``total`` are the
    project's spend (from :mod:`nightcrew.views.project_overview`), for the
    daily and total budgets."""
    run = store.latest_run()
    if run is None:
        return LiveView(None, CostTotal(Decimal(0), 0), (), (), (), ())
    at = now or datetime.now(UTC)
    header = run_header(store, run)
    running = _running_attempts(store, run.id)
    costs = item_costs(store, run.id)
    lanes = lanes_view(store, run.id, now=at)
    items = {i.id: i for i in store.items(run.id)}
    tools = _current_tools(store, running)
    cards: list[LaneCard] = []
    if lanes.lanes:
        for row in lanes.lanes:
            item = next((i for i in items.values() if label_of(i) == row.item), None)
            attempt = _attempt_of(running, item, row.attempt)
            cards.append(
                LaneCard(
                    lane=row.lane,
                    item=row.item,
                    title=row.title,
                    phase=row.phase,
                    attempt=row.attempt,
                    model=row.model,
                    tool=tools.get(attempt.id) if attempt and row.phase == AGENT else None,
                    elapsed_s=row.elapsed_s,
                    cost=costs.get(item.id) if item else None,
                    page=item_page(item) if item else None,
                )
            )
    elif header.live:
        cards.extend(_in_place_card(a, items[a.item_id], costs, tools, at) for a in running)
    run_cost = _sum_totals(costs.values())
    return LiveView(
        header,
        run_cost,
        tuple(cards),
        lanes.merge_queue,
        lanes.landed,
        budget_bars(run, items, cards, costs, run_cost, today=today, total=total),
    )


def run_header(store: Store, run: RunRow) -> RunHeader:
    gone = orchestrator_gone(store, run)
    return RunHeader(
        id=run.id,
        kind=run.kind,
        state="crashed" if gone is not None else str(run.state),
        started_at=run.started_at,
        finished_at=run.finished_at,
        message=run.message,
        live=run.state == RunState.RUNNING and gone is None,
    )


def item_page(item: ItemRow) -> str:
    """Where the dashboard shows the item, under the project's URL: a build's
    item is its feature's page, a plan's batch the run's item page."""
    if item.feature_id is not None:
        return f"features/{item.feature_id}"
    return f"runs/{item.run_id}/items/{item.key}"


def label_of(item: ItemRow) -> str:
    """How a person (and the build's events) name the item."""
    if item.feature_id is not None:
        return f"feature #{item.feature_id}"
    return f"batch {item.number if item.number is not None else item.key}"


# Each item's settled attempts' costs, added up in SQLite through the covering
# index attempts(run_id, item_id, state, finished_at, cost_usd) of m011: the
# columns cost_total takes, which give what sum_costs gives for those costs.
_SETTLED_COSTS = (
    f"SELECT item_id, {exact_cost_columns('cost_usd')} FROM attempts"
    " WHERE run_id = :run AND NOT (finished_at IS NULL AND state = :running) GROUP BY item_id"
)


def item_costs(store: Store, run_id: str) -> dict[int, CostTotal]:
    """Each item's spend in the run: its settled attempts' costs and what its
    running attempts' responses have been priced at so far (a long build has
    tens of thousands of attempts: they are added up in SQLite)."""
    try:
        rows = fetch(store.db, _SETTLED_COSTS, {"run": run_id, "running": AttemptState.RUNNING})
    except TooLarge:
        return _item_costs_one_by_one(store, run_id)
    totals = {int(item): cost_total(*columns) for item, *columns in rows}
    running = dict(
        store.db.execute(
            "SELECT id, item_id FROM attempts WHERE run_id = ? AND finished_at IS NULL"
            " AND state = ?",
            (run_id, AttemptState.RUNNING),
        ).fetchall()
    )
    for item, costs in _running_costs(store, running).items():
        totals[item] = _plus(totals.get(item), sum_costs(costs))
    return totals


def _plus(settled: CostTotal | None, live: CostTotal) -> CostTotal:
    """Two costs as one, as :func:`sum_costs` adds their parts."""
    if settled is None:
        return live
    if settled.usd is None or live.usd is None:
        usd = live.usd if settled.usd is None else settled.usd
    else:
        usd = settled.usd + live.usd
    return CostTotal(usd, settled.unknown + live.unknown)


def _running_costs(store: Store, running: Mapping[int, int]) -> dict[int, list[Decimal | None]]:
    """The priced responses of the running attempts (attempt → item), by item."""
    by_item: dict[int, list[Decimal | None]] = {}
    if running:
        rows = store.db.execute(
            "SELECT attempt_id, cost_usd FROM usage_records WHERE kind = 'response'"
            " AND attempt_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(running)),),
        )
        for attempt_id, usd in rows:
            by_item.setdefault(running[attempt_id], []).append(
                None if usd is None else Decimal(usd)
            )
    return by_item


def _item_costs_one_by_one(store: Store, run_id: str) -> dict[int, CostTotal]:
    """:func:`item_costs` in Python, cost by cost: for sums SQLite's integers
    cannot hold."""
    by_item: dict[int, list[Decimal | None]] = {}
    running: dict[int, int] = {}  # attempt → item
    rows = store.db.execute(
        "SELECT id, item_id, cost_usd, finished_at IS NULL AND state = ? FROM attempts"
        " WHERE run_id = ?",
        (AttemptState.RUNNING, run_id),
    )
    for attempt_id, item_id, usd, live in rows:
        costs = by_item.setdefault(item_id, [])
        if live:
            running[attempt_id] = item_id
        else:
            costs.append(None if usd is None else Decimal(usd))
    for item, costs in _running_costs(store, running).items():
        by_item[item] += costs
    return {item: sum_costs(costs) for item, costs in by_item.items() if costs}


def tool_line(name: str, tool_input: Mapping[str, Any]) -> str:
    """``Bash: pytest -q``, ``Edit: src/cart.py``: the part of a tool call a
    person needs to see, on one line."""
    for key in _TOOL_KEYS:
        value = tool_input.get(key)
        if isinstance(value, str) and value.strip():
            first = value.strip().splitlines()[0]
            if len(first) > _TOOL_WIDTH:
                first = first[: _TOOL_WIDTH - 1] + "…"
            return f"{name}: {first}"
    return name


def budget_bars(
    run: RunRow,
    items: Mapping[int, ItemRow],
    cards: Iterable[LaneCard],
    costs: Mapping[int, CostTotal],
    run_cost: CostTotal,
    *,
    today: CostTotal,
    total: CostTotal,
) -> tuple[BudgetBar, ...]:
    """The budgets the run was started with (its stored settings), each with
    what it has spent; a per-item budget once for each item a lane is on."""
    config = run.config
    bars: list[BudgetBar] = []

    def add(key: str, name: str, setting: str, spent: CostTotal) -> None:
        limit = config.get(setting)
        if isinstance(limit, int | float) and not isinstance(limit, bool):
            usd = spent.usd if spent.usd is not None else Decimal(0)
            command_line = key == "run" or key.startswith("item:")  # else config only
            flag = f"--{setting.replace('_', '-')}" if command_line else setting
            bars.append(BudgetBar(key, name, flag, Decimal(str(limit)), usd, spent.unknown))

    add("run", "this run", "max_budget_usd", run_cost)
    by_label = {label_of(i): i for i in items.values()}
    for card in cards:
        item = by_label.get(card.item)
        if item is not None and card.busy:
            spent = costs.get(item.id, CostTotal(Decimal(0), 0))
            add(f"item:{item.id}", card.item, "max_item_usd", spent)
    add("today", "today", "daily_budget_usd", today)
    add("total", "in total", "total_budget_usd", total)
    return tuple(bars)


def _sum_totals(totals: Iterable[CostTotal]) -> CostTotal:
    usd = Decimal(0)
    known = False
    unknown = 0
    for t in totals:
        unknown += t.unknown
        if t.usd is not None:
            usd += t.usd
            known = True
    return CostTotal(None if unknown and not known else usd, unknown)


def _attempt_of(
    attempts: Iterable[AttemptRow], item: ItemRow | None, number: int | None
) -> AttemptRow | None:
    if item is None or number is None:
        return None
    return next((a for a in attempts if a.item_id == item.id and a.number == number), None)


def _running_attempts(store: Store, run_id: str) -> list[AttemptRow]:
    rows = store.db.execute(
        "SELECT * FROM attempts WHERE run_id = ? AND finished_at IS NULL AND state = ? ORDER BY id",
        (run_id, AttemptState.RUNNING),
    )
    return [AttemptRow.from_row(r) for r in rows]


def _current_tools(store: Store, running: list[AttemptRow]) -> dict[int, str]:
    """Each running attempt's latest tool call, as a line."""
    if not running:
        return {}
    rows = store.db.execute(
        "SELECT attempt_id, payload_json FROM events WHERE id IN ("
        " SELECT max(id) FROM events WHERE kind = 'tool_call'"
        " AND attempt_id IN (SELECT value FROM json_each(?)) GROUP BY attempt_id)",
        (json.dumps([a.id for a in running]),),
    )
    tools = {}
    for attempt_id, payload in rows:
        data = json.loads(payload)
        tool_input = data.get("input")
        tools[int(attempt_id)] = tool_line(
            str(data.get("name", "?")), tool_input if isinstance(tool_input, dict) else {}
        )
    return tools


def _in_place_card(
    attempt: AttemptRow,
    item: ItemRow,
    costs: Mapping[int, CostTotal],
    tools: Mapping[int, str],
    now: datetime,
) -> LaneCard:
    """The run's one lane, in place: its running attempt."""
    phase = GATES if attempt.agent_seconds is not None else AGENT
    return LaneCard(
        lane=0,
        item=label_of(item),
        title=item.title,
        phase=phase,
        attempt=attempt.number,
        model=attempt.model,
        tool=tools.get(attempt.id) if phase == AGENT else None,
        elapsed_s=max(0.0, (now - parse_ts(attempt.started_at)).total_seconds()),
        cost=costs.get(item.id),
        page=item_page(item),
    )
