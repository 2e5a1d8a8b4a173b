"""What ``nightcrew usage`` prints: a Rich table, a cost bar chart, JSON, CSV, and the
one-line project total and forecast shown after a run.

No database access and no clock here: the command reads entries, groups them with
:mod:`nightcrew.usage.ledger` and hands the groups to these functions, so every output can
be checked byte for byte. An unknown cost is never shown as $0: it is "unknown", a
lower bound is marked "≥", and JSON/CSV carry the count of unknown costs beside the sum.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from nightcrew.cli.amounts import money
from nightcrew.cli.usage_data import COLUMNS, usage_csv, usage_json  # noqa: F401 - the outputs, in one place
from nightcrew.core.usage import TokenCounts
from nightcrew.usage.ledger import Forecast, Group
from nightcrew.usage.pricing import CostTotal
from nightcrew.views.outcomes import ModelOutcome, cost_per_passed_item

_HEADERS = {"item": "Item", "day": "Day", "week": "Week", "month": "Month", "block": "Block"}
_BAR = "█"


# ---- the table ------------------------------------------------------------------------


def _cost_cell(cost: CostTotal) -> Text:
    text = money(cost.usd, unknown=not cost.complete)
    return Text(text, style="" if cost.complete else "yellow")


def _ratio_cell(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.0%}"


def _run_of(g: Group) -> str:
    # Item keys are "run/item" and labels are the item, so the run is what precedes it.
    suffix = f"/{g.label}"
    return g.key[: -len(suffix)] if g.key.endswith(suffix) else g.key


def _outcome_cells(
    g: Group, outcome: ModelOutcome | None, n: str, is_total: bool
) -> dict[str, str | Text]:
    """A model's attempts, pass rate and cost per passed item (blank on the totals row)."""
    if outcome is None or is_total:
        return {name: "" for name in _OUTCOMES}
    rate = outcome.pass_rate
    per_item = cost_per_passed_item(g.cost, outcome)
    return {
        "Attempts": n.format(outcome.attempts),
        "Pass rate": "-" if rate is None else f"{rate:.0%}",
        "$/item passed": Text(money(per_item), style="" if per_item is not None else "yellow"),
    }


def _cells(
    g: Group,
    *,
    by: str,
    is_total: bool = False,
    commas: bool = True,
    outcome: ModelOutcome | None = None,
) -> dict[str, str | Text]:
    """Every column's cell for one group, by column name."""
    t = g.tokens
    n = "{:,}" if commas else "{}"
    return {
        **_outcome_cells(g, outcome, n, is_total),
        "Run": _run_of(g),
        "key": g.label,
        # One model per line; the totals row leaves them out (the rows above say it).
        "Models": "" if is_total else "\n".join(g.models),
        "Input": n.format(t.input),
        "Output": n.format(t.output),
        "Cache rd": n.format(t.cache_read),
        "Cache wr": n.format(t.cache_write),
        "Total": n.format(t.total),
        "Cost": _cost_cell(g.cost),
        "Hit": _ratio_cell(g.cache_hit_ratio),
    }


# How each model's attempts went (project usage by model).
_OUTCOMES = ("Attempts", "Pass rate", "$/item passed")
_NUMBERS = ("Input", "Output", "Cache rd", "Cache wr", "Total", "Cost", "Hit", *_OUTCOMES)
_TEXT = ("Run", "key", "Models")
# Headers on two lines, for a narrow terminal.
_STACKED = {
    "Cache rd": "Cache\nrd",
    "Cache wr": "Cache\nwr",
    "Pass rate": "Pass\nrate",
    "$/item passed": "$/item\npassed",
}
# Ways to fit a narrow terminal, tried in order: stacked headers and a lighter
# frame; then no thousands separators; then labels folded onto several lines.
_LEVELS = ((False, True, False), (True, True, False), (True, False, False), (True, False, True))
# Hidden, in this order, only when every column cannot fit even so: the key, the
# total and the cost always stay, and the caption names what is hidden.
_OPTIONAL = (*_OUTCOMES, "Models", "Hit", "Cache wr", "Cache rd", "Input", "Output", "Run")


