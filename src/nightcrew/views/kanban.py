"""The backlog as a board: one column per shown state, one card per feature
with what a person sorts by (attempts, cost, dependencies). The dashboard's
Kanban page (``server/kanban_page.py``) presents it; the cost of every
feature is one aggregate query, never one query per card.

A manual feature that has not passed sits in its own column: build never
picks it, a person checks it (``backlog pass``). A feature whose dependency
failed or was skipped shows as blocked, as ``backlog list`` says.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from nightcrew.store.backlog import Backlog
from nightcrew.usage.pricing import CostTotal
from nightcrew.views.backlog import BacklogView

# The board's columns, left to right: (key, title).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("pending", "Pending"),
    ("in_progress", "In progress"),
    ("needs_input", "Needs input"),
    ("passed", "Passed"),
    ("failed", "Failed"),
    ("skipped", "Skipped"),
    ("blocked", "Blocked"),
    ("manual", "Manual"),
)

# Per feature: its attempts' known costs (decimal text) and how many ended
# with an unknown cost (a running one without a cost yet is neither).
_COST_SQL = """
SELECT w.feature_id,
       group_concat(a.cost_usd, ' '),
       SUM(a.cost_usd IS NULL AND (a.state != 'running' OR a.finished_at IS NOT NULL))
FROM attempts a JOIN work_items w ON w.id = a.item_id
WHERE w.feature_id IS NOT NULL
GROUP BY w.feature_id
"""


@dataclass(frozen=True)
class Card:
    id: int
    name: str
    category: str
    column: str
    state: str  # as ``backlog list`` shows it
    attempts: int
    cost: CostTotal | None  # None: nothing priced or finished yet ("—")
    depends_on: tuple[int, ...]
    blocked_by: tuple[int, ...]
    model: str | None
    priority: int
    input_request: str | None

    def as_json(self) -> dict[str, Any]:
        cost = self.cost
        return {
            "id": self.id,
            "name": self.name,
            "category": self.category,
            "column": self.column,
            "state": self.state,
            "attempts": self.attempts,
            "cost_usd": None if cost is None or cost.usd is None else float(cost.usd),
            "cost_unknown_attempts": 0 if cost is None else cost.unknown,
            "depends_on": list(self.depends_on),
            "blocked_by": list(self.blocked_by),
            "model": self.model,
            "priority": self.priority,
            "input_request": self.input_request,
        }


@dataclass(frozen=True)
class Board:
    columns: tuple[tuple[str, str, tuple[Card, ...]], ...]  # (key, title, cards)

    @property
    def cards(self) -> list[Card]:
        return [card for _, _, cards in self.columns for card in cards]

    def as_json(self) -> dict[str, Any]:
        return {
            "columns": [
                {"state": key, "title": title, "features": [c.as_json() for c in cards]}
                for key, title, cards in self.columns
            ]
        }


def feature_costs(backlog: Backlog) -> dict[int, CostTotal]:
    """The cost of every feature with a finished or priced attempt, across
    every build, by id: summed as Decimals from their stored text."""
    costs: dict[int, CostTotal] = {}
    rows = backlog.db.execute(_COST_SQL)
    for feature_id, texts, unknown in rows:
        known = [Decimal(t) for t in (texts or "").split()]
        if known or unknown:  # else only a running attempt, nothing priced yet: "—"
            usd = sum(known, Decimal(0)) if known else None
            costs[feature_id] = CostTotal(usd, int(unknown or 0))
    return costs


def board(backlog: Backlog) -> Board:
    """The whole backlog as columns, each in backlog order."""
    features = backlog.features()
    view = BacklogView(features)
    costs = feature_costs(backlog)
    by_column: dict[str, list[Card]] = {key: [] for key, _ in COLUMNS}
    for f in features:
        state = view.states[f.id]
        column = "manual" if f.manual and state in ("pending", "blocked") else state
        by_column.setdefault(column, []).append(
            Card(
                id=f.id,
                name=f.name,
                category=f.category,
                column=column,
                state=state,
                attempts=f.attempts,
                cost=costs.get(f.id),
                depends_on=f.depends_on,
                blocked_by=tuple(view.blocked.get(f.id, ())),
                model=f.model,
                priority=f.priority,
                input_request=f.input_request,
            )
        )
    return Board(tuple((key, title, tuple(by_column[key])) for key, title in COLUMNS))
