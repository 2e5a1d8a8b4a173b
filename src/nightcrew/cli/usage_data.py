"""``nightcrew usage --json`` and ``--csv``: the groups of a report as data.

Apart from the table (:mod:`nightcrew.cli.usage_view`), so that printing JSON
or CSV loads no terminal library. An unknown cost is never $0: it is null
(empty in CSV), and the count of unknown costs stands beside the sum.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import date

from nightcrew.usage.ledger import Group
from nightcrew.views.outcomes import ModelOutcome, cost_per_passed_item

COLUMNS = (
    "key",
    "label",
    "entries",
    "models",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "cache_write_tokens",
    "total_tokens",
    "cost_usd",
    "cost_unknown",
    "cost_complete",
    "cache_hit_ratio",
    "first",
    "last",
)


def _times(g: Group) -> tuple[str | None, str | None]:
    # A total over no entries has no times; null says so where a fake date would lie.
    if not g.entries:
        return None, None
    return g.first.isoformat(), g.last.isoformat()


def group_record(g: Group) -> dict[str, object]:
    """One group as JSON-ready values, with the column names of :data:`COLUMNS`."""
    t = g.tokens
    first, last = _times(g)
    return {
        "key": g.key,
        "label": g.label,
        "entries": g.entries,
        "models": list(g.models),
        "input_tokens": t.input,
        "output_tokens": t.output,
        "cache_read_tokens": t.cache_read,
        "cache_write_5m_tokens": t.cache_write_5m,
        "cache_write_1h_tokens": t.cache_write_1h,
        "cache_write_tokens": t.cache_write,
        "total_tokens": t.total,
        "cost_usd": None if g.cost.usd is None else float(g.cost.usd),
        "cost_unknown": g.cost.unknown,
        "cost_complete": g.cost.complete,
        "cache_hit_ratio": g.cache_hit_ratio,
        "first": first,
        "last": last,
    }


def outcome_record(g: Group, outcomes: Mapping[str, ModelOutcome] | None) -> dict[str, object]:
    """A model's attempts, passes, pass rate and cost per passed item (null, never 0,
    when a cost is unknown or nothing passed); nothing for a group that is no model."""
    outcome = None if outcomes is None else outcomes.get(g.key)
    if outcome is None:
        return {}
    per_item = cost_per_passed_item(g.cost, outcome)
    return {
        "attempts": outcome.attempts,
        "passed_attempts": outcome.passed,
        "pass_rate": outcome.pass_rate,
        "items_passed": outcome.items_passed,
        "cost_per_passed_item_usd": None if per_item is None else float(per_item),
    }


def _iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def usage_json(
    groups: Sequence[Group],
    total: Group,
    *,
    by: str,
    source: str,
    since: date | None,
    until: date | None,
    extra: Mapping[str, object] | None = None,
    outcomes: Mapping[str, ModelOutcome] | None = None,
) -> dict[str, object]:
    """The ``--json`` document. ``extra`` lets the command add fields (e.g. a forecast)
    without this module knowing about them; its keys win over the standard ones.
    ``outcomes`` (by model) add how each model's attempts went to its group."""
    return {
        "source": source,
        "by": by,
        "since": _iso(since),
        "until": _iso(until),
        "groups": [{**group_record(g), **outcome_record(g, outcomes)} for g in groups],
        "totals": group_record(total),
        **(extra or {}),
    }


def _csv_row(g: Group) -> list[str]:
    record = group_record(g)
    record["models"] = " ".join(g.models)
    # Exact decimal text, so a spreadsheet sum matches ours; empty (not 0) when unknown.
    record["cost_usd"] = "" if g.cost.usd is None else format(g.cost.usd, "f")
    record["cost_complete"] = "true" if g.cost.complete else "false"
    return ["" if record[c] is None else str(record[c]) for c in COLUMNS]


def usage_csv(groups: Iterable[Group], total: Group) -> str:
    """The ``--csv`` text: a header row, one row per group, and the totals row last."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for g in groups:
        writer.writerow(_csv_row(g))
    writer.writerow(_csv_row(total))
    return out.getvalue()