def _width(cell: str | Text) -> int:
    text = cell.plain if isinstance(cell, Text) else cell
    return max((len(line) for line in text.splitlines()), default=0)


def _plain(cell: str | Text) -> str:
    return cell.plain if isinstance(cell, Text) else cell


def usage_table(
    groups: Sequence[Group],
    total: Group,
    *,
    by: str,
    title: str,
    width: int | None = None,
    outcomes: Mapping[str, ModelOutcome] | None = None,
) -> Table:
    """One row per group and a bold totals row. Costs that are only lower bounds (some
    entries had no known price) are marked "≥" and explained in the caption.

    Every column is shown and no number or cost is ever cut: for a narrow ``width``
    the headers stack, separators go and labels fold; only when even that does not
    fit are columns hidden, and the caption names them and points at --json/--csv.
    With ``outcomes`` (by model) each model's attempts, pass rate and cost per passed
    item follow."""
    names = ["Run"] if by == "item" else []
    numbers = [n for n in _NUMBERS if outcomes is not None or n not in _OUTCOMES]
    names += ["key", *([] if by == "model" else ["Models"]), *numbers]
    out = outcomes or {}
    if width is None:
        return _table(groups, total, by=by, title=title, names=names, level=_LEVELS[0], out=out)[0]
    for level in _LEVELS:
        table, whole = _table(groups, total, by=by, title=title, names=names, level=level, out=out)
        if _fits(table, whole, width):
            return table
    hidden: list[str] = []
    for optional in _OPTIONAL:
        if optional not in names:
            continue
        names.remove(optional)
        hidden.append(optional)
        table, whole = _table(
            groups, total, by=by, title=title, names=names, level=_LEVELS[-1], hidden=hidden,
            out=out,
        )  # fmt: skip
        if _fits(table, whole, width):
            break
    return table


def _table(
    groups: Sequence[Group],
    total: Group,
    *,
    by: str,
    title: str,
    names: list[str],
    level: tuple[bool, bool, bool],
    hidden: Sequence[str] = (),
    out: Mapping[str, ModelOutcome],
) -> tuple[Table, list[str]]:
    """The table at one ``level`` of narrowing, and the texts that must show whole:
    every number and cost, and each header line."""
    stacked, commas, fold = level
    rows = [_cells(g, by=by, commas=commas, outcome=out.get(g.key)) for g in groups]
    total_row = _cells(total, by=by, is_total=True, commas=commas)
    header = {"key": _HEADERS.get(by, by.capitalize()), **(_STACKED if stacked else {})}
    widths = {
        n: max(_width(header.get(n, n)), *(_width(r[n]) for r in [*rows, total_row])) for n in names
    }
    if stacked:
        table = Table(
            title=title,
            title_justify="left",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
            collapse_padding=True,
        )
    else:
        table = Table(title=title, title_justify="left")
    for name in names:
        numeric = name in _NUMBERS
        table.add_column(
            header.get(name, name),
            justify="right" if numeric else "left",
            no_wrap=numeric,
            overflow="fold",
            # a folded label keeps ten characters a line, so it stays readable
            min_width=widths[name] if numeric or not fold else min(widths[name], 10),
        )
    for i, row in enumerate(rows):
        table.add_row(*(row[n] for n in names), end_section=i == len(rows) - 1)
    table.add_row(*(total_row[n] for n in names), style="bold")
    captions = []
    if total.cost.unknown:
        n = total.cost.unknown
        captions.append(
            f"{n:,} {'entry has' if n == 1 else 'entries have'} no known price: "
            "≥ marks a cost that is only a lower bound"
        )
    if hidden:
        shown = ", ".join(_STACKED.get(h, h).replace("\n", " ") for h in hidden)
        # CSV keeps its columns as they were: the models' outcomes are in the JSON only
        data = "--json has" if set(hidden) & set(_OUTCOMES) else "--json and --csv have"
        captions.append(f"too narrow to show {shown}: {data} every column")
    if captions:
        table.caption = "\n".join(captions)
        table.caption_justify = "left"
    whole = [
        *(_plain(r[n]) for r in [*rows, total_row] for n in names if n in _NUMBERS),
        *(line for n in names for line in header.get(n, n).splitlines()),
    ]
    return table, whole


