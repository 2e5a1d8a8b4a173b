"""Each item's cost in a run, added up in SQLite (``views/live.item_costs``),
is what adding its costs one by one in Python gives, digits and exponent
included: costs in exponent form, with more fraction digits than
picodollars, unknown ones, and a running attempt's responses."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from nightcrew.core.states import AttemptState
from nightcrew.usage.pricing import CostTotal
from nightcrew.views.live import _item_costs_one_by_one, item_costs
from tests.dashboard_seed import Seeded


def test_item_costs_in_sql_are_the_sums_cost_by_cost(tmp_path: Path) -> None:
    build = Seeded.build(tmp_path / "shop", ["Login", "Cart", "Search", "Export", "Admin"])
    for feature, costs in {
        1: ["1.50", "0.25"],
        2: ["3E-7", "0.1234567890123456", None],
        3: [None, None],
    }.items():
        for cost in costs:
            attempt = build.attempt(feature, 1)
            build.finish(attempt, AttemptState.FAILED, cost)
    unknown_then_live = build.attempt(3, 1)
    build.response(unknown_then_live, "0.0100")  # running: its responses so far
    live_only = build.attempt(4, 2)
    build.response(live_only, None)
    build.attempt(5, 2)  # running, nothing spent yet: no cost at all

    costs = item_costs(build.store, build.run.id)

    assert costs == _item_costs_one_by_one(build.store, build.run.id)
    assert {k: str(v.usd) for k, v in costs.items()} == {
        k: str(v.usd) for k, v in _item_costs_one_by_one(build.store, build.run.id).items()
    }
    ids = {n: build.items[n].id for n in build.items}
    assert str(costs[ids[1]].usd) == "1.75"
    assert costs[ids[2]] == CostTotal(Decimal("0.1234570890123456"), 1)
    assert costs[ids[3]] == CostTotal(Decimal("0.0100"), 2)
    assert costs[ids[4]] == CostTotal(None, 1)  # unknown, never $0
    assert ids[5] not in costs
