"""The read models behind the dashboard's graph and charts: the layered
layout (longest-path layers, barycentre order, cycles survived, 1,000
features laid out quickly enough to serve), the day-by-model sums with an
unknown cost kept apart, the cache-hit ratio, and the per-category estimate."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from nightcrew.core.states import AttemptState
from nightcrew.views.chart_data import cache_per_attempt, cost_per_feature, daily_by_model
from nightcrew.views.dep_layout import dependency_layout, layers_of, order_layers
from nightcrew.views.estimates import backlog_estimate
from tests.dashboard_seed import Seeded


def test_a_node_sits_one_layer_right_of_its_deepest_dependency() -> None:
    deps = {1: [], 2: [1], 3: [2], 4: [1, 3], 5: []}
    assert layers_of([1, 2, 3, 4, 5], deps) == {1: 0, 2: 1, 3: 2, 4: 3, 5: 0}


def test_a_cycle_or_an_unknown_dependency_does_not_hang_the_layout() -> None:
    layer = layers_of([1, 2, 3], {1: [3], 2: [1], 3: [2, 99]})
    assert set(layer) == {1, 2, 3}
    assert len(set(layer.values())) == 3


def test_barycentre_order_uncrosses_edges() -> None:
    # layer 0: a b ; layer 1 starts as y x, where x depends on a and y on b
    layer = {1: 0, 2: 0, 3: 1, 4: 1}  # 1=a, 2=b, 3=y, 4=x
    edges = [(2, 3), (1, 4)]
    rows = order_layers(layer, edges, first=[1, 2, 3, 4])
    assert rows == [[1, 2], [4, 3]]


def test_a_thousand_features_are_laid_out_fast_enough_to_serve(tmp_path: Path) -> None:
    shop = Seeded.build(tmp_path / "big", [f"Feature {n}" for n in range(1, 1001)])
    shop.store.db.executemany(
        "INSERT INTO feature_deps (feature_id, depends_on) VALUES (?, ?)",
        [(n, n - 1 - (n % 7)) for n in range(10, 1001)],
    )
    started = time.perf_counter()
    layout = dependency_layout(shop.store)
    took = time.perf_counter() - started
    assert len(layout.nodes) == 1000 and len(layout.edges) == 991
    at = {n.id: n.layer for n in layout.nodes}
    assert all(at[d] < at[f] for d, f in layout.edges)
    assert took < 5, took  # generous: a loaded 2-core machine


def test_daily_sums_by_model_keep_an_unknown_cost_apart(tmp_path: Path) -> None:
    shop = Seeded.build(tmp_path / "shop", ["Login", "Cart"])
    sonnet = shop.attempt(1, None)
    shop.response(sonnet, "0.0100")
    shop.response(sonnet, "0.0200")
    opus = shop.attempt(2, None, model="claude-opus-4-5")
    shop.response(opus, None)
    rows = {r.model: r for r in daily_by_model(shop.store)}
    assert rows["claude-sonnet-4-5"].cost.usd == Decimal("0.0300")
    assert rows["claude-sonnet-4-5"].tokens.input == 2000
    assert rows["claude-opus-4-5"].cost.usd is None and rows["claude-opus-4-5"].cost.unknown == 1
    assert {r.day for r in rows.values()} == {datetime.now(UTC).astimezone().date()}


def test_days_older_than_the_window_are_left_out(tmp_path: Path) -> None:
    shop = Seeded.build(tmp_path / "shop", ["Login"])
    shop.history({40: "1.00", 3: "0.50"})
    days = daily_by_model(shop.store)
    today = datetime.now(UTC).astimezone().date()
    assert [(d.day, d.cost.usd) for d in days] == [(today - timedelta(days=3), Decimal("0.50"))]


def test_cost_per_feature_puts_known_dollars_first_and_unknown_apart(tmp_path: Path) -> None:
    shop = Seeded.build(tmp_path / "shop", ["Login", "Cart", "Search"])
    for feature, cost in ((1, "0.0100"), (2, None), (3, "0.0500")):
        shop.response(shop.attempt(feature, None), cost)
    top, spent = cost_per_feature(shop.store, top=2)
    assert spent == 3
    assert [(f.feature_id, f.cost.usd) for f in top] == [
        (3, Decimal("0.0500")),
        (1, Decimal("0.0100")),
    ]


def test_cache_hit_ratio_is_read_over_every_prompt_token(tmp_path: Path) -> None:
    shop = Seeded.build(tmp_path / "shop", ["Login"])
    attempt = shop.attempt(1, None)
    shop.store.db.execute(
        "INSERT INTO usage_records (attempt_id, kind, message_id, model, input_tokens,"
        " output_tokens, cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens)"
        " VALUES (?, 'response', 'm1', 'claude-sonnet-4-5', 100, 50, 600, 200, 100)",
        (attempt.id,),
    )
    (row,) = cache_per_attempt(shop.store)
    assert row.label == "#1 a1" and row.ratio == 600 / (100 + 600 + 200 + 100)


def test_the_estimate_uses_each_categorys_own_passed_features(tmp_path: Path) -> None:
    shop = Seeded.build(tmp_path / "shop", ["Login", "Signup", "Cart", "Search"])
    db = shop.store.db
    db.execute("UPDATE features SET category = 'auth' WHERE id IN (1, 2)")
    db.execute("UPDATE features SET category = 'shop' WHERE id IN (3, 4)")
    for feature, cost, minutes in ((1, "1.00", 10), (3, "0.10", 2)):
        attempt = shop.attempt(feature, None)
        shop.finish(attempt, AttemptState.PASSED, cost)
        db.execute(
            "UPDATE attempts SET started_at = '2026-01-01T10:00:00.000+00:00',"
            f" finished_at = '2026-01-01T10:{minutes:02d}:00.000+00:00' WHERE id = ?",
            (attempt.id,),
        )
        db.execute("UPDATE features SET state = 'passed' WHERE id = ?", (feature,))
    estimate = backlog_estimate(shop.store)
    assert estimate.left == 2 and estimate.passed == 2
    assert estimate.cost == Decimal("1.10")  # auth's $1 plus shop's $0.10, not 2 × a median
    assert estimate.seconds == 12 * 60  # 10 minutes for auth's, 2 for shop's


def test_the_whole_estimate_is_what_usage_forecast_says(tmp_path: Path) -> None:
    from nightcrew.views.forecast import build_forecast

    shop = Seeded.build(tmp_path / "shop", ["Login", "Signup", "Cart", "Search", "Pay"])
    db = shop.store.db
    for feature, costs in ((1, ["0.50", None]), (2, ["0.25", "0.75"]), (3, ["2.00"])):
        for cost in costs:
            shop.finish(shop.attempt(feature, None), AttemptState.PASSED, cost)
        db.execute("UPDATE features SET state = 'passed' WHERE id = ?", (feature,))
    shop.attempt(4, None)  # running: no cost yet
    estimate = backlog_estimate(shop.store)
    expected, passed, left = build_forecast(shop.store)
    assert (estimate.whole, estimate.passed, estimate.left) == (expected, passed, left)
    assert expected is not None and expected.cost_unknown == 1  # feature 1: one unknown attempt
