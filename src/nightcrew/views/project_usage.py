"""What ``nightcrew usage`` shows of nightcrew's own runs: one or several
projects' usage grouped by run, item, model, day, week, month, session, project
or 5-hour block, every call counted once, added up in SQLite
(:mod:`nightcrew.views.usage_sql`); and, by model, how each model's attempts
went (pass rate, cost per passed item)."""

from __future__ import annotations

from collections.abc import Sequence
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
from nightcrew.usage.ledger import Group, totals
from nightcrew.usage.pricing import CostTotal, sum_costs
from nightcrew.views.outcomes import ModelOutcome
from nightcrew.views.usage_sql import (
    TIME_KEYS,
    LocalDays,
    Query,
    TooLarge,
    entry_groups,
    group_of,
    local_groups,
    merge,
)


@dataclass(frozen=True)
class ProjectReport:
    """One or several projects' usage grouped one way, and everything they ever used."""

    groups: list[Group]
    outcomes: dict[str, ModelOutcome]  # by model, when grouped by model
    tokens: TokenCounts  # everything ever used, whatever the window
    cost: CostTotal
    first: datetime | None


_RUN = "COALESCE(NULLIF(a.run_id, ''), '(no run)')"
_KEYS = {
    "model": ("u.model", "u.model"),
    "run": (_RUN, _RUN),
    "item": (f"{_RUN} || '/' || {ITEM_LABEL}", ITEM_LABEL),
    "session": ("COALESCE(NULLIF(a.session_id, ''), '(no session)')",) * 2,
    "project": (":project", ":project"),
}
_PASSED = "CASE WHEN a.state = 'passed' THEN"
_QUERY = Query(f"{KEPT_FROM} {KEPT_WHERE}", "u.", RECORD_TIME)
_BY_ITEM = Query(f"{KEPT_FROM} {ITEM_JOINS} {KEPT_WHERE}", "u.", RECORD_TIME)
_BY_MODEL = Query(
    f"{KEPT_FROM} {KEPT_WHERE}",
    "u.",
    RECORD_TIME,
    aggregates=f"count(DISTINCT a.id), count(DISTINCT {_PASSED} a.id END),"
    f" count(DISTINCT {_PASSED} a.item_id END)",
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
    """One project's groups, and by model its models' outcomes."""
    params = {**window(run_id, since, until), "project": str(root)}
    days = LocalDays.of(RECORD_TIME, tz) if by in TIME_KEYS else None
    try:
        if days is not None:
            rows = _QUERY.rows(store.db, days.key, days.label, params)
            return local_groups(rows, by, days, parse_ts), {}
        if by in _KEYS:
            query = _BY_MODEL if by == "model" else _BY_ITEM if by == "item" else _QUERY
            rows = query.rows(store.db, *_KEYS[by], params)
            groups = [group_of(row, parse_ts) for row in rows]
            outcomes = {row[0]: ModelOutcome(*row[18:21]) for row in rows} if by == "model" else {}
            return groups, outcomes
    except TooLarge:
        pass
    entries = project_entries(store, root, run_id=run_id, since=since, until=until)
    return entry_groups(entries, by, tz), {}


def _project_total(store: Store, root: Path) -> tuple[TokenCounts, CostTotal, datetime | None]:
    """Everything the project ever used, whatever the report's window."""
    try:
        rows = _QUERY.rows(store.db, "'total'", "'total'", window(None, None, None))
    except TooLarge:
        every = project_entries(store, root)
        tokens = sum((e.tokens for e in every), TokenCounts())
        return (
            tokens,
            sum_costs(e.cost_usd for e in every),
            min((e.ts for e in every), default=None),
        )
    if not rows:
        return TokenCounts(), CostTotal(Decimal(0), 0), None
    g = group_of(rows[0], parse_ts)
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
            for model, outcome in seen.items():
                had = outcomes.get(model)
                outcomes[model] = outcome if had is None else had + outcome
        if run_id is None and since is None and until is None and by != "block":
            total = totals(groups)  # the groups are everything: no second pass
            t, cost, began = total.tokens, total.cost, total.first if total.entries else None
        else:
            t, cost, began = _project_total(store, root)
        tokens += t
        costs.append(cost)
        if began is not None and (first is None or began < first):
            first = began
    groups = entry_groups(entries, by, tz) if by == "block" else merge(lists, by)
    return ProjectReport(groups, outcomes, tokens, _merge_costs(costs), first)


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
