"""Adding up usage entries: groups, 5-hour billing blocks and forecasts.

Everything here is pure: it takes :class:`~nightcrew.core.usage.Entry` values (from the
project database or from imported Claude Code transcripts) and returns plain values for
``nightcrew usage`` to render. Nothing here reads a database, a clock (unless told to) or
a terminal, so every rule can be tested with a handful of hand-made entries.

Two rules hold throughout:

* An unknown cost is never $0. Totals are :class:`~nightcrew.usage.pricing.CostTotal`
  values that say "at least $X, N entries unknown", and ``usd`` is None only when every
  cost was unknown.
* Grouping streams. ``entries`` may be an iterator over half a million rows, so each
  group keeps running sums rather than a list of its entries.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Literal, get_args

from nightcrew.core.usage import Entry, TokenCounts
from nightcrew.usage.pricing import CostTotal

GroupBy = Literal["run", "item", "model", "day", "week", "month", "session", "project"]
GROUP_BYS: tuple[GroupBy, ...] = get_args(GroupBy)
_TIME_KEYS = frozenset({"day", "week", "month"})
_MISSING = {"run": "(no run)", "item": "(no item)", "session": "(no session)"}
_MISSING_PROJECT = "(no project)"
# Stands in for first/last of a total over nothing; renderers show it as "no time".
EMPTY_TIME = datetime(1970, 1, 1, tzinfo=UTC)


def cache_hit_ratio(tokens: TokenCounts) -> float | None:
    """Share of the prompt served from cache: how well prompt caching is paying off.

    None when there was no prompt at all, because 0% would claim caching failed.
    """
    prompt = tokens.input + tokens.cache_read + tokens.cache_write
    return tokens.cache_read / prompt if prompt else None


@dataclass(frozen=True)
class Group:
    """The sums for one row of a usage report."""

    key: str  # stable id of the row (a date, a run id, "run/item", ...)
    label: str  # what a person reads (an item's title, "week of 2026-11-16", ...)
    entries: int
    tokens: TokenCounts
    cost: CostTotal
    models: tuple[str, ...]  # sorted
    first: datetime  # earliest entry; EMPTY_TIME when entries == 0
    last: datetime  # latest entry; EMPTY_TIME when entries == 0

    @property
    def cache_hit_ratio(self) -> float | None:
        return cache_hit_ratio(self.tokens)


class _Sums:
    """Running sums for one group or block, so grouping never keeps the entries."""

    __slots__ = (
        "entries",
        "first",
        "inp",
        "known",
        "label",
        "last",
        "models",
        "out",
        "read",
        "unknown",
        "usd",
        "w1h",
        "w5m",
    )

    def __init__(self, label: str, ts: datetime) -> None:
        self.label = label
        self.entries = self.inp = self.out = self.read = self.w5m = self.w1h = 0
        self.known = self.unknown = 0
        self.usd = Decimal(0)
        self.models: set[str] = set()
        self.first = self.last = ts

    def add(self, e: Entry) -> None:
        self.entries += 1
        t = e.tokens
        self.inp += t.input
        self.out += t.output
        self.read += t.cache_read
        self.w5m += t.cache_write_5m
        self.w1h += t.cache_write_1h
        if e.cost_usd is None:
            self.unknown += 1
        else:
            self.usd += e.cost_usd
            self.known += 1
        self.models.add(e.model)
        if e.ts < self.first:
            self.first = e.ts
        elif e.ts > self.last:
            self.last = e.ts

    @property
    def tokens(self) -> TokenCounts:
        return TokenCounts(self.inp, self.out, self.read, self.w5m, self.w1h)

    @property
    def cost(self) -> CostTotal:
        # Same rule as sum_costs: None only when every cost was unknown.
        all_unknown = self.unknown > 0 and self.known == 0
        return CostTotal(None if all_unknown else self.usd, self.unknown)

    def group(self, key: str) -> Group:
        return Group(
            key,
            self.label,
            self.entries,
            self.tokens,
            self.cost,
            tuple(sorted(self.models)),
            self.first,
            self.last,
        )


def _monday(e: Entry, tz: tzinfo) -> str:
    day = e.ts.astimezone(tz).date()
    return (day - timedelta(days=day.weekday())).isoformat()


def _month(e: Entry, tz: tzinfo) -> str:
    local = e.ts.astimezone(tz)
    return f"{local.year:04d}-{local.month:02d}"


def _key_function(by: GroupBy, tz: tzinfo) -> Callable[[Entry], str]:
    """How one entry finds its row. Days, weeks and months are local to ``tz``, because
    "yesterday" means the user's yesterday, not UTC's."""
    keys: dict[str, Callable[[Entry], str]] = {
        "day": lambda e: e.ts.astimezone(tz).date().isoformat(),
        "week": lambda e: _monday(e, tz),
        "month": lambda e: _month(e, tz),
        "run": lambda e: e.run_id or _MISSING["run"],
        "item": lambda e: f"{e.run_id or _MISSING['run']}/{e.item or _MISSING['item']}",
        "session": lambda e: e.session or _MISSING["session"],
        "project": lambda e: e.project or _MISSING_PROJECT,
        "model": lambda e: e.model,
    }
    if by not in keys:
        raise ValueError(f"cannot group by {by!r}; expected one of {', '.join(GROUP_BYS)}")
    return keys[by]


def _label(by: GroupBy, key: str, e: Entry) -> str:
    if by == "week":
        return f"week of {key}"
    if by == "item":
        return e.item or _MISSING["item"]
    return key


def group_entries(entries: Iterable[Entry], by: GroupBy, tz: tzinfo) -> list[Group]:
    """One Group per distinct key, in one pass over ``entries``.

    Days, weeks (keyed by their Monday) and months sort by time; other keys sort by when
    they were first used, so runs and items read in the order they happened.
    """
    key_of = _key_function(by, tz)
    sums: dict[str, _Sums] = {}
    for e in entries:
        key = key_of(e)
        acc = sums.get(key)
        if acc is None:
            acc = sums[key] = _Sums(_label(by, key, e), e.ts)
        acc.add(e)
    groups = [acc.group(key) for key, acc in sums.items()]
    if by in _TIME_KEYS:
        groups.sort(key=lambda g: g.key)
    else:
        groups.sort(key=lambda g: (g.first, g.key))
    return groups


def merge_costs(costs: Iterable[CostTotal]) -> CostTotal:
    """Add totals together without letting "all unknown" turn into $0."""
    usd = Decimal(0)
    unknown = 0
    any_known = any_total = False
    for cost in costs:
        any_total = True
        unknown += cost.unknown
        if cost.usd is not None:
            usd += cost.usd
            any_known = True
    return CostTotal(None if any_total and not any_known else usd, unknown)


def totals(groups: Iterable[Group]) -> Group:
    """The bottom row of a report: every group added up, keyed "total"."""
    rows = list(groups)
    tokens = TokenCounts()
    models: set[str] = set()
    for g in rows:
        tokens += g.tokens
        models.update(g.models)
    return Group(
        "total",
        "total",
        sum(g.entries for g in rows),
        tokens,
        merge_costs(g.cost for g in rows),
        tuple(sorted(models)),
        min((g.first for g in rows), default=EMPTY_TIME),
        max((g.last for g in rows), default=EMPTY_TIME),
    )


# ---- 5-hour billing blocks ------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One billing window (or the idle gap between two), as ccusage draws them."""

    start: datetime  # UTC; for a usage block, its first entry floored to the hour
    end: datetime  # start + hours; for a gap, the next entry's time
    first: datetime | None  # actual first / last entry times; None for a gap
    last: datetime | None
    entries: int
    tokens: TokenCounts
    cost: CostTotal
    models: tuple[str, ...]
    is_gap: bool
    active: bool  # the window is still open and usage could still land in it


