"""The budget ledger: what the run, each of its items and the project have
spent, kept in memory for the whole run and shared by its attempts.

It is seeded from the store once, when the run starts or resumes: the run's
and each item's settled costs, the project's known costs today (since local
midnight) and in total, and the 80 % warnings this run already gave. From then
on nothing is read back to answer a budget check:

- while an attempt streams, its live cost (the responses priced so far) is
  held as *in flight*;
- when it ends, :meth:`BudgetLedger.settle` replaces that estimate with the
  attempt's final cost (reported or priced; unknown counts nothing) for the
  run and item budgets, and with its own usage rows' known costs for the
  project's day and total (the same rows the usage report counts);
- a check adds every attempt in flight to what is settled, so concurrent
  attempts that together cross a budget are all told, and no new one starts.

Every read and update holds one lock: attempts may run as tasks of one event
loop or on threads. The day budget rolls over at local midnight: the new day
starts from nothing and counts what settles after it (the run holds the
project lock, so no other process adds to it meanwhile).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from nightcrew.config import Settings
from nightcrew.engine.budget import EVENT, Budget, budget_list, local_midnight
from nightcrew.store.records import Store
from nightcrew.store.usage_query import project_spend

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Flight:
    """An attempt in flight: its item and what it has cost so far."""

    item_id: int
    live: Decimal


class BudgetLedger:
    """Spending of one run and its project; see the module's docstring."""

    def __init__(
        self,
        store: Store,
        run_id: str,
        *,
        run_spent: Decimal = Decimal(0),
        item_spent: dict[int, Decimal] | None = None,
        day: date,
        day_spent: Decimal = Decimal(0),
        total_spent: Decimal = Decimal(0),
        warned: set[str] | None = None,
        clock: Clock = _now,
    ) -> None:
        self._store = store
        self.run_id = run_id
        self._clock = clock
        self._lock = threading.Lock()
        self._run = run_spent
        self._items = dict(item_spent or {})
        self._day = day
        self._day_spent = day_spent
        self._total = total_spent
        self._warned = set(warned or ())
        self._flights: dict[int, _Flight] = {}

    @classmethod
    def seed(cls, store: Store, run_id: str, *, clock: Clock = _now) -> BudgetLedger:
        """The ledger of ``run_id`` as the store has it now (three queries)."""
        midnight = local_midnight(clock())
        run_spent = Decimal(0)
        items: dict[int, Decimal] = {}
        for item_id, cost in store.db.execute(
            "SELECT item_id, cost_usd FROM attempts WHERE run_id = ? AND cost_usd IS NOT NULL",
            (run_id,),
        ):
            usd = Decimal(cost)
            run_spent += usd
            items[item_id] = items.get(item_id, Decimal(0)) + usd
        total, today = project_spend(store, midnight)
        warned = set()
        for (payload,) in store.db.execute(
            "SELECT payload_json FROM events WHERE run_id = ? AND kind = ?", (run_id, EVENT)
        ):
            data = json.loads(payload)
            if isinstance(data, dict):
                warned.add(str(data.get("budget")))
        return cls(
            store,
            run_id,
            run_spent=run_spent,
            item_spent=items,
            day=midnight.date(),
            day_spent=today,
            total_spent=total,
            warned=warned,
            clock=clock,
        )

    # ---- updates --------------------------------------------------------------

    def live(self, attempt_id: int, item_id: int, usd: Decimal) -> None:
        """Attempt ``attempt_id`` (of item ``item_id``) has cost ``usd`` so far."""
        with self._lock:
            self._flights[attempt_id] = _Flight(item_id, usd)

    def settle(self, attempt_id: int, item_id: int, cost_usd: Decimal | None) -> None:
        """Attempt ``attempt_id`` has ended costing ``cost_usd`` (None: unknown,
        counted as nothing) and its final usage is in the store: it leaves the
        attempts in flight and counts as spent."""
        midnight = local_midnight(self._clock())
        total, today = project_spend(self._store, midnight, attempt_id=attempt_id)
        with self._lock:
            self._flights.pop(attempt_id, None)
            self._roll(midnight)
            usd = cost_usd if cost_usd is not None else Decimal(0)
            self._run += usd
            self._items[item_id] = self._items.get(item_id, Decimal(0)) + usd
            self._day_spent += today
            self._total += total

    def claim_warning(self, key: str) -> bool:
        """True exactly once per budget key per run: the caller gives the warning."""
        with self._lock:
            if key in self._warned:
                return False
            self._warned.add(key)
            return True

    def _roll(self, midnight: datetime) -> None:
        if midnight.date() != self._day:
            self._day, self._day_spent = midnight.date(), Decimal(0)

    # ---- answers --------------------------------------------------------------

    def run_spent(self) -> Decimal:
        """What the run's ended attempts cost (known costs)."""
        with self._lock:
            return self._run

    def item_spent(self, item_id: int) -> Decimal:
        """What the item's ended attempts cost (known costs)."""
        with self._lock:
            return self._items.get(item_id, Decimal(0))

    def in_flight(self) -> Decimal:
        """What the attempts in flight have cost so far, together."""
        with self._lock:
            return sum((f.live for f in self._flights.values()), Decimal(0))

    def budgets(
        self,
        settings: Settings,
        *,
        item_id: int,
        item_name: str,
        exclude: int | None = None,
    ) -> list[Budget]:
        """Every budget that is set, each with what is spent: settled plus the
        attempts in flight, leaving out attempt ``exclude`` (the caller's own,
        whose live cost it adds itself)."""
        midnight = local_midnight(self._clock())
        with self._lock:
            self._roll(midnight)
            flights = [f for a, f in self._flights.items() if a != exclude]
            live = sum((f.live for f in flights), Decimal(0))
            item_live = sum((f.live for f in flights if f.item_id == item_id), Decimal(0))
            spent = {
                "run": self._run + live,
                "item": self._items.get(item_id, Decimal(0)) + item_live,
                "day": self._day_spent + live,
                "total": self._total + live,
            }
        return budget_list(
            settings,
            item_id=item_id,
            item_name=item_name,
            midnight=midnight,
            spent=spent.__getitem__,
        )
