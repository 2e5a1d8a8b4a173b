"""Usage reports as read models: what ``nightcrew usage`` shows, for the
project's own runs and for imported Claude Code transcripts.

Grouped and added up in SQLite (:mod:`nightcrew.views.usage_sql`); the rows
are the same :class:`~nightcrew.usage.ledger.Group` values the ledger makes
from entries, and the ledger remains the path for 5-hour blocks (which need
the entries in time order) and for sums too large for SQLite's integers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from pathlib import Path

from nightcrew.core.usage import Entry, TokenCounts
from nightcrew.store.records import Store
from nightcrew.store.usage_query import (
    ITEM_JOINS,
    ITEM_LABEL,
    KEPT_FROM,
    KEPT_WHERE,
    RECORD_TIME,
    parse_ts,
    project_entries,
    window,
)
from nightcrew.usage.globaldb import KEPT_RESPONSES, transcript_bounds, transcript_entries
from nightcrew.usage.ledger import Group, blocks, blocks_as_groups, group_entries
from nightcrew.usage.pricing import CostTotal, sum_costs
from nightcrew.views.usage_sql import TooLarge, fetch, group_of, merge, order, sums, time_key


def entry_groups(
    entries: Iterable[Entry], by: str, tz: tzinfo, *, in_time_order: bool = False
) -> list[Group]:
    """Groups of ``entries`` made in Python, streamed (the ledger's way)."""
    if by == "block":
        ordered = entries if in_time_order else sorted(entries, key=lambda e: e.ts)
        return blocks_as_groups(blocks(ordered))
    return group_entries(entries, by, tz)  # type: ignore[arg-type]


# ---- transcripts -----------------------------------------------------------------------

_TRANSCRIPT_KEYS = {
    "model": "r.model",
    "session": "COALESCE(NULLIF(r.session_id, ''), '(no session)')",
    "project": "COALESCE(NULLIF(r.project, ''), '(no project)')",
}


def transcript_groups(
    db: sqlite3.Connection, by: str, since: datetime | None, until: datetime | None, tz: tzinfo
) -> list[Group]:
    """Imported transcript usage grouped ``by`` day, week, month, model, session,
    project or block, each API response once."""
    key = _TRANSCRIPT_KEYS.get(by) or (time_key(by, "r.ts", tz) if by in _TIME else None)
    if key is not None:
        label = f"'week of ' || {key}" if by == "week" else key
        sql = f"SELECT {key}, {label}, {sums('r.', 'r.ts')} {KEPT_RESPONSES} GROUP BY 1"
        try:
            rows = fetch(db, sql, transcript_bounds(since, until))
        except TooLarge:
            pass
        else:
            return order([group_of(row, datetime.fromisoformat) for row in rows], by)
    # transcript_entries yields in time order, so blocks need no sort
    return entry_groups(transcript_entries(db, since, until), by, tz, in_time_order=True)


_TIME = ("day", "week", "month")


# ---- the project's own runs ------------------------------------------------------------


@dataclass(frozen=True)
class ModelOutcome:
    """How one model's attempts went: whether a model (or a routing rule that
    picks it) pays. ``attempts`` made with the model, how many of them passed,
    and how many work items those passed."""

    attempts: int
    passed: int
    items_passed: int

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.attempts if self.attempts else None


def cost_per_passed_item(cost: CostTotal, outcome: ModelOutcome) -> Decimal | None:
    """What each item a model passed cost, counting all of the model's attempts;
    unknown (None, never $0) when any cost is unknown or nothing passed."""
    if not cost.complete or cost.usd is None or outcome.items_passed == 0:
        return None
    return cost.usd / outcome.items_passed


@dataclass(frozen=True)
class ProjectReport:
    """One or several projects' usage ``by`` one key, and every project's total."""

    groups: list[Group]
    outcomes: dict[str, ModelOutcome]  # by model; only when grouped by model
    tokens: TokenCounts  # everything ever used, whatever the window
    cost: CostTotal
    first: datetime | None


def _project_key(by: str, tz: tzinfo) -> tuple[str, str] | None:
    """SQL for the key and label of a record, grouped ``by``."""
    item = f"COALESCE(NULLIF(a.run_id, ''), '(no run)') || '/' || {ITEM_LABEL}"
    keys = {
        "model": ("u.model", "u.model"),
        "run": ("COALESCE(NULLIF(a.run_id, ''), '(no run)')",) * 2,
        "item": (item, ITEM_LABEL),
        "session": ("COALESCE(NULLIF(a.session_id, ''), '(no session)')",) * 2,
        "project": (":project", ":project"),
    }
    if by in keys:
        return keys[by]
    if by in _TIME:
        key = time_key(by, RECORD_TIME, tz)
        if key is not None:
            return key, f"'week of ' || {key}" if by == "week" else key
    return None


def _outcome_columns(by: str) -> str:
    if by != "model":
        return ""
    passed = "CASE WHEN a.state = 'passed' THEN"
    return (
        ", count(DISTINCT a.id), count(DISTINCT " + passed + " a.id END),"
        " count(DISTINCT " + passed + " a.item_id END)"
    )


def _project_groups(
    store: Store,
    root: Path,
    by: str,
    *,
    run_id: str | None,
    since: datetime | None,
    until: datetime | None,
    tz: tzinfo,
) -> tuple[list[Group], dict[str, ModelOutcome]]:
    params = {**window(run_id, since, until), "project": str(root)}
    found = _project_key(by, tz)
    if found is not None:
        key, label = found
        joins = ITEM_JOINS if by == "item" else ""
        sql = (
            f"SELECT {key}, {label}, {sums('u.', RECORD_TIME)}{_outcome_columns(by)}"
            f" {KEPT_FROM} {joins} {KEPT_WHERE} GROUP BY 1"
        )
        try:
            rows = fetch(store.db, sql, params)
        except TooLarge:
            pass
        else:
            groups = [group_of(row, parse_ts) for row in rows]
            outcomes = {row[0]: ModelOutcome(*row[16:19]) for row in rows} if by == "model" else {}
            return groups, outcomes
    entries = project_entries(store, root, run_id=run_id, since=since, until=until)
    return entry_groups(entries, by, tz), {}


def _project_total(store: Store, root: Path) -> tuple[TokenCounts, CostTotal, datetime | None]:
    """Everything the project ever used, whatever the report's window."""
    sql = f"SELECT 'total', 'total', {sums('u.', RECORD_TIME)} {KEPT_FROM} {KEPT_WHERE}"
    try:
        [row] = fetch(store.db, sql, window(None, None, None))
    except TooLarge:
        every = project_entries(store, root)
        tokens = sum((e.tokens for e in every), TokenCounts())
        first = min((e.ts for e in every), default=None)
        return tokens, sum_costs(e.cost_usd for e in every), first
    if not row[2]:
        return TokenCounts(), CostTotal(Decimal(0), 0), None
    g = group_of(row, parse_ts)
    return g.tokens, g.cost, g.first


def project_report(
    stores: Sequence[tuple[Path, Store]],
    by: str,
    *,
    run_id: str | None,
    since: datetime | None,
    until: datetime | None,
    tz: tzinfo,
) -> ProjectReport:
    """Usage of the projects at ``stores`` (their root and open store), grouped
    ``by``; the groups of several projects are added up by key."""
    lists: list[list[Group]] = []
    outcomes: dict[str, ModelOutcome] = {}
    entries: list[Entry] = []  # only for blocks, which span projects
    tokens = TokenCounts()
    costs: list[CostTotal] = []
    first: datetime | None = None
    for root, store in stores:
        if by == "block":
            entries += project_entries(store, root, run_id=run_id, since=since, until=until)
        else:
            groups, seen = _project_groups(
                store, root, by, run_id=run_id, since=since, until=until, tz=tz
            )
            lists.append(groups)
            for model, o in seen.items():
                had = outcomes.get(model)
                outcomes[model] = o if had is None else _add_outcomes(had, o)
        t, cost, began = _project_total(store, root)
        tokens += t
        costs.append(cost)
        if began is not None and (first is None or began < first):
            first = began
    groups = entry_groups(entries, by, tz) if by == "block" else merge(lists, by)
    return ProjectReport(groups, outcomes, tokens, _merge_costs(costs), first)


def _add_outcomes(a: ModelOutcome, b: ModelOutcome) -> ModelOutcome:
    return ModelOutcome(
        a.attempts + b.attempts, a.passed + b.passed, a.items_passed + b.items_passed
    )


def _merge_costs(costs: list[CostTotal]) -> CostTotal:
    """Totals added as :func:`~nightcrew.usage.pricing.sum_costs` adds costs."""
    usd = Decimal(0)
    known = False
    unknown = 0
    for cost in costs:
        unknown += cost.unknown
        if cost.usd is not None:
            usd += cost.usd
            known = True
    return CostTotal(None if unknown and not known else usd, unknown)
