"""Grouping, billing blocks and forecasts: the sums a user reads in `nightcrew usage`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest

from nightcrew.core.usage import Entry, TokenCounts
from nightcrew.usage.ledger import (
    EMPTY_TIME,
    Block,
    blocks,
    blocks_as_groups,
    cache_hit_ratio,
    forecast,
    group_entries,
    totals,
)
from nightcrew.usage.pricing import CostTotal

EST = timezone(timedelta(hours=-5))
_DEFAULT_COST = Decimal("0.01")


def at(text: str) -> datetime:
    """An aware UTC time from "2026-11-21 10:00[:ss[.ffffff]]"."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def entry(
    ts: datetime | str,
    *,
    cost: Decimal | None = _DEFAULT_COST,
    tokens: TokenCounts | None = None,
    model: str = "claude-sonnet-4-5",
    run: str | None = "run-a",
    item: str | None = "batch 1: Parse",
    session: str | None = "s1",
    project: str | None = "/work/p",
) -> Entry:
    return Entry(
        ts=at(ts) if isinstance(ts, str) else ts,
        model=model,
        tokens=tokens or TokenCounts(input=100, output=10),
        cost_usd=cost,
        cost_source=None if cost is None else "priced",
        session=session,
        project=project,
        run_id=run,
        item=item,
    )


@pytest.fixture
def new_york() -> ZoneInfo:
    try:
        return ZoneInfo("America/New_York")
    except ZoneInfoNotFoundError:  # no tz database on this machine
        pytest.skip("America/New_York is not available")


# ---- grouping ---------------------------------------------------------------------------


def test_a_day_is_the_users_local_day(new_york: ZoneInfo) -> None:
    # 03:30Z on 10 March is 23:30 on the 9th in New York (EDT, UTC-4).
    late_evening, after_midnight = entry("2026-03-10 03:30"), entry("2026-03-10 04:30")
    local = group_entries([after_midnight, late_evening], "day", new_york)
    assert [(g.key, g.entries) for g in local] == [("2026-03-09", 1), ("2026-03-10", 1)]
    assert local[0].label == "2026-03-09"

    in_utc = group_entries([late_evening, after_midnight], "day", UTC)
    assert [(g.key, g.entries) for g in in_utc] == [("2026-03-10", 2)]


def test_days_with_a_fixed_offset_zone() -> None:
    groups = group_entries([entry("2026-11-21 04:59"), entry("2026-11-21 05:00")], "day", EST)
    assert [g.key for g in groups] == ["2026-11-20", "2026-11-21"]


def test_a_week_across_new_year_is_keyed_by_its_monday() -> None:
    # 2025-12-29 is a Monday; 1 Jan 2026 is a Thursday; 4 Jan a Sunday.
    same_week = [entry("2026-01-04 12:00"), entry("2026-01-01 12:00"), entry("2025-12-29 00:00")]
    next_week = entry("2026-01-05 00:00")
    groups = group_entries([next_week, *same_week], "week", UTC)
    assert [(g.key, g.label, g.entries) for g in groups] == [
        ("2025-12-29", "week of 2025-12-29", 3),
        ("2026-01-05", "week of 2026-01-05", 1),
    ]


def test_a_week_starts_on_the_local_monday() -> None:
    # Monday 00:30Z is still Sunday evening at UTC-5, so it belongs to the week before.
    groups = group_entries([entry("2026-11-23 00:30")], "week", EST)
    assert groups[0].key == "2026-11-16"


def test_months_are_local_and_sorted_by_time() -> None:
    feb_utc_but_jan_local = entry("2026-02-01 03:00")
    groups = group_entries(
        [feb_utc_but_jan_local, entry("2026-03-02 12:00"), entry("2025-12-31 12:00")], "month", EST
    )
    assert [(g.key, g.entries) for g in groups] == [("2025-12", 1), ("2026-01", 1), ("2026-03", 1)]


def test_runs_sort_by_when_they_were_first_used() -> None:
    entries = [
        entry("2026-11-21 12:00", run="run-z"),
        entry("2026-11-21 09:00", run="run-y"),
        entry("2026-11-21 10:00", run="run-z"),
    ]
    groups = group_entries(entries, "run", UTC)
    assert [(g.key, g.entries) for g in groups] == [("run-y", 1), ("run-z", 2)]
    assert groups[1].first == at("2026-11-21 10:00")
    assert groups[1].last == at("2026-11-21 12:00")


