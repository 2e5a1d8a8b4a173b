"""The dashboard's kept reads (``views/read_cache.py``, store migration
m012's marks) are made again after every kind of write a build or a person
makes, and only then: an attempt started or finished, a feature's state or
dependencies, a usage record added or changed in place, a new event of the
run exported, a store made again. An unknown cost stays unknown in what is
kept."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from nightcrew.core.states import AttemptState
from nightcrew.project import Project
from nightcrew.server.charts_page import chart_data
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import Store
from nightcrew.usage.pricing import CostTotal
from nightcrew.views.estimates import backlog_estimate
from nightcrew.views.kanban import board
from nightcrew.views.read_cache import ReadCache
from tests.dashboard_seed import TOKENS, Seeded

TZ = timezone(timedelta(hours=-7))


class Counted:
    """A read that says how often it ran."""

    def __init__(self, read: Callable[[Store], Any]) -> None:
        self.read = read
        self.runs = 0

    def __call__(self, store: Store) -> Any:
        self.runs += 1
        return self.read(store)


def test_the_kept_estimate_and_board_follow_every_write_to_the_backlog(tmp_path: Path) -> None:
    shop = Seeded.build(tmp_path / "shop", ["Login", "Cart", "Search"])
    cache = ReadCache()
    estimate = Counted(backlog_estimate)
    cards = Counted(lambda s: board(Backlog(s)))

    def kept() -> tuple[Any, Any]:
        got = (
            cache.get(shop.store, shop.root, "estimate", estimate),
            cache.get(shop.store, shop.root, "board", cards),
        )
        assert got == (backlog_estimate(shop.store), board(Backlog(shop.store)))
        return got

    kept()
    kept()
    assert (estimate.runs, cards.runs) == (1, 1)  # nothing changed: read once

    login = shop.attempt(1, 1)  # an attempt starts
    kept()
    assert estimate.runs == 2
    shop.response(login, "0.25")  # a usage record: neither reads usage records
    kept()
    assert estimate.runs == 2

    shop.finish(login, AttemptState.FAILED, None)  # ended at a cost nobody knows
    _, shown = kept()
    assert estimate.runs == 3
    (card,) = [c for c in shown.cards if c.id == 1]
    assert card.cost == CostTotal(None, 1)  # unknown, never $0

    shop.store.db.execute("UPDATE features SET state = 'passed' WHERE id = 1")  # a state change
    assert kept()[0].passed == 1 and estimate.runs == 4
    assert kept()[0].cost is None  # the estimate's basis is an unknown cost: still unknown
    Backlog(shop.store).set_dependencies(3, [2])  # a dependency
    kept()
    Backlog(shop.store).skip([2], reason="test")  # a person's change
    _, shown = kept()
    assert [c.id for c in shown.cards if c.column == "blocked"] == [3]
    assert (estimate.runs, cards.runs) == (6, 6)


def test_kept_charts_follow_new_and_changed_usage_records(tmp_path: Path) -> None:
    shop = Seeded.build(tmp_path / "shop", ["Login", "Cart"])
    cache = ReadCache()
    now = datetime.now(UTC)
    charts = Counted(lambda s: chart_data(s, now=now, tz=TZ))

    def kept() -> Any:
        got = cache.get(shop.store, shop.root, "charts", charts, usage=True)
        assert got == chart_data(shop.store, now=now, tz=TZ)
        return got

    login = shop.attempt(1, 1)
    shop.response(login, "0.0400")
    assert kept().daily[0].cost == CostTotal(Decimal("0.0400"), 0)
    kept()
    assert charts.runs == 1

    shop.response(login, None)  # a response nobody could price: unknown, never $0
    assert kept().daily[0].cost == CostTotal(Decimal("0.0400"), 1)
    # the same response's newer numbers replace its row in place (no new id)
    shop.store.record_usage(
        login.id,
        kind="response",
        message_id=f"msg-{shop.message_no}",
        request_id=None,
        model="claude-sonnet-4-5",
        tokens=TOKENS,
        cost_usd=Decimal("0.0100"),
        cost_source="priced",
    )
    assert kept().daily[0].cost == CostTotal(Decimal("0.0500"), 0)
    shop.store.db.execute("DELETE FROM usage_records WHERE message_id = 'msg-1'")
    assert kept().daily[0].cost == CostTotal(Decimal("0.0100"), 0)
    shop.store.db.execute("UPDATE features SET name = 'Sign in' WHERE id = 1")  # a name shown
    assert kept().features[0].name == "Sign in"
    assert charts.runs == 5


def test_an_export_is_kept_until_its_run_has_a_newer_event(tmp_path: Path) -> None:
    shop = Seeded.build(tmp_path / "shop", ["Login"])
    cache = ReadCache()
    log = Counted(lambda s: s.db.execute("SELECT count(*) FROM events").fetchone()[0])
    login = shop.attempt(1, 1)

    def kept() -> Any:
        return cache.get(shop.store, shop.root, "export", log, run_id=shop.run.id)

    kept()
    shop.tool(login, "Bash", command="pytest -q")
    assert kept() == log.read(shop.store) and log.runs == 2
    other = shop.store.create_run(
        kind="backlog",
        source_path="",
        source_sha256="a" * 64,
        config={},
        prefix_sha256="b" * 64,
        pid=0,
    )
    newest = Counted(log.read)
    cache.get(shop.store, shop.root, "page", newest, events=True)
    shop.store.event(other.id, "run_started", {})  # another run's event
    kept()
    assert log.runs == 2
    cache.get(shop.store, shop.root, "page", newest, events=True)
    assert newest.runs == 2  # the timeline's page ends at the latest event of any run

    def too_big(_: int) -> bool:
        return False

    cache.get(shop.store, shop.root, "big", log, run_id=shop.run.id, keep_if=too_big)
    cache.get(shop.store, shop.root, "big", log, run_id=shop.run.id, keep_if=too_big)
    assert log.runs == 4  # handed out, never kept


def test_a_store_made_again_is_read_again(tmp_path: Path) -> None:
    shop = Seeded.build(tmp_path / "shop", ["Login", "Cart"])
    cache = ReadCache()
    count = Counted(lambda s: len(Backlog(s).outlines()))
    assert cache.get(shop.store, shop.root, "n", count) == 2
    shop.store.close()
    Project(shop.root).store_path.unlink()
    again = Seeded.build(shop.root, ["Login"])  # the same counters, another store
    assert cache.get(again.store, again.root, "n", count) == 1
    again.store.close()
