"""The budget ledger against a real store: seeded once, it gives the answers
the store scan gave; concurrent attempts in flight count together; a warning
is given once per run, also across a resume; the day budget rolls over at
local midnight."""

from __future__ import annotations

import asyncio
import threading
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
from nightcrew.engine.ledger import BudgetLedger
from nightcrew.engine.report import NullReporter
from nightcrew.store.records import AttemptRow, ItemRow, RunRow, Store
from tests.unit.store_rows import new_attempt, new_item, new_run

ALL = {
    "max_budget_usd": 10.0,
    "max_item_usd": 4.0,
    "daily_budget_usd": 20.0,
    "total_budget_usd": 50.0,
}


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


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / ".nightcrew" / "nightcrew.db")
    yield opened
    opened.close()


def usage(
    store: Store,
    attempt: AttemptRow,
    kind: str,
    usd: str | None,
    *,
    model: str = "claude-sonnet-4-5",
    message_id: str | None = None,
    at: datetime | None = None,
) -> None:
    store.record_usage(
        attempt.id,
        kind=kind,
        message_id=message_id,
        request_id=None,
        model=model,
        tokens=TokenCounts(100, 10),
        cost_usd=Decimal(usd) if usd is not None else None,
        cost_source="priced" if usd is not None else None,
    )
    if at is not None:
        stamp = at.astimezone(UTC).isoformat(timespec="milliseconds")
        store.db.execute(
            "UPDATE usage_records SET ts = ? WHERE attempt_id = ? AND kind = ? AND model = ?"
            " AND message_id = ?",
            (stamp, attempt.id, kind, model, message_id or ""),
        )


def ended(store: Store, attempt: AttemptRow, usd: str | None) -> None:
    cost = Decimal(usd) if usd is not None else None
    store.finish_attempt(attempt.id, AttemptState.FAILED, reason="gates failed", cost_usd=cost)


def history(store: Store, midnight: datetime) -> tuple[RunRow, ItemRow, ItemRow]:
    """An earlier run, yesterday's and today's spending, the awkward cases:
    an attempt killed mid-stream (responses only), one whose reported total
    differs from its models' sum, one of unknown cost with a priced model."""
    yesterday, today = midnight - timedelta(hours=2), midnight + timedelta(seconds=5)
    earlier = new_run(store)
    old = new_item(store, earlier, 1)
    a = new_attempt(store, earlier, old)
    usage(store, a, "final", "3", at=yesterday)
    ended(store, a, "3")

    run = new_run(store)
    one, two = new_item(store, run, 1), new_item(store, run, 2)
    b = new_attempt(store, run, one)  # yesterday, in this run
    usage(store, b, "final", "1.25", at=yesterday)
    ended(store, b, "1.25")
    c = new_attempt(store, run, one)  # killed mid-stream today: its responses count
    usage(store, c, "response", "0.5", message_id="m1", at=today)
    usage(store, c, "response", "0.25", message_id="m2", model="claude-haiku-4-5", at=today)
    ended(store, c, "0.75")
    d = new_attempt(store, run, two)  # responses superseded by the final totals
    usage(store, d, "response", "9", message_id="m1", at=today)
    usage(store, d, "final", "0.4", at=today)
    usage(store, d, "final", "0.6", model="claude-haiku-4-5", at=today)
    ended(store, d, "1.1")  # the agent's own total
    e = new_attempt(store, run, two)  # one model unpriced: the attempt's cost is unknown
    usage(store, e, "final", "0.3", at=today)
    usage(store, e, "final", None, model="mystery-model", at=today)
    ended(store, e, None)
    return run, one, two


def scanned(
    store: Store, root: Path, run: RunRow, item: ItemRow, now: datetime, **limits: float
) -> BudgetGuard:
    found = current_budgets(
        store,
        Settings(**limits),
        root=root,
        run_id=run.id,
        item_id=item.id,
        item_name=f"batch {item.number}",
        now=now,
    )
    return BudgetGuard(found, store=store, run_id=run.id, reporter=Notes(store))