def test_items_are_keyed_within_their_run_and_labelled_by_title() -> None:
    entries = [
        entry("2026-11-21 10:00", run="r1", item="batch 1: Parse"),
        entry("2026-11-21 11:00", run="r2", item="batch 1: Parse"),
        entry("2026-11-21 12:00", run="r1", item="batch 1: Parse"),
        entry("2026-11-21 13:00", run="r1", item=None),
    ]
    groups = group_entries(entries, "item", UTC)
    assert [(g.key, g.label, g.entries) for g in groups] == [
        ("r1/batch 1: Parse", "batch 1: Parse", 2),
        ("r2/batch 1: Parse", "batch 1: Parse", 1),
        ("r1/(no item)", "(no item)", 1),
    ]


def test_sessions_projects_and_models() -> None:
    entries = [
        entry("2026-11-21 10:00", session=None, project=None, model="claude-opus-4-5"),
        entry("2026-11-21 11:00", session="abc", project="/work/p", model="claude-haiku-4-5"),
        entry("2026-11-21 12:00", session="abc", project="/work/p", model="claude-opus-4-5"),
    ]
    assert [(g.key, g.entries) for g in group_entries(entries, "session", UTC)] == [
        ("(no session)", 1),
        ("abc", 2),
    ]
    by_project = group_entries(entries, "project", UTC)
    assert [g.key for g in by_project] == ["(no project)", "/work/p"]
    assert by_project[1].models == ("claude-haiku-4-5", "claude-opus-4-5")
    by_model = group_entries(entries, "model", UTC)
    assert [(g.key, g.entries) for g in by_model] == [
        ("claude-opus-4-5", 2),
        ("claude-haiku-4-5", 1),
    ]


def test_sums_tokens_and_costs() -> None:
    entries = [
        entry("2026-11-21 10:00", tokens=TokenCounts(1, 2, 3, 4, 5), cost=Decimal("0.10")),
        entry("2026-11-21 11:00", tokens=TokenCounts(10, 20, 30, 40, 50), cost=Decimal("0.25")),
    ]
    (g,) = group_entries(entries, "day", UTC)
    assert g.tokens == TokenCounts(11, 22, 33, 44, 55)
    assert g.cost == CostTotal(Decimal("0.35"), 0)


def test_grouping_streams_an_iterator_once() -> None:
    consumed = 0

    def stream() -> Iterator[Entry]:
        nonlocal consumed
        start = at("2026-11-21 00:00")
        for i in range(2000):
            consumed += 1
            yield entry(start + timedelta(minutes=i), run=f"run-{i % 3}")

    groups = group_entries(stream(), "run", UTC)
    assert consumed == 2000
    assert [g.entries for g in groups] == [667, 667, 666]


def test_an_unknown_grouping_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot group by 'hour'"):
        group_entries([], "hour", UTC)  # type: ignore[arg-type]


# ---- unknown costs ------------------------------------------------------------------------


def test_unknown_costs_are_never_zero() -> None:
    entries = [
        entry("2026-11-20 10:00", cost=None),
        entry("2026-11-20 11:00", cost=None),
        entry("2026-11-21 10:00", cost=Decimal("0.50")),
        entry("2026-11-21 11:00", cost=None),
    ]
    all_unknown, partly = group_entries(entries, "day", UTC)
    assert all_unknown.cost == CostTotal(None, 2)
    assert partly.cost == CostTotal(Decimal("0.50"), 1)
    assert not partly.cost.complete

    total = totals([all_unknown, partly])
    assert total.cost == CostTotal(Decimal("0.50"), 3)
    assert totals([all_unknown]).cost == CostTotal(None, 2)


def test_totals_add_up_every_group() -> None:
    entries = [
        entry("2026-11-20 10:00", model="b-model", tokens=TokenCounts(5, 5)),
        entry("2026-11-22 10:00", model="a-model", tokens=TokenCounts(1, 1)),
    ]
    total = totals(group_entries(entries, "day", UTC))
    assert (total.key, total.label, total.entries) == ("total", "total", 2)
    assert total.tokens == TokenCounts(6, 6)
    assert total.cost == CostTotal(Decimal("0.02"), 0)
    assert total.models == ("a-model", "b-model")
    assert (total.first, total.last) == (at("2026-11-20 10:00"), at("2026-11-22 10:00"))


def test_the_total_of_nothing_is_zero_not_unknown() -> None:
    total = totals([])
    assert total.entries == 0
    assert total.cost == CostTotal(Decimal(0), 0)
    assert total.first == total.last == EMPTY_TIME


# ---- cache hits ---------------------------------------------------------------------------


