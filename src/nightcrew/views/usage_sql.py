"""Usage sums computed by SQLite: the pieces both report sources share.

A report needs sums per row (tokens, dollars, how many costs are unknown, the
models, the first and last time), not one Python object per API response. So
the grouping and the adding up happen in SQL, and Python only builds one
:class:`~nightcrew.usage.ledger.Group` per row of the report.

Dollars are stored as exact decimal text, and SQLite has no decimal type: its
``sum()`` of text is a float. So each cost is read as a whole number of
picodollars (rounded from a double that is off by far less than half of one,
see :func:`_plain`) and summed as an integer, which is exact; the longest
fraction is kept too, so the sum has the same exponent as Python's ``Decimal``
sum (``0.10 + 0.2`` is ``0.30``: the CSV prints it). A cost that cannot be read
that way (``3E-7``, more than 12 fraction digits, $1000 or more) is handed back
as text and added in Python. A sum too large for 64 bits is :class:`TooLarge`;
the caller then adds up entries in Python instead.

Local days, weeks and months use the one UTC offset the reports use
(``datetime.now(UTC).astimezone()``'s). Stored times are UTC text
(``2026-11-21T09:39:44.440+00:00``), so SQL groups by the UTC date and by
whether the time of day is past the offset's turn of the local date (a text
comparison, no date arithmetic per row); Python then puts those parts
together into local days, weeks and months.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from nightcrew.core.usage import Entry, TokenCounts
from nightcrew.usage.ledger import Group, blocks, blocks_as_groups, group_entries
from nightcrew.usage.pricing import CostTotal

_PICO_DIGITS = 12
TIME_KEYS = ("day", "week", "month")


class TooLarge(Exception):
    """A sum of picodollars does not fit SQLite's 64-bit integers."""


def entry_groups(
    entries: Iterable[Entry], by: str, tz: tzinfo, *, in_time_order: bool = False
) -> list[Group]:
    """Groups of ``entries`` made in Python, streamed: the ledger's way, kept for
    blocks (which need the entries in time order) and for sums too large for SQL."""
    if by == "block":
        ordered = entries if in_time_order else sorted(entries, key=lambda e: e.ts)
        return blocks_as_groups(blocks(ordered))
    return group_entries(entries, by, tz)  # type: ignore[arg-type]


# ---- dollars -------------------------------------------------------------------------------


def _frac_len(c: str) -> str:
    return f"(CASE WHEN instr({c}, '.') THEN length({c}) - instr({c}, '.') ELSE 0 END)"


def _plain(c: str) -> str:
    """SQL: ``c`` is a cost whose picodollars a double holds exactly: no exponent,
    at most 12 fraction digits, under $1000 (so below 2**53 / 8 picodollars, and
    the text-to-double conversion and the product are off by well under half)."""
    return f"({c} NOT LIKE '%e%' AND abs({c}) < 1000 AND {_frac_len(c)} <= {_PICO_DIGITS})"


def exact_cost_columns(c: str) -> str:
    """SQL: the five cost columns :func:`cost_total` takes, over the costs
    ``c`` of a group, each cost tested as :class:`Query`'s exact form does
    (picodollars when that is exact, the text otherwise)."""
    plain, frac = _plain(c), _frac_len(c)
    pico = f"CAST(round({c} * {10**_PICO_DIGITS}) AS INTEGER)"
    return (
        f"sum(CASE WHEN {plain} THEN {pico} END), max(CASE WHEN {plain} THEN {frac} END),"
        f" group_concat(CASE WHEN NOT {plain} THEN {c} END, ' '),"
        f" count({c}), count(*) - count({c})"
    )


