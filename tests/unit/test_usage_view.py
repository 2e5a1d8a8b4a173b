"""What `nightcrew usage` prints: table, chart, JSON, CSV and the one-line summaries."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from rich.console import Console

from nightcrew.cli.display import money
from nightcrew.cli.usage_view import (
    COLUMNS,
    cost_chart,
    forecast_text,
    project_total_line,
    usage_csv,
    usage_json,
    usage_table,
)
from nightcrew.core.usage import Entry, TokenCounts
from nightcrew.usage.ledger import Forecast, Group, group_entries, totals
from nightcrew.usage.pricing import CostTotal

_CENT = Decimal("0.01")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def entry(
    ts: str,
    cost: Decimal | None = _CENT,
    *,
    tokens: TokenCounts | None = None,
    model: str = "claude-sonnet-4-5",
    run: str = "run-a",
    item: str = "batch 1: Parse",
) -> Entry:
    return Entry(
        ts=at(ts),
        model=model,
        tokens=tokens or TokenCounts(input=100, output=10),
        cost_usd=cost,
        cost_source=None if cost is None else "priced",
        run_id=run,
        item=item,
    )


def group(key: str, cost: CostTotal, tokens: TokenCounts | None = None) -> Group:
    """A hand-made row, for renderers that only care about one field."""
    ts = at(f"{key} 12:00") if len(key) == 10 else at("2026-11-21 12:00")
    return Group(key, key, 1, tokens or TokenCounts(10, 1), cost, ("m",), ts, ts)


def days() -> list[Group]:
    """Three days: fully priced, partly unknown, all unknown."""
    big = TokenCounts(input=1_234_567, output=89_000, cache_read=3_000_000, cache_write_5m=5_000)
    return group_entries(
        [
            entry("2026-11-20 10:00", Decimal("1.5"), tokens=big),
            entry("2026-11-20 11:00", Decimal("0.25"), model="claude-opus-4-5"),
            entry("2026-11-21 10:00", Decimal("0.40")),
            entry("2026-11-21 11:00", None, model="mystery-1"),
            entry("2026-11-22 10:00", None, model="mystery-1"),
        ],
        "day",
        UTC,
    )


def render(renderable: object, width: int = 200) -> str:
    console = Console(record=True, width=width, color_system=None, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


# ---- JSON ---------------------------------------------------------------------------------


def test_json_round_trips_and_keeps_unknown_costs_null() -> None:
    groups = days()
    doc = usage_json(
        groups,
        totals(groups),
        by="day",
        source="project",
        since=date(2026, 11, 20),
        until=None,
        extra={"forecast": None},
    )
    parsed = json.loads(json.dumps(doc))
    assert (parsed["source"], parsed["by"], parsed["since"], parsed["until"]) == (
        "project",
        "day",
        "2026-11-20",
        None,
    )
    assert "forecast" in parsed
    priced, partly, unknown = parsed["groups"]
    assert list(priced) == list(COLUMNS)
    assert priced["cost_usd"] == 1.75
    assert isinstance(priced["cost_usd"], float)
    assert priced["cost_complete"] is True
    assert priced["models"] == ["claude-opus-4-5", "claude-sonnet-4-5"]
    assert priced["input_tokens"] == 1_234_667
    assert priced["cache_write_tokens"] == 5_000
    assert priced["first"] == "2026-11-20T10:00:00+00:00"
    assert (partly["cost_usd"], partly["cost_unknown"], partly["cost_complete"]) == (0.4, 1, False)
    assert (unknown["cost_usd"], unknown["cost_unknown"]) == (None, 1)
    assert parsed["totals"]["key"] == "total"
    assert parsed["totals"]["cost_usd"] == 2.15
    assert parsed["totals"]["cost_unknown"] == 2
    assert parsed["totals"]["entries"] == 5


def test_json_cache_hit_ratio() -> None:
    tokens = TokenCounts(input=100, cache_read=300, cache_write_5m=100)
    g = group("2026-11-20", CostTotal(_CENT, 0), tokens)
    doc = usage_json([g], totals([g]), by="day", source="project", since=None, until=None)
    assert doc["totals"]["cache_hit_ratio"] == 0.6  # type: ignore[index]
    empty = group("2026-11-21", CostTotal(_CENT, 0), TokenCounts(output=5))
    doc = usage_json([empty], empty, by="day", source="project", since=None, until=None)
    assert doc["totals"]["cache_hit_ratio"] is None  # type: ignore[index]


def test_json_of_nothing_has_no_times() -> None:
    doc = usage_json([], totals([]), by="run", source="global", since=None, until=None)
    assert doc["groups"] == []
    total = doc["totals"]
    assert isinstance(total, dict)
    assert (total["entries"], total["cost_usd"], total["first"], total["last"]) == (
        0,
        0.0,
        None,
        None,
    )


# ---- CSV ----------------------------------------------------------------------------------


def test_csv_parses_back_with_the_totals_row_last() -> None:
    groups = days()
    text = usage_csv(groups, totals(groups))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == list(COLUMNS)
    assert [r["key"] for r in rows] == ["2026-11-20", "2026-11-21", "2026-11-22", "total"]
    priced, partly, unknown, total = rows
    assert Decimal(priced["cost_usd"]) == Decimal("1.75")
    assert (partly["cost_usd"], partly["cost_unknown"], partly["cost_complete"]) == (
        "0.40",
        "1",
        "false",
    )
    assert unknown["cost_usd"] == ""  # unknown, never "0"
    assert Decimal(total["cost_usd"]) == Decimal(priced["cost_usd"]) + Decimal(partly["cost_usd"])
    assert int(total["total_tokens"]) == sum(int(r["total_tokens"]) for r in rows[:-1])
    assert priced["models"] == "claude-opus-4-5 claude-sonnet-4-5"
    assert unknown["first"] == "2026-11-22T10:00:00+00:00"


def test_csv_quotes_labels_with_commas() -> None:
    groups = group_entries(
        [entry("2026-11-20 10:00", item="batch 2: parse, then print")], "item", UTC
    )
    rows = list(csv.reader(io.StringIO(usage_csv(groups, totals(groups)))))
    assert rows[1][:2] == ["run-a/batch 2: parse, then print", "batch 2: parse, then print"]


# ---- table --------------------------------------------------------------------------------


def test_table_shows_groups_then_a_bold_totals_row() -> None:
    groups = days()
    table = usage_table(groups, totals(groups), by="day", title="usage by day")
    text = render(table)
    lines = text.splitlines()
    assert lines[0].startswith("usage by day")
    assert "1,234,667" in text  # thousands separators
    assert "3,000,000" in text
    assert "$1.7500" in text
    assert "≥$0.4000" in text  # partly unknown: a lower bound
    assert "unknown" in text
    total_line = next(line for line in lines if line.lstrip("│ ").startswith("total"))
    assert "≥$2.1500" in total_line
    assert "4,329,007" in total_line  # total tokens of all three days
    assert lines.index(total_line) > max(lines.index(x) for x in lines if "2026-11-22" in x)
    assert "2 entries have no known price" in text
    assert table.rows[-1].style == "bold"
    assert table.rows[-2].end_section


def test_table_cache_hit_and_missing_ratio() -> None:
    with_cache = group("2026-11-20", CostTotal(_CENT, 0), TokenCounts(10, 1, 30))
    output_only = group("2026-11-21", CostTotal(_CENT, 0), TokenCounts(output=5))
    text = render(usage_table([with_cache, output_only], with_cache, by="day", title="t"))
    day1 = next(line for line in text.splitlines() if "2026-11-20" in line)
    day2 = next(line for line in text.splitlines() if "2026-11-21" in line)
    assert day1.rstrip(" │").endswith("75%")
    assert day2.rstrip(" │").endswith("-")


def test_item_table_names_the_run_and_model_table_drops_the_models_column() -> None:
    groups = group_entries(
        [entry("2026-11-20 10:00", run="20261120-a", item="batch 3: Tables")], "item", UTC
    )
    text = render(usage_table(groups, totals(groups), by="item", title="by item"))
    assert "Run" in text and "20261120-a" in text and "batch 3: Tables" in text
    assert "Models" in text

    by_model = group_entries([entry("2026-11-20 10:00")], "model", UTC)
    text = render(usage_table(by_model, totals(by_model), by="model", title="by model"))
    assert "Models" not in text
    assert "claude-sonnet-4-5" in text


def test_a_table_without_unknown_costs_has_no_caption() -> None:
    g = group("2026-11-20", CostTotal(_CENT, 0))
    assert "no known price" not in render(usage_table([g], totals([g]), by="day", title="t"))


# ---- chart --------------------------------------------------------------------------------


def bar_lengths(text: str) -> list[int]:
    return [line.count("█") for line in text.splitlines()]


def test_chart_bars_are_proportional_to_cost() -> None:
    groups = [
        group("2026-11-20", CostTotal(Decimal("4"), 0)),
        group("2026-11-21", CostTotal(Decimal("2"), 0)),
        group("2026-11-22", CostTotal(Decimal("1"), 0)),
        group("2026-11-23", CostTotal(Decimal("0"), 0)),
        group("2026-11-24", CostTotal(Decimal("0.001"), 0)),
    ]
    chart = cost_chart(groups, width=40)
    assert bar_lengths(chart.plain) == [40, 20, 10, 0, 1]
    lines = chart.plain.splitlines()
    assert lines[0] == "2026-11-20  " + "█" * 40 + "  $4.0000"
    assert lines[3] == "2026-11-23  " + " " * 40 + "  $0.0000"
    # amounts line up whatever the bar length
    assert len({line.index("$") for line in lines}) == 1


def test_chart_marks_unknown_costs() -> None:
    groups = [
        group("2026-11-20", CostTotal(Decimal("2"), 0)),
        group("2026-11-21", CostTotal(Decimal("1"), 3)),
        group("2026-11-22", CostTotal(None, 2)),
    ]
    lines = cost_chart(groups, width=10).plain.splitlines()
    assert bar_lengths("\n".join(lines)) == [10, 5, 0]
    assert lines[1].endswith("≥$1.0000 +3 unknown")
    assert lines[2].endswith("unknown")
    assert "$0" not in lines[2]


def test_chart_of_nothing_is_empty() -> None:
    assert cost_chart([]).plain == ""


# ---- one-liners ---------------------------------------------------------------------------


def test_project_total_line() -> None:
    since = at("2026-11-01 08:00")
    tokens = TokenCounts(input=1_000_000, output=234_567)
    assert (
        project_total_line(tokens, CostTotal(Decimal("12.5"), 0), since)
        == "this project has used 1,234,567 tokens / $12.5000 since 2026-11-01"
    )
    assert (
        project_total_line(tokens, CostTotal(Decimal("12.5"), 2), since)
        == "this project has used 1,234,567 tokens / $12.5000 (+2 of unknown cost) since 2026-11-01"
    )
    assert (
        project_total_line(tokens, CostTotal(None, 3), None)
        == "this project has used 1,234,567 tokens / unknown cost"
    )


def test_project_total_line_before_any_use() -> None:
    assert (
        project_total_line(TokenCounts(), CostTotal(Decimal(0), 0), None)
        == "this project has used no tokens yet"
    )


def fc(**overrides: object) -> Forecast:
    fields: dict[str, object] = {
        "remaining": 3,
        "samples": 4,
        "cost_unknown": 0,
        "cost_median": Decimal("0.42"),
        "cost_low": Decimal("0.3"),
        "cost_high": Decimal("0.614"),
        "seconds_median": 720.0,
        "seconds_low": 480.0,
        "seconds_high": 1200.0,
    }
    fields.update(overrides)
    return Forecast(**fields)  # type: ignore[arg-type]


def test_forecast_text() -> None:
    assert (
        forecast_text(fc())
        == "3 batches left: about $0.42 ($0.30–$0.61) and 12m (8m–20m), from 4 passed batches"
    )


def test_forecast_text_notes_unknown_costs() -> None:
    assert forecast_text(fc(cost_unknown=1)).endswith(
        "from 4 passed batches (1 of unknown cost left out)"
    )
    text = forecast_text(fc(cost_unknown=4, cost_median=None, cost_low=None, cost_high=None))
    assert text == (
        "3 batches left: about 12m (8m–20m), cost unknown, from 4 passed batches"
        " (none with a known cost)"
    )
    assert "$" not in text


def test_forecast_text_small_and_single_numbers() -> None:
    one = fc(
        remaining=1,
        samples=1,
        cost_median=Decimal("0.0042"),
        cost_low=Decimal("0.0042"),
        cost_high=Decimal("0.0042"),
        seconds_median=45.0,
        seconds_low=45.0,
        seconds_high=45.0,
    )
    assert forecast_text(one) == "1 batch left: about $0.0042 and 45s, from 1 passed batch"
    long = fc(seconds_median=3900.0, seconds_low=3600.0, seconds_high=7500.0)
    assert "about $0.42 ($0.30–$0.61) and 1h05m (1h00m–2h05m)" in forecast_text(long)
    assert forecast_text(fc(remaining=0)) == "no batches left"


# ---- narrow terminals -------------------------------------------------------------------


def wide_groups(by: str) -> list[Group]:
    big = TokenCounts(input=1_234_567, output=234_567, cache_read=12_345_678, cache_write_5m=7)
    entries = [
        Entry(
            ts=at(f"2026-11-2{day} 10:00"),
            model=model,
            tokens=big,
            cost_usd=cost,
            cost_source=None if cost is None else "priced",
            run_id="20261202-94aab2b9",
            item=f"batch {day}: Parse the input",
        )
        for day, model, cost in (
            (0, "claude-sonnet-4-5-20250929", Decimal("12.1637")),
            (1, "claude-opus-4-1", Decimal("0.1637")),
            (1, "claude-haiku-4-5", None),
        )
    ]
    return group_entries(entries, by, UTC)


def render_at(table: object, width: int) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None)
    console.print(table)
    return console.file.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize("by", ["run", "item", "model", "day"])
@pytest.mark.parametrize("width", [60, 80, 120])
def test_a_narrow_table_cuts_no_number_and_names_what_it_hides(by: str, width: int) -> None:
    groups = wide_groups(by)
    total = totals(groups)
    text = render_at(usage_table(groups, total, by=by, title="t", width=width), width)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    assert "≥$12.3274" in text  # money is never cut
    for g in groups:
        assert money(g.cost.usd, unknown=not g.cost.complete) in text
    t = total.tokens
    shown = {"Input": t.input, "Output": t.output, "Cache rd": t.cache_read}
    shown |= {"Cache wr": t.cache_write, "Total": t.total}
    missing = [name for name, value in shown.items() if f"{value}" not in text.replace(",", "")]
    headers = " ".join(text.split())  # stacked headers read as one line
    if missing or "Hit" not in headers:
        assert "--json and --csv have every column" in headers
        for name in missing:
            assert name in headers.split("too narrow to show")[1]
    else:  # nothing hidden: every header is there
        for header in ("Input", "Output", "Total", "Cost", "Hit"):
            assert header in headers
        assert "Cache rd" in headers or ("Cache" in text and "rd" in text)
    if width >= 80:  # the cache columns, which make the total add up, stay at 80
        assert "too narrow to show" not in headers or "Cache" not in headers.split("show")[1]


def test_piped_usage_keeps_every_column() -> None:
    from nightcrew.cli.usage import emit

    groups = wide_groups("model")
    console = Console(file=io.StringIO(), width=80, color_system=None)  # not a terminal
    emit(console, groups, by="model", source="project", since=None, until=None, fmt="table",
         title="t", extra={}, footer=[])  # fmt: skip
    text = console.file.getvalue()  # type: ignore[attr-defined]
    for header in ("Model", "Input", "Output", "Cache rd", "Cache wr", "Total", "Cost", "Hit"):
        assert header in text
    assert "12,345,678" in text and "$12.1637" in text and "…" not in text
