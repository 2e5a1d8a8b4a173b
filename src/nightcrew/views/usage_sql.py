"""Usage sums computed by SQLite: the pieces both report sources share.

A report needs sums per row (tokens, dollars, how many costs are unknown, the
models, the first and last time), not one Python object per API response. So
the grouping and the adding up happen in SQL, and Python only builds one
:class:`~nightcrew.usage.ledger.Group` per row of the report.

Dollars are stored as exact decimal text, and SQLite has no decimal type: its
``sum()`` of text is a float. So each cost is read as an integer number of
picodollars (``int_part * 10**12 + fraction padded to 12 digits``) and summed
as an integer, which is exact; the longest fraction is kept too, so the sum has
the same exponent as Python's ``Decimal`` sum (``0.10 + 0.2`` is ``0.30``: the
CSV prints it). A cost that text cannot be read that way (``3E-7``, more than 12
fraction digits, a million dollars or more) is handed back as text and added
in Python. A sum too large for 64 bits is :class:`TooLarge`; the caller then
adds up entries in Python instead.

Local days, weeks and months use the one UTC offset that the reports use
(``datetime.now(UTC).astimezone()``'s), shifted in SQL: stored times are UTC.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from nightcrew.core.usage import TokenCounts
from nightcrew.usage.ledger import Group
from nightcrew.usage.pricing import CostTotal

_PICO_DIGITS = 12


class TooLarge(Exception):
    """A sum of picodollars does not fit SQLite's 64-bit integers."""


def _dot(c: str) -> str:
    return f"instr({c}, '.')"


def _frac_len(c: str) -> str:
    return f"(CASE WHEN {_dot(c)} THEN length({c}) - {_dot(c)} ELSE 0 END)"


def _int_len(c: str) -> str:
    return f"(CASE WHEN {_dot(c)} THEN {_dot(c)} - 1 ELSE length({c}) END)"


def _plain(c: str) -> str:
    """SQL: ``c`` is decimal text that reads exactly as picodollars below $10**6."""
    return (
        f"({c} NOT GLOB '*[^0-9.]*' AND {c} NOT GLOB '*.*.*' AND {c} GLOB '*[0-9]*'"
        f" AND {_frac_len(c)} <= {_PICO_DIGITS} AND {_int_len(c)} <= 6)"
    )


def _pico(c: str) -> str:
    whole = f"CAST(CASE WHEN {_dot(c)} THEN substr({c}, 1, {_dot(c)} - 1) ELSE {c} END AS INTEGER)"
    padded = f"substr({c}, {_dot(c)} + 1) || '{'0' * _PICO_DIGITS}'"
    frac = f"CAST(substr({padded}, 1, {_PICO_DIGITS}) AS INTEGER)"
    frac = f"CASE WHEN {_dot(c)} THEN {frac} ELSE 0 END"
    return f"({whole} * {10**_PICO_DIGITS} + {frac})"


def cost_columns(c: str) -> str:
    """Five result columns summing the cost text ``c``: picodollars of the plain
    costs, their longest fraction, the other costs as space-separated text, the
    count of known costs, the count of unknown ones. Read them with :func:`cost_total`."""
    plain = _plain(c)
    return (
        f"sum(CASE WHEN {plain} THEN {_pico(c)} END),"
        f" max(CASE WHEN {plain} THEN {_frac_len(c)} END),"
        f" group_concat(CASE WHEN {c} IS NOT NULL AND NOT {plain} THEN {c} END, ' '),"
        f" count({c}), count(*) - count({c})"
    )


def cost_total(
    pico: int | None, frac: int | None, others: str | None, known: int, unknown: int
) -> CostTotal:
    """The five columns of :func:`cost_columns` as the same total Python's
    ``Decimal(0) + cost + …`` would give (value and exponent)."""
    usd = Decimal(0)
    if pico is not None and frac is not None:
        usd += Decimal(pico // 10 ** (_PICO_DIGITS - frac)).scaleb(-frac)
    for text in (others or "").split():
        usd += Decimal(text)
    return CostTotal(None if unknown and not known else usd, unknown)


def local_day(ts: str, tz: tzinfo) -> str | None:
    """SQL for the local date (``YYYY-MM-DD``) of the UTC time text ``ts`` in
    ``tz``'s fixed offset; None when the offset is not whole seconds."""
    offset = tz.utcoffset(None) or timedelta(0)
    seconds = offset.total_seconds()
    if seconds != int(seconds):
        return None
    # The fraction is dropped first: a whole-second shift cannot carry it over midnight.
    return f"date(substr({ts}, 1, 19), '{int(seconds):+d} seconds')"


def time_key(by: str, ts: str, tz: tzinfo) -> str | None:
    """SQL for a day, week (its Monday) or month key, as the ledger keys them."""
    day = local_day(ts, tz)
    if day is None:
        return None
    if by == "day":
        return day
    if by == "week":
        return f"date({day}, 'weekday 0', '-6 days')"
    if by == "month":
        return f"substr({day}, 1, 7)"
    raise ValueError(by)


TIME_KEYS = ("day", "week", "month")


def sums(t: str, at: str) -> str:
    """The columns every grouped query selects after its key and label: the
    count, the five token sums, :func:`cost_columns`, the models, the first and
    last time. ``t`` is the usage table's alias with its dot; ``at`` the time."""
    return (
        f"count(*), sum({t}input_tokens), sum({t}output_tokens), sum({t}cache_read_tokens),"
        f" sum({t}cache_write_5m_tokens), sum({t}cache_write_1h_tokens),"
        f" {cost_columns(t + 'cost_usd')}, json_group_array(DISTINCT {t}model),"
        f" min({at}), max({at})"
    )


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
    """One row of ``key, label, *sums()`` as a :class:`Group`; ``parse`` reads a
    stored time."""
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
            merged[g.key] = g if seen is None else _add(seen, g)
    return order(list(merged.values()), by)


def _add(a: Group, b: Group) -> Group:
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