def ledgered(
    ledger: BudgetLedger, store: Store, run: RunRow, item: ItemRow, **limits: float
) -> BudgetGuard:
    return BudgetGuard.of(
        ledger,
        Settings(**limits),
        item_id=item.id,
        item_name=f"batch {item.number}",
        store=store,
        run_id=run.id,
        reporter=Notes(store),
    )


def test_a_seeded_ledger_answers_as_the_store_scan_did(store: Store, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    midnight = local_midnight(now)
    run, one, two = history(store, midnight)
    ledger = BudgetLedger.seed(store, run.id, clock=Clock(now))
    for item in (one, two):
        want = scanned(store, tmp_path, run, item, now, **ALL).budgets
        got = ledgered(ledger, store, run, item, **ALL).budgets
        assert got == want
    spent = {b.key: b.spent for b in ledgered(ledger, store, run, one, **ALL).budgets}
    assert spent == {
        "run": Decimal("3.10"),  # 1.25 + 0.75 + 1.1; the unknown one counts nothing
        f"item:{one.id}": Decimal("2.00"),
        f"day:{midnight.date().isoformat()}": Decimal("2.05"),  # 0.75 + 1.0 + 0.3
        "total": Decimal("6.30"),  # and yesterday's 3 + 1.25
    }


def test_a_settled_attempt_counts_as_the_store_scan_counts_it(store: Store, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    run, one, _ = history(store, local_midnight(now))
    ledger = BudgetLedger.seed(store, run.id, clock=Clock(now))
    guard = ledgered(ledger, store, run, one, **ALL)
    attempt = new_attempt(store, run, one)
    usage(store, attempt, "response", "0.2", message_id="m1")
    guard.check(Decimal("0.2"), attempt_id=attempt.id)
    usage(store, attempt, "final", "0.35")
    ledger.settle(attempt.id, one.id, Decimal("0.35"))
    ended(store, attempt, "0.35")
    want = scanned(store, tmp_path, run, one, now, **ALL).budgets
    assert ledgered(ledger, store, run, one, **ALL).budgets == want
    assert ledger.in_flight() == 0


def test_three_attempts_in_flight_together_cross_the_run_budget(store: Store) -> None:
    run = new_run(store)
    items = [new_item(store, run, n) for n in (1, 2, 3)]
    ledger = BudgetLedger.seed(store, run.id)
    guards = [ledgered(ledger, store, run, item, max_budget_usd=1) for item in items]
    attempts = [new_attempt(store, run, item) for item in items]
    assert all(g.exceeded() is None and g.left() == 1 for g in guards)

    async def stream(guard: BudgetGuard, attempt: AttemptRow) -> None:
        for live in ("0.1", "0.2", "0.3", "0.4"):
            guard.check(Decimal(live), attempt_id=attempt.id)
            await asyncio.sleep(0)  # let the other attempts report in between

    async def all_three() -> None:
        await asyncio.gather(*(stream(g, a) for g, a in zip(guards, attempts, strict=True)))

    asyncio.run(all_three())
    # 3 x $0.40 in flight: each attempt is told, though none spent $1 alone
    for guard in guards:
        over = guard.exceeded(Decimal("0.4"))
        assert over is not None and over.key == "run"
        assert "the run budget (--max-budget-usd $1) is spent ($1.2000 of $1.0000)" in (
            guard.message(Decimal("0.4"))
        )
    fresh = ledgered(ledger, store, run, items[0], max_budget_usd=1)
    assert fresh.exceeded() is not None  # no new attempt may start
    assert fresh.left() == Decimal("-0.2")
    # one attempt ends having cost less than its estimate: the others see that
    ledger.settle(attempts[0].id, items[0].id, Decimal("0.1"))
    assert guards[1].exceeded(Decimal("0.4")) is None
    assert fresh.left() == Decimal("0.1")


def test_the_item_budget_counts_only_that_items_attempts_in_flight(store: Store) -> None:
    run = new_run(store)
    one, two = new_item(store, run, 1), new_item(store, run, 2)
    ledger = BudgetLedger.seed(store, run.id)
    ledger.live(new_attempt(store, run, one).id, one.id, Decimal("0.7"))
    ledger.live(new_attempt(store, run, two).id, two.id, Decimal("5"))
    (budget,) = ledgered(ledger, store, run, one, max_item_usd=1).budgets
    assert budget.spent == Decimal("0.7")


def test_a_warning_is_given_once_per_run_across_attempts_and_a_resume(store: Store) -> None:
    run = new_run(store)
    item = new_item(store, run, 1)
    ledger = BudgetLedger.seed(store, run.id)
    first, second = (ledgered(ledger, store, run, item, max_budget_usd=1) for _ in range(2))
    a, b = new_attempt(store, run, item), new_attempt(store, run, item)
    first.check(Decimal("0.5"), attempt_id=a.id)
    second.check(Decimal("0.35"), attempt_id=b.id)  # together 85 %: this one warns
    first.check(Decimal("0.5"), attempt_id=a.id)  # already given
    notes = [n for g in (first, second) for n in g._reporter.notes]  # type: ignore[attr-defined]
    assert notes == [
        (
            "budget warning: 85% of the run budget (--max-budget-usd $1) spent"
            " ($0.8500 of $1.0000)",
            "warn",
        )
    ]
    events = [e for e in store.events(run.id) if e["kind"] == "budget_warning"]
    assert [(e["payload"]["budget"], e["attempt_id"]) for e in events] == [("run", b.id)]

    resumed = BudgetLedger.seed(store, run.id)  # --resume: a new process, a new ledger
    again = ledgered(resumed, store, run, item, max_budget_usd=1)
    again.check(Decimal("0.9"), attempt_id=new_attempt(store, run, item).id)
    assert again._reporter.notes == []  # type: ignore[attr-defined]


def test_only_one_of_many_threads_gives_a_warning(store: Store) -> None:
    run = new_run(store)
    ledger = BudgetLedger.seed(store, run.id)
    given: list[bool] = []
    start = threading.Barrier(8)

    def claim() -> None:
        start.wait()
        given.append(ledger.claim_warning("run"))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(given) == [False] * 7 + [True]


def test_the_day_budget_starts_afresh_at_local_midnight(store: Store, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    midnight = local_midnight(now)
    run, one, _ = history(store, midnight)
    clock = Clock(now)
    ledger = BudgetLedger.seed(store, run.id, clock=clock)
    (today,) = ledgered(ledger, store, run, one, daily_budget_usd=2).budgets
    assert today.spent == Decimal("2.05")

    # The run goes on past midnight: an attempt streams across it, then ends.
    tomorrow = local_midnight(midnight + timedelta(hours=30))
    clock.now = tomorrow + timedelta(minutes=1)
    attempt = new_attempt(store, run, one)
    ledger.live(attempt.id, one.id, Decimal("0.5"))
    guard = ledgered(ledger, store, run, one, daily_budget_usd=2)
    (day,) = guard.budgets
    assert day.key == f"day:{tomorrow.date().isoformat()}"
    assert day.spent == Decimal("0.5")  # only what is in flight

    before, after = tomorrow - timedelta(minutes=5), tomorrow + timedelta(seconds=30)
    usage(store, attempt, "response", "0.2", message_id="m1", at=before)
    usage(store, attempt, "response", "0.3", message_id="m2", at=after)
    ledger.settle(attempt.id, one.id, Decimal("0.5"))
    ended(store, attempt, "0.5")
    (day,) = guard.budgets
    assert day.spent == Decimal("0.3")  # the part of its usage after midnight
    want = scanned(store, tmp_path, run, one, clock.now, **ALL).budgets
    assert ledgered(ledger, store, run, one, **ALL).budgets == want