def _floor_hour(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _usage_block(start: datetime, acc: _Sums, span: timedelta, now: datetime) -> Block:
    end = start + span
    return Block(
        start=start,
        end=end,
        first=acc.first,
        last=acc.last,
        entries=acc.entries,
        tokens=acc.tokens,
        cost=acc.cost,
        models=tuple(sorted(acc.models)),
        is_gap=False,
        active=now < end and now - acc.last < span,
    )


def _gap_block(last: datetime, next_ts: datetime, span: timedelta) -> Block:
    # Mirrors ccusage: the gap starts when the last activity's window would have run out
    # (last entry + span) and ends at the next entry. That never overlaps the previous
    # block (which ends at most span after its last entry).
    return Block(
        start=(last + span).astimezone(UTC),
        end=next_ts.astimezone(UTC),
        first=None,
        last=None,
        entries=0,
        tokens=TokenCounts(),
        cost=CostTotal(Decimal(0), 0),
        models=(),
        is_gap=True,
        active=False,
    )


def blocks(entries: Iterable[Entry], *, hours: int = 5, now: datetime | None = None) -> list[Block]:
    """Split time-sorted entries into billing blocks with ccusage's rules (formats.md §2.3).

    A block starts at its first entry's time floored to the UTC hour. An entry opens a new
    block when it is *more than* ``hours`` after the block's start or after the previous
    entry; in the second case a gap block is put in between. ``now`` (default: the current
    time) decides which block is still active.
    """
    if hours <= 0:
        raise ValueError(f"a block must last at least one hour, not {hours}")
    span = timedelta(hours=hours)
    now = datetime.now(UTC) if now is None else now
    out: list[Block] = []
    current: tuple[datetime, _Sums] | None = None
    for e in entries:
        if current is not None:
            start, acc = current
            if e.ts < acc.last:
                raise ValueError(f"entries must be sorted by time: {e.ts} came after {acc.last}")
            idle = e.ts - acc.last
            if e.ts - start > span or idle > span:
                out.append(_usage_block(start, acc, span, now))
                if idle > span:
                    out.append(_gap_block(acc.last, e.ts, span))
                current = None
        if current is None:
            current = (_floor_hour(e.ts), _Sums("", e.ts))
        current[1].add(e)
    if current is not None:
        out.append(_usage_block(current[0], current[1], span, now))
    return out


def block_label(start: datetime, end: datetime) -> str:
    """A block's span as people read it, "2026-11-21 10:00–15:00 UTC".

    The end date is spelled out only when the block crosses midnight UTC.
    """
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    head = start.strftime("%Y-%m-%d %H:%M")
    tail = end.strftime("%H:%M") if end.date() == start.date() else end.strftime("%Y-%m-%d %H:%M")
    return f"{head}–{tail} UTC"


def blocks_as_groups(blocks: Iterable[Block]) -> list[Group]:
    """Usage blocks as report rows, so they render like any other grouping.

    Gap blocks are dropped: they hold no tokens and no cost, so as rows they would only
    add zeros; the idle time still shows as the jump between two rows' times. Callers
    that want to draw gaps have them in the Block list.
    """
    rows: list[Group] = []
    for b in blocks:
        if b.is_gap or b.first is None or b.last is None:
            continue
        label = block_label(b.start, b.end) + (" (active)" if b.active else "")
        rows.append(
            Group(
                b.start.isoformat(), label, b.entries, b.tokens, b.cost, b.models, b.first, b.last
            )
        )
    return rows


# ---- forecasts ------------------------------------------------------------------------


@dataclass(frozen=True)
class Forecast:
    """What the remaining work items will probably cost, from the ones already passed.

    Every cost and seconds field is a total for all ``remaining`` items: the median per
    item, the cheapest and the dearest, each times ``remaining``. Cost fields are None
    when no passed item had a known cost.
    """

    remaining: int
    samples: int  # passed items the forecast is drawn from
    cost_unknown: int  # of those, how many had an unknown cost (left out of the cost)
    cost_median: Decimal | None
    cost_low: Decimal | None
    cost_high: Decimal | None
    seconds_median: float
    seconds_low: float
    seconds_high: float


def forecast(done: Sequence[tuple[Decimal | None, float]], remaining: int) -> Forecast | None:
    """Project cost and time for ``remaining`` items from ``done`` = (cost, seconds) pairs.

    The median, not the mean, because one item that took ten attempts should not double
    the estimate; the min..max range shows how wrong it could be. None without samples.
    """
    if remaining < 0:
        raise ValueError(f"remaining must not be negative, got {remaining}")
    if not done:
        return None
    costs = [cost for cost, _ in done if cost is not None]
    seconds = [float(secs) for _, secs in done]
    n = Decimal(remaining)
    cost_median = cost_low = cost_high = None
    if costs:
        cost_median = statistics.median(costs) * n
        cost_low, cost_high = min(costs) * n, max(costs) * n
    return Forecast(
        remaining=remaining,
        samples=len(done),
        cost_unknown=len(done) - len(costs),
        cost_median=cost_median,
        cost_low=cost_low,
        cost_high=cost_high,
        seconds_median=statistics.median(seconds) * remaining,
        seconds_low=min(seconds) * remaining,
        seconds_high=max(seconds) * remaining,
    )