def cost_total(
    pico: int | None, frac: int | None, others: str | None, known: int, unknown: int
) -> CostTotal:
    """The cost columns of a grouped query as the same total Python's
    ``Decimal(0) + cost + …`` would give (value and exponent)."""
    usd = Decimal(0)
    if pico is not None and frac is not None:
        usd += Decimal(pico // 10 ** (_PICO_DIGITS - frac)).scaleb(-frac)
    for text in (others or "").split():
        usd += Decimal(text)
    return CostTotal(None if unknown and not known else usd, unknown)


# ---- the query ------------------------------------------------------------------------------


def _sums(t: str, at: str, *, exact: bool) -> str:
    """The result columns after the key and the label: the count, five token
    sums, five cost columns (:func:`cost_total`), the models, the first and last
    time, and two checks. The quick form sums every cost as picodollars and
    returns the checks that say whether that was exact (the largest cost, how
    many are in exponent form; with the longest fraction): it nearly always is.
    The exact form tests each cost and hands back those it cannot sum."""
    c = f"{t}cost_usd"
    plain, frac = _plain(c), _frac_len(c)
    pico = f"CAST(round({c} * {10**_PICO_DIGITS}) AS INTEGER)"
    if exact:
        costs = (
            f"sum(CASE WHEN {plain} THEN {pico} END), max(CASE WHEN {plain} THEN {frac} END),"
            f" group_concat(CASE WHEN NOT {plain} THEN {c} END, ' ')"
        )
        checks = "0, 0"
    else:
        costs = f"sum({pico}), max({frac}), NULL"
        checks = f"max(abs({c})), sum({c} LIKE '%e%')"
    return (
        f"count(*), sum({t}input_tokens), sum({t}output_tokens), sum({t}cache_read_tokens),"
        f" sum({t}cache_write_5m_tokens), sum({t}cache_write_1h_tokens), {costs},"
        f" count({c}), count(*) - count({c}), json_group_array(DISTINCT {t}model),"
        f" min({at}), max({at}), {checks}"
    )


def _exact(row: Sequence[Any]) -> bool:
    """Whether a quick row's picodollar sum is exact (see :func:`_plain`)."""
    frac, largest, exponents = row[9], row[16], row[17]
    return not exponents and (frac or 0) <= _PICO_DIGITS and (largest or 0) < 1000


@dataclass(frozen=True)
class Query:
    """A grouped usage query: ``source`` is the FROM and WHERE of the rows a
    report counts, ``t`` the usage table's alias with its dot, ``at`` the SQL of
    a row's time, ``aggregates`` more result columns after the sums (from 18 on)."""

    source: str
    t: str
    at: str
    aggregates: str = ""

    def sql(self, key: str, label: str, *, exact: bool = False) -> str:
        """One result row per distinct ``key`` and ``label`` (SQL over the
        source's tables): ``key, label``, the sums of :func:`_sums`, the aggregates."""
        more = f", {self.aggregates}" if self.aggregates else ""
        sums = _sums(self.t, self.at, exact=exact)
        return f"SELECT {key}, {label}, {sums}{more} {self.source} GROUP BY 1, 2"

    def rows(
        self, db: sqlite3.Connection, key: str, label: str, params: Mapping[str, object]
    ) -> list[Any]:
        """The rows of :meth:`sql`: the quick form, or the exact one when a
        cost needs it. :class:`TooLarge` when a sum overflowed."""
        rows = fetch(db, self.sql(key, label), params)
        if all(_exact(row) for row in rows):
            return rows
        return fetch(db, self.sql(key, label, exact=True), params)


def fetch(db: sqlite3.Connection, sql: str, params: Mapping[str, object]) -> list[Any]:
    """Rows of a grouped query as tuples; :class:`TooLarge` when a sum overflowed."""
    cursor = db.cursor()
    cursor.row_factory = None
    try:
        return cursor.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "integer overflow" in str(exc):
            raise TooLarge(str(exc)) from exc
        raise


def group_of(row: Sequence[Any], parse: Callable[[str], datetime]) -> Group:
    """One row of a :class:`Query` as a :class:`Group`; ``parse`` reads a stored time."""
    key, label, n, inp, out, read, w5m, w1h, pico, frac, others, known, unknown, models = row[:14]
    return Group(
        key,
        label,
        n,
        TokenCounts(inp, out, read, w5m, w1h),
        cost_total(pico, frac, others, known, unknown),
        tuple(sorted(json.loads(models))),
        parse(row[14]),
        parse(row[15]),
    )


# ---- local days, weeks and months ------------------------------------------------------------


@dataclass(frozen=True)
class LocalDays:
    """How a UTC time text ``at`` falls into local days of ``tz``'s offset: SQL
    for its UTC date (``key``) and whether its local date is ``shift`` days
    away (``label``, 0 or 1), for :meth:`Query.sql`."""

    key: str
    label: str
    shift: int

    @classmethod
    def of(cls, at: str, tz: tzinfo) -> LocalDays | None:
        """None when the offset is not whole seconds (the ledger's path then)."""
        seconds = (tz.utcoffset(None) or timedelta(0)).total_seconds()
        if seconds != int(seconds) or abs(seconds) >= 86_400:
            return None
        utc_date = f"substr({at}, 1, 10)"
        turn = int(86_400 - seconds if seconds > 0 else -seconds) % 86_400
        hms = f"{turn // 3600:02d}:{turn // 60 % 60:02d}:{turn % 60:02d}"
        if seconds > 0:  # from the turn on, the local date is the next one
            return cls(utc_date, f"(substr({at}, 12, 8) >= '{hms}')", 1)
        if seconds < 0:  # before the turn, the local date is the one before
            return cls(utc_date, f"(substr({at}, 12, 8) < '{hms}')", -1)
        return cls(utc_date, "0", 0)

    def key_of(self, by: str, utc_date: str, shifted: int) -> tuple[str, str]:
        """The report's key and label for a row of UTC date ``utc_date``."""
        day = date.fromisoformat(utc_date) + timedelta(days=self.shift if shifted else 0)
        if by == "day":
            return day.isoformat(), day.isoformat()
        if by == "week":
            monday = (day - timedelta(days=day.weekday())).isoformat()
            return monday, f"week of {monday}"
        month = f"{day.year:04d}-{day.month:02d}"
        return month, month


def local_groups(
    rows: Iterable[Sequence[Any]], by: str, days: LocalDays, parse: Callable[[str], datetime]
) -> list[Group]:
    """Rows keyed by (UTC date, shifted) as the report's local days, weeks or months."""
    groups: dict[str, Group] = {}
    for row in rows:
        key, label = days.key_of(by, row[0], row[1])
        g = group_of((key, label, *row[2:]), parse)
        seen = groups.get(key)
        groups[key] = g if seen is None else add(seen, g)
    return order(list(groups.values()), by)


# ---- putting groups together ------------------------------------------------------------------


def order(groups: list[Group], by: str) -> list[Group]:
    """The ledger's order: time keys by key, the others by first use."""
    if by in TIME_KEYS:
        return sorted(groups, key=lambda g: g.key)
    return sorted(groups, key=lambda g: (g.first, g.key))


def merge(lists: Iterable[Sequence[Group]], by: str) -> list[Group]:
    """Groups of several databases with the same key added together (the label
    of the first one kept), in the ledger's order."""
    merged: dict[str, Group] = {}
    for groups in lists:
        for g in groups:
            seen = merged.get(g.key)
            merged[g.key] = g if seen is None else add(seen, g)
    return order(list(merged.values()), by)


def add(a: Group, b: Group) -> Group:
    """Two groups of one key as one: what the ledger gives for their entries together."""
    usd: Decimal | None
    if a.cost.usd is None:
        usd = b.cost.usd
    elif b.cost.usd is None:
        usd = a.cost.usd
    else:
        usd = a.cost.usd + b.cost.usd
    return Group(
        a.key,
        a.label,
        a.entries + b.entries,
        a.tokens + b.tokens,
        CostTotal(usd, a.cost.unknown + b.cost.unknown),
        tuple(sorted({*a.models, *b.models})),
        min(a.first, b.first),
        max(a.last, b.last),
    )