def test_cache_hit_ratio_is_the_share_of_the_prompt_read_from_cache() -> None:
    tokens = TokenCounts(
        input=100, output=999, cache_read=300, cache_write_5m=50, cache_write_1h=50
    )
    assert cache_hit_ratio(tokens) == pytest.approx(0.6)
    (g,) = group_entries([entry("2026-11-21 10:00", tokens=tokens)], "day", UTC)
    assert g.cache_hit_ratio == pytest.approx(0.6)


def test_cache_hit_ratio_without_a_prompt_is_unknown() -> None:
    assert cache_hit_ratio(TokenCounts()) is None
    assert cache_hit_ratio(TokenCounts(output=50)) is None
    assert cache_hit_ratio(TokenCounts(input=10)) == 0.0


# ---- 5-hour blocks ------------------------------------------------------------------------


def spans(result: list[Block]) -> list[tuple[str, str, int, bool]]:
    fmt = "%H:%M:%S.%f"
    return [(b.start.strftime(fmt), b.end.strftime(fmt), b.entries, b.is_gap) for b in result]


NOW = at("2026-11-30 00:00")


def test_a_block_starts_at_its_first_entry_floored_to_the_hour() -> None:
    (block,) = blocks([entry("2026-11-21 10:59:59")], now=NOW)
    assert (block.start, block.end) == (at("2026-11-21 10:00"), at("2026-11-21 15:00"))
    assert (block.first, block.last) == (at("2026-11-21 10:59:59"), at("2026-11-21 10:59:59"))
    (on_the_hour,) = blocks([entry("2026-11-21 10:00")], now=NOW)
    assert on_the_hour.start == at("2026-11-21 10:00")


def test_an_entry_exactly_five_hours_after_the_start_is_in_the_same_block() -> None:
    result = blocks([entry("2026-11-21 10:59:59"), entry("2026-11-21 15:00")], now=NOW)
    assert spans(result) == [("10:00:00.000000", "15:00:00.000000", 2, False)]
    result = blocks([entry("2026-11-21 10:00"), entry("2026-11-21 15:00")], now=NOW)
    assert [b.entries for b in result] == [2]


def test_one_microsecond_past_the_block_starts_a_new_one() -> None:
    result = blocks([entry("2026-11-21 10:59:59"), entry("2026-11-21 15:00:00.000001")], now=NOW)
    # Only four hours idle, so no gap: the second block simply follows the first.
    assert spans(result) == [
        ("10:00:00.000000", "15:00:00.000000", 1, False),
        ("15:00:00.000000", "20:00:00.000000", 1, False),
    ]


def test_an_idle_of_exactly_five_hours_is_not_a_gap() -> None:
    result = blocks([entry("2026-11-21 10:30"), entry("2026-11-21 15:30")], now=NOW)
    assert [b.is_gap for b in result] == [False, False]
    just_over = blocks([entry("2026-11-21 10:30"), entry("2026-11-21 15:30:00.000001")], now=NOW)
    assert [b.is_gap for b in just_over] == [False, True, False]


def test_a_long_idle_puts_a_gap_block_between_two_blocks() -> None:
    result = blocks(
        [entry("2026-11-21 10:15"), entry("2026-11-21 12:40"), entry("2026-11-21 20:05")], now=NOW
    )
    first, gap, second = result
    assert (first.start, first.end, first.entries) == (
        at("2026-11-21 10:00"),
        at("2026-11-21 15:00"),
        2,
    )
    # As ccusage: the gap runs from when the last entry's five hours ran out to the next entry.
    assert (gap.start, gap.end) == (at("2026-11-21 17:40"), at("2026-11-21 20:05"))
    assert gap.is_gap and gap.entries == 0 and gap.first is None and not gap.active
    assert gap.cost == CostTotal(Decimal(0), 0)
    assert (second.start, second.end) == (at("2026-11-21 20:00"), at("2026-11-22 01:00"))


def test_blocks_sum_their_entries_and_keep_unknown_costs() -> None:
    result = blocks(
        [
            entry("2026-11-21 10:00", cost=Decimal("0.20"), model="m2", tokens=TokenCounts(1, 2)),
            entry("2026-11-21 11:00", cost=None, model="m1", tokens=TokenCounts(3, 4)),
        ],
        now=NOW,
    )
    (block,) = result
    assert block.tokens == TokenCounts(4, 6)
    assert block.cost == CostTotal(Decimal("0.20"), 1)
    assert block.models == ("m1", "m2")


