"""The dashboard's kept spend (``views/spend_cache.py``) is, after every kind
of write a build makes, exactly what summing every record again gives:
responses of a running attempt, its final totals replacing them, another
final of an attempt already settled, a final changed in place, unknown
costs, a new day, and more new attempts than it sums live."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from nightcrew.core.states import AttemptState
from nightcrew.store.records import AttemptRow
from nightcrew.usage.pricing import CostTotal
from nightcrew.views import spend_cache
from nightcrew.views.project_overview import ProjectSpend, project_spend
from nightcrew.views.spend_cache import SpendCache
from tests.dashboard_seed import TOKENS, Seeded

TZ = timezone(timedelta(hours=5, minutes=30))  # a half-hour offset: local days that are not UTC's


def final(build: Seeded, attempt: AttemptRow, cost: str | None, model: str = "m") -> None:
    build.store.record_usage(
        attempt.id,
        kind="final",
        message_id="",
        request_id=None,
        model=model,
        tokens=TOKENS,
        cost_usd=None if cost is None else Decimal(cost),
        cost_source="reported" if cost else None,
    )


def same(cache: SpendCache, build: Seeded, now: datetime) -> ProjectSpend:
    kept = cache.spend(build.store, build.root, now=now, tz=TZ)
    assert kept == project_spend(build.store, build.root, now=now, tz=TZ)
    # the same digits, not only an equal amount: $1.50 stays $1.50
    assert str(kept.total.usd) == str(
        project_spend(build.store, build.root, now=now, tz=TZ).total.usd
    )
    return kept


def test_the_kept_spend_follows_every_write_of_a_build(tmp_path: Path) -> None:
    build = Seeded.build(tmp_path / "shop", ["Login", "Cart", "Search"])
    build.history({0: "1.25", 1: "0.50", 3: "2.000", 20: "7.5"})
    now = datetime.now(UTC)
    cache = SpendCache()
    first = same(cache, build, now)
    assert first.total == CostTotal(Decimal("11.250"), 0)

    login = build.attempt(1, 1)
    build.response(login, "0.0400")  # a running attempt: summed live
    build.response(login, None)  # a model without a price: unknown, never $0
    assert same(cache, build, now).total == CostTotal(Decimal("11.2900"), 1)

    final(build, login, "0.0350")  # its totals replace its responses
    build.finish(login, AttemptState.PASSED, "0.0350")
    assert same(cache, build, now).total == CostTotal(Decimal("11.2850"), 0)
    build.response(login, "0.0100")  # a late response of a settled attempt counts no more
    same(cache, build, now)
    cache.forget(build.root)  # summed again from here: login is settled in the sums kept
    same(cache, build, now)

    final(build, login, "0.0010", model="claude-haiku-4-5")  # another final of a settled one
    assert same(cache, build, now).total == CostTotal(Decimal("11.2860"), 0)
    final(build, login, "0.0020", model="claude-haiku-4-5")  # the same final, changed in place
    assert same(cache, build, now).total == CostTotal(Decimal("11.2870"), 0)

    cart = build.attempt(2, 2)
    final(build, cart, None)  # settled with a cost nobody knows
    assert same(cache, build, now).total == CostTotal(Decimal("11.2870"), 1)
    same(cache, build, now + timedelta(days=1))  # tomorrow: today is $0, the total the same


def test_more_new_attempts_than_it_sums_live_are_summed_exactly(tmp_path: Path) -> None:
    build = Seeded.build(tmp_path / "shop", ["Login"])
    now = datetime.now(UTC)
    cache = SpendCache()
    assert same(cache, build, now).total == CostTotal(Decimal(0), 0)
    for n in range(spend_cache.MAX_LIVE + 2):
        attempt = build.attempt(1, 1)
        build.response(attempt, f"0.{n + 1:04d}")
        final(build, attempt, f"0.{n + 1:03d}")
    spent = same(cache, build, now)
    assert spent.today == spent.total and spent.total.unknown == 0
    same(cache, build, now)  # and again, from the sums kept


def test_a_store_made_anew_is_summed_anew(tmp_path: Path) -> None:
    build = Seeded.build(tmp_path / "shop", ["Login"])
    build.history({0: "3.00", 1: "4.00"})
    now = datetime.now(UTC)
    cache = SpendCache()
    assert same(cache, build, now).total == CostTotal(Decimal("7.00"), 0)
    build.store.close()
    for stale in build.root.joinpath(".nightcrew").glob("nightcrew.db*"):
        stale.unlink()  # the person deleted the store; a new build starts over
    again = Seeded.build(tmp_path / "shop", ["Login"])
    again.history({0: "0.50", 2: "0.25"})  # as many records and edits as the old one
    assert same(cache, again, now).total == CostTotal(Decimal("0.75"), 0)
