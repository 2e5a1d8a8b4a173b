"""Budgets at every level, against a real store: what counts, the 80 % warning
(once), and which budget a stop names."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from nightcrew.cli.event_lines import lines
from nightcrew.config import Settings
from nightcrew.core.events import Event, Level
from nightcrew.core.states import AttemptState
from nightcrew.core.usage import TokenCounts
from nightcrew.engine.budget import BudgetGuard, current_budgets, local_midnight
from nightcrew.engine.report import NullReporter
from nightcrew.store.records import ItemRow, RunRow, Store
from tests.unit.store_rows import new_attempt, new_item, new_run


class Notes(NullReporter):
    """The guard's events as the run's bus takes them: the stored ones to the
    store, and the console lines they print."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.notes: list[tuple[str, Level]] = []

    def emit(self, event: Event) -> None:
        if event.stored():
            self.store.append_event(event)
        self.notes.extend(lines(event))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / ".nightcrew" / "nightcrew.db")
    yield opened
    opened.close()


def spend(
    store: Store, run: RunRow, item: ItemRow, usd: str | None, at: datetime | None = None
) -> None:
    """One failed attempt that cost ``usd`` (None = unknown), dated ``at``."""
    attempt = new_attempt(store, run, item, model="m")
    cost = Decimal(usd) if usd is not None else None
    store.record_usage(
        attempt.id,
        kind="final",
        message_id=None,
        request_id=None,
        model="claude-sonnet-4-5",
        tokens=TokenCounts(100, 10),
        cost_usd=cost,
        cost_source="reported" if cost is not None else None,
    )
    if at is not None:
        stamp = at.astimezone(UTC).isoformat(timespec="milliseconds")
        store.db.execute(
            "UPDATE usage_records SET ts = ? WHERE attempt_id = ?", (stamp, attempt.id)
        )
    store.finish_attempt(attempt.id, AttemptState.FAILED, reason="gates failed", cost_usd=cost)


def budgets(store: Store, root: Path, run: RunRow, item: ItemRow, **limits: float) -> BudgetGuard:
    found = current_budgets(
        store,
        Settings(**limits),
        root=root,
        run_id=run.id,
        item_id=item.id,
        item_name=f"batch {item.number}",
    )
    return BudgetGuard(found, store=store, run_id=run.id, reporter=Notes(store))


def test_no_budget_set_means_no_limit(store: Store, tmp_path: Path) -> None:
    run = new_run(store)
    item = new_item(store, run, 1)
    spend(store, run, item, "100")
    guard = budgets(store, tmp_path, run, item)
    assert guard.left() is None
    assert guard.exceeded() is None


def test_item_budget_counts_failed_attempts_of_that_batch_only(
    store: Store, tmp_path: Path
) -> None:
    run = new_run(store)
    one, two = new_item(store, run, 1), new_item(store, run, 2)
    spend(store, run, one, "0.40")
    spend(store, run, one, "0.35")
    spend(store, run, two, "5.00")
    guard = budgets(store, tmp_path, run, one, max_item_usd=1.0)
    assert guard.left() == Decimal("0.25")
    # the running attempt's live cost counts as well
    assert guard.exceeded(Decimal("0.24")) is None
    stopped = guard.exceeded(Decimal("0.25"))
    assert stopped is not None and stopped.key == f"item:{one.id}"
    message = guard.message(Decimal("0.30"))
    assert "batch 1's budget (--max-item-usd $1)" in message
    assert "$1.0500 of $1.0000" in message


def test_the_tightest_budget_bounds_the_next_attempt(store: Store, tmp_path: Path) -> None:
    run = new_run(store)
    item = new_item(store, run, 1)
    spend(store, run, item, "2")
    guard = budgets(store, tmp_path, run, item, max_budget_usd=10, max_item_usd=3)
    assert guard.left() == Decimal(1)
    guard = budgets(store, tmp_path, run, item, max_budget_usd=2.5, max_item_usd=3)
    assert guard.left() == Decimal("0.5")


def test_project_total_counts_every_run_of_the_project(store: Store, tmp_path: Path) -> None:
    earlier = new_run(store)
    spend(store, earlier, new_item(store, earlier, 1), "4")
    run = new_run(store)
    item = new_item(store, run, 1)
    spend(store, run, item, "1")
    guard = budgets(store, tmp_path, run, item, total_budget_usd=5, max_budget_usd=100)
    over = guard.exceeded()
    assert over is not None and over.key == "total"
    assert "this project's total budget (total_budget_usd = 5 in the config)" in guard.message()


def test_daily_budget_counts_today_in_local_time_only(store: Store, tmp_path: Path) -> None:
    run = new_run(store)
    item = new_item(store, run, 1)
    midnight = local_midnight(datetime.now(UTC))
    spend(store, run, item, "7", at=midnight - timedelta(seconds=1))  # yesterday
    spend(store, run, item, "1.5", at=midnight + timedelta(seconds=1))
    guard = budgets(store, tmp_path, run, item, daily_budget_usd=2)
    (day,) = guard.budgets
    assert day.key == f"day:{midnight.date().isoformat()}"
    assert day.spent == Decimal("1.5")
    assert guard.left() == Decimal("0.5")


def test_unknown_costs_do_not_count_as_zero_spent_but_cannot_count_at_all(
    store: Store, tmp_path: Path
) -> None:
    run = new_run(store)
    item = new_item(store, run, 1)
    spend(store, run, item, None)
    spend(store, run, item, "0.5")
    guard = budgets(store, tmp_path, run, item, max_budget_usd=1)
    assert guard.left() == Decimal("0.5")


def test_warning_at_80_percent_is_given_once_per_budget_and_logged(
    store: Store, tmp_path: Path
) -> None:
    run = new_run(store)
    item = new_item(store, run, 1)
    spend(store, run, item, "0.70")
    guard = budgets(store, tmp_path, run, item, max_budget_usd=1, max_item_usd=5)
    notes = guard._reporter
    assert isinstance(notes, Notes)
    guard.check(Decimal("0.05"))
    assert notes.notes == []
    guard.check(Decimal("0.10"))
    guard.check(Decimal("0.15"))
    assert notes.notes == [
        (
            "budget warning: 80% of the run budget (--max-budget-usd $1) spent"
            " ($0.8000 of $1.0000)",
            "warn",
        )
    ]
    events = [e for e in store.events(run.id) if e["kind"] == "budget_warning"]
    assert [e["payload"]["budget"] for e in events] == ["run"]
    # a new guard for the next attempt (or after --resume) does not warn again
    again = budgets(store, tmp_path, run, item, max_budget_usd=1, max_item_usd=5)
    again.check(Decimal("0.2"))
    again_notes = again._reporter
    assert isinstance(again_notes, Notes) and again_notes.notes == []