def test_a_block_is_active_while_its_window_is_open() -> None:
    entries = [entry("2026-11-21 10:20"), entry("2026-11-21 11:00")]
    assert blocks(entries, now=at("2026-11-21 14:59:59"))[0].active
    assert not blocks(entries, now=at("2026-11-21 15:00"))[0].active


def test_blocks_use_utc_hours_whatever_the_entrys_zone() -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    (block,) = blocks([entry(datetime(2026, 11, 21, 16, 10, tzinfo=india))], now=NOW)
    assert block.start == at("2026-11-21 10:00")
    assert block.start.utcoffset() == timedelta(0)


def test_the_block_length_can_be_changed() -> None:
    result = blocks([entry("2026-11-21 10:00"), entry("2026-11-21 11:30")], hours=1, now=NOW)
    assert spans(result) == [
        ("10:00:00.000000", "11:00:00.000000", 1, False),
        ("11:00:00.000000", "11:30:00.000000", 0, True),
        ("11:00:00.000000", "12:00:00.000000", 1, False),
    ]
    with pytest.raises(ValueError, match="at least one hour"):
        blocks([], hours=0)


def test_blocks_refuse_unsorted_entries() -> None:
    with pytest.raises(ValueError, match="sorted"):
        blocks([entry("2026-11-21 11:00"), entry("2026-11-21 10:00")], now=NOW)


def test_no_entries_no_blocks() -> None:
    assert blocks([], now=NOW) == []


def test_blocks_render_as_groups_without_gaps() -> None:
    result = blocks(
        [entry("2026-11-21 10:15"), entry("2026-11-21 22:05")], now=at("2026-11-21 23:00")
    )
    assert [b.is_gap for b in result] == [False, True, False]
    rows = blocks_as_groups(result)
    assert [(g.key, g.label, g.entries) for g in rows] == [
        ("2026-11-21T10:00:00+00:00", "2026-11-21 10:00–15:00 UTC", 1),
        ("2026-11-21T22:00:00+00:00", "2026-11-21 22:00–2026-11-22 03:00 UTC (active)", 1),
    ]
    assert rows[0].first == rows[0].last == at("2026-11-21 10:15")
    assert totals(rows).entries == 2


# ---- forecasts ----------------------------------------------------------------------------


def test_forecast_with_an_odd_number_of_samples() -> None:
    done = [(Decimal("0.10"), 60.0), (Decimal("0.90"), 600.0), (Decimal("0.20"), 120.0)]
    f = forecast(done, remaining=3)
    assert f is not None
    assert (f.remaining, f.samples, f.cost_unknown) == (3, 3, 0)
    assert (f.cost_median, f.cost_low, f.cost_high) == (
        Decimal("0.60"),
        Decimal("0.30"),
        Decimal("2.70"),
    )
    assert (f.seconds_median, f.seconds_low, f.seconds_high) == (360.0, 180.0, 1800.0)


def test_forecast_with_an_even_number_of_samples_takes_the_middle_pair() -> None:
    done = [(Decimal(c), float(s)) for c, s in (("0.1", 10), ("0.4", 40), ("0.2", 20), ("0.3", 30))]
    f = forecast(done, remaining=2)
    assert f is not None
    assert f.cost_median == Decimal("0.50")
    assert f.seconds_median == 50.0
    assert (f.cost_low, f.cost_high) == (Decimal("0.2"), Decimal("0.8"))


def test_forecast_leaves_unknown_costs_out_of_the_cost_only() -> None:
    f = forecast([(None, 100.0), (Decimal("0.2"), 100.0), (Decimal("0.4"), 700.0)], remaining=1)
    assert f is not None
    assert (f.samples, f.cost_unknown) == (3, 1)
    assert f.cost_median == Decimal("0.3")
    assert f.seconds_median == 100.0


def test_forecast_when_no_cost_is_known() -> None:
    f = forecast([(None, 100.0), (None, 300.0)], remaining=2)
    assert f is not None
    assert (f.cost_median, f.cost_low, f.cost_high, f.cost_unknown) == (None, None, None, 2)
    assert f.seconds_median == 400.0


def test_no_forecast_without_samples() -> None:
    assert forecast([], remaining=3) is None
    with pytest.raises(ValueError, match="negative"):
        forecast([(Decimal(1), 1.0)], remaining=-1)


def test_forecast_with_nothing_left() -> None:
    f = forecast([(Decimal("0.5"), 60.0)], remaining=0)
    assert f is not None
    assert (f.cost_median, f.seconds_median) == (Decimal(0), 0.0)