def _fits(table: Table, whole: list[str], width: int) -> bool:
    """Whether ``table`` at ``width`` shows every number, cost and header whole."""
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, legacy_windows=False)
    console.print(table)
    text = out.getvalue()
    lines = text.splitlines()
    return "…" not in text and all(any(w in line for line in lines) for w in whole)


# ---- the cost chart -------------------------------------------------------------------


def _bar_length(usd: Decimal | None, top: Decimal, width: int) -> int:
    if usd is None or usd <= 0 or top <= 0:
        return 0
    length = int((usd * width / top).to_integral_value(ROUND_HALF_UP))
    return max(1, length)  # a day that cost anything shows at least a sliver


def _chart_amount(cost: CostTotal) -> tuple[str, str]:
    if cost.usd is None:
        return "unknown", "yellow"
    if cost.unknown:
        return f"{money(cost.usd, unknown=True)} +{cost.unknown} unknown", "yellow"
    return money(cost.usd), ""


def cost_chart(groups: Sequence[Group], width: int = 40) -> Text:
    """One line per group (meant for days): label, a bar scaled so the dearest group fills
    ``width``, and the amount. Unknown costs draw no bar and say "unknown"."""
    top = max((g.cost.usd for g in groups if g.cost.usd is not None), default=Decimal(0))
    label_width = max((len(g.label) for g in groups), default=0)
    chart = Text()
    for i, g in enumerate(groups):
        length = _bar_length(g.cost.usd, top, width)
        amount, style = _chart_amount(g.cost)
        if i:
            chart.append("\n")
        chart.append(f"{g.label:<{label_width}}  ")
        chart.append(_BAR * length, style="cyan")
        chart.append(" " * (width - length) + "  ")
        chart.append(amount, style=style)
    return chart


# ---- one-liners -----------------------------------------------------------------------


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else plural or word + 's'}"


def project_total_line(tokens: TokenCounts, cost: CostTotal, since: datetime | None) -> str:
    """The line after a run that keeps the project's running cost in view."""
    if tokens.total == 0 and cost.unknown == 0 and not cost.usd:
        return "this project has used no tokens yet"
    if cost.usd is None:
        spent = "unknown cost"
    elif cost.unknown:
        spent = f"{money(cost.usd)} (+{cost.unknown:,} of unknown cost)"
    else:
        spent = money(cost.usd)
    when = f" since {since:%Y-%m-%d}" if since is not None else ""
    return f"this project has used {_plural(tokens.total, 'token')} / {spent}{when}"


def _rough_money(usd: Decimal) -> str:
    # Cents are enough for an estimate, unless the amounts are below a cent.
    return f"${usd:,.2f}" if usd == 0 or abs(usd) >= Decimal("0.01") else f"${usd:.4f}"


def _rough_duration(seconds: float) -> str:
    secs = round(seconds)
    if secs < 60:
        return f"{secs}s"
    minutes = round(secs / 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _estimate(median: str, low: str, high: str) -> str:
    return median if low == high else f"{median} ({low}–{high})"


def forecast_text(f: Forecast, unit: str = "batch") -> str:
    """What the rest of a run will probably take, in one line a person can act on:
    "3 batches left: about $0.42 ($0.30–$0.61) and 12m (8m–20m), from 4 passed batches".
    ``unit`` is what the run works through: "batch" or "feature"."""
    units = "batches" if unit == "batch" else f"{unit}s"
    if f.remaining == 0:
        return f"no {units} left"
    left = f"{_plural(f.remaining, unit, units)} left"
    time = _estimate(*map(_rough_duration, (f.seconds_median, f.seconds_low, f.seconds_high)))
    source = f"from {_plural(f.samples, f'passed {unit}', f'passed {units}')}"
    if f.cost_median is None or f.cost_low is None or f.cost_high is None:
        return f"{left}: about {time}, cost unknown, {source} (none with a known cost)"
    cost = _estimate(*map(_rough_money, (f.cost_median, f.cost_low, f.cost_high)))
    note = f" ({f.cost_unknown:,} of unknown cost left out)" if f.cost_unknown else ""
    return f"{left}: about {cost} and {time}, {source}{note}"
