"""What the dashboard's charts draw (``/p/{key}/charts``), added up by
SQLite: cost and tokens per day by model, cost per feature, and the
cache-hit ratio of each attempt. Each API call is counted once (the
``final`` rows of an attempt when it has them, else its ``response`` rows:
``store/usage_query.KEPT_FROM``), and an unknown cost stays unknown: a sum
is a :class:`~nightcrew.usage.pricing.CostTotal` that counts the calls
nobody could price, never a $0 in their place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from nightcrew.core.usage import TokenCounts
from nightcrew.store.records import Store
from nightcrew.store.usage_query import (
    ITEM_JOINS,
    KEPT_FROM,
    KEPT_WHERE,
    RECORD_TIME,
    parse_ts,
    window,
)
from nightcrew.usage.ledger import Group
from nightcrew.usage.pricing import CostTotal
from nightcrew.views.project_overview import local_tz
from nightcrew.views.usage_sql import LocalDays, Query, TooLarge, add, group_of

DAYS = 30
TOP_FEATURES = 20
ATTEMPTS = 60


@dataclass(frozen=True)
class DayModel:
    day: date
    model: str
    tokens: TokenCounts
    cost: CostTotal


@dataclass(frozen=True)
class FeatureCost:
    feature_id: int
    name: str
    attempts: int
    tokens: TokenCounts
    cost: CostTotal


@dataclass(frozen=True)
class AttemptCache:
    attempt_id: int
    label: str  # "#3 a2": the feature (or batch) and the attempt's number in it
    model: str | None
    cache_read: int
    prompt: int  # input + cache read + cache write: every prompt token

    @property
    def ratio(self) -> float | None:
        """cache_read / (input + cache_read + cache_write); None without a prompt token."""
        return self.cache_read / self.prompt if self.prompt else None


def day_range(
    now: datetime | None = None, tz: tzinfo | None = None, days: int = DAYS
) -> list[date]:
    zone = tz or local_tz()
    today = (now or datetime.now(UTC)).astimezone(zone).date()
    return [today - timedelta(days=days - 1 - n) for n in range(days)]


def daily_by_model(
    store: Store, *, now: datetime | None = None, tz: tzinfo | None = None, days: int = DAYS
) -> list[DayModel]:
    """Tokens and cost of each model on each local day of the last ``days``
    (days without use are absent), by day then model."""
    zone = tz or local_tz()
    span = day_range(now, zone, days)
    since = datetime(span[0].year, span[0].month, span[0].day, tzinfo=zone)
    local = LocalDays.of(RECORD_TIME, zone)
    if local is None:  # an offset of odd seconds: count UTC days
        local = LocalDays(f"substr({RECORD_TIME}, 1, 10)", "0", 0)
    query = Query(f"{KEPT_FROM} {KEPT_WHERE}", "u.", RECORD_TIME)
    key = f"{local.key} || '|' || {local.label} || '|' || u.model"
    try:
        rows = query.rows(store.db, key, "u.model", window(None, since, None))
    except TooLarge:
        return []
    groups: dict[tuple[date, str], Group] = {}
    for row in rows:
        utc_date, shifted, model = str(row[0]).split("|", 2)
        day = date.fromisoformat(local.key_of("day", utc_date, int(shifted))[0])
        if day < span[0]:
            continue
        g = group_of(row, parse_ts)
        seen = groups.get((day, model))
        groups[(day, model)] = g if seen is None else add(seen, g)
    return [DayModel(d, m, g.tokens, g.cost) for (d, m), g in sorted(groups.items())]


def cost_per_feature(store: Store, top: int = TOP_FEATURES) -> tuple[list[FeatureCost], int]:
    """The ``top`` dearest features over every run (known dollars first, then
    the ones whose cost is wholly unknown), and how many features spent at all."""
    query = Query(
        f"{KEPT_FROM} {ITEM_JOINS} {KEPT_WHERE} AND w.feature_id IS NOT NULL",
        "u.",
        RECORD_TIME,
        aggregates="count(DISTINCT a.id)",
    )
    try:
        rows = query.rows(store.db, "w.feature_id", "w.feature_id", window(None, None, None))
    except TooLarge:
        return [], 0
    names = dict(store.db.execute("SELECT id, name FROM features").fetchall())
    found = []
    for row in rows:
        g = group_of(row, parse_ts)
        fid = int(row[0])
        found.append(
            FeatureCost(fid, str(names.get(fid, f"feature #{fid}")), int(row[18]), g.tokens, g.cost)
        )
    found.sort(key=lambda f: (f.cost.usd is None, -(f.cost.usd or 0), f.feature_id))
    return found[:top], len(found)


_CACHE_SQL = f"""
SELECT a.id, COALESCE('#' || w.feature_id, 'batch ' || COALESCE(w.number, w.key)),
       (SELECT count(*) FROM attempts b WHERE b.item_id = a.item_id AND b.id <= a.id),
       a.model, sum(u.cache_read_tokens),
       sum(u.input_tokens + u.cache_read_tokens + u.cache_write_5m_tokens
           + u.cache_write_1h_tokens)
{KEPT_FROM} JOIN work_items w ON w.id = a.item_id
{KEPT_WHERE}
GROUP BY a.id ORDER BY a.id DESC LIMIT :limit
"""


def cache_per_attempt(store: Store, limit: int = ATTEMPTS) -> list[AttemptCache]:
    """The cache-hit ratio of the latest ``limit`` attempts that used tokens, oldest first."""
    rows = store.db.execute(_CACHE_SQL, {**window(None, None, None), "limit": limit}).fetchall()
    return [
        AttemptCache(int(r[0]), f"{r[1]} a{r[2]}", r[3], int(r[4] or 0), int(r[5] or 0))
        for r in reversed(rows)
    ]
