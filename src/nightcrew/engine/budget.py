"""Budgets at every level: the run, one work item, the project today, the
project in total.

Each counts every call made, failed attempts included, and what the running
attempt has spent so far. Crossing 80 % of a budget warns once (console and
event log); reaching 100 % cancels the running attempt and stops the run with
exit 3 and a message naming the budget. Costs that are unknown (a model with no
price) cannot be counted; they are reported as unknown elsewhere, never as 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal, Protocol

from nightcrew.config import Settings
from nightcrew.core.events import BudgetStop, BudgetWarning
from nightcrew.engine.report import Reporter
from nightcrew.store.records import Store
from nightcrew.store.usage_query import project_entries

WARN_AT = Decimal("0.8")
EVENT = BudgetWarning.kind


@dataclass(frozen=True)
class Budget:
    key: str  # unique within a run: run | item:<id> | day:<date> | total
    name: str  # what the user reads: "the run budget (--max-budget-usd $5)"
    limit: Decimal
    spent: Decimal  # before the current attempt

    def left(self, live: Decimal = Decimal(0)) -> Decimal:
        return self.limit - self.spent - live


def _usd(value: Decimal) -> str:
    return f"${value:.4f}"


def _limit(value: float) -> str:
    return f"${value:g}"


def local_midnight(now: datetime) -> datetime:
    """Start of ``now``'s day in the local time zone: what "today" means to the user."""
    local = now.astimezone()
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def project_spent(store: Store, root: Path, since: datetime | None = None) -> Decimal:
    """What the project's agents have cost (known costs) since ``since``."""
    total = Decimal(0)
    for entry in project_entries(store, root, since=since):
        if entry.cost_usd is not None:
            total += entry.cost_usd
    return total


Scope = Literal["run", "item", "day", "total"]


def budget_list(
    settings: Settings,
    *,
    item_id: int,
    item_name: str,
    midnight: datetime,
    spent: Callable[[Scope], Decimal],
) -> list[Budget]:
    """Every budget that is set, named for the user; ``spent`` says what each
    scope has spent (asked only for the budgets that are set)."""
    found: list[Budget] = []
    if settings.max_budget_usd is not None:
        found.append(
            Budget(
                "run",
                f"the run budget (--max-budget-usd {_limit(settings.max_budget_usd)})",
                Decimal(str(settings.max_budget_usd)),
                spent("run"),
            )
        )
    if settings.max_item_usd is not None:
        found.append(
            Budget(
                f"item:{item_id}",
                f"{item_name}'s budget (--max-item-usd {_limit(settings.max_item_usd)})",
                Decimal(str(settings.max_item_usd)),
                spent("item"),
            )
        )
    if settings.daily_budget_usd is not None:
        found.append(
            Budget(
                f"day:{midnight.date().isoformat()}",
                "this project's daily budget"
                f" (daily_budget_usd = {settings.daily_budget_usd:g} in the config)",
                Decimal(str(settings.daily_budget_usd)),
                spent("day"),
            )
        )
    if settings.total_budget_usd is not None:
        found.append(
            Budget(
                "total",
                "this project's total budget"
                f" (total_budget_usd = {settings.total_budget_usd:g} in the config)",
                Decimal(str(settings.total_budget_usd)),
                spent("total"),
            )
        )
    return found


def current_budgets(
    store: Store,
    settings: Settings,
    *,
    root: Path,
    run_id: str,
    item_id: int,
    item_name: str,
    now: datetime | None = None,
) -> list[Budget]:
    """Every budget that is set, with what was spent before the next attempt,
    by scanning the store. The engine asks the run's ledger instead
    (engine/ledger.py), which gives the same answers without the scan."""
    midnight = local_midnight(now or datetime.now(UTC))

    def spent(scope: Scope) -> Decimal:
        if scope == "run":
            return store.totals(store.attempts(run_id=run_id)).cost_usd or Decimal(0)
        if scope == "item":
            return store.totals(store.attempts(item_id=item_id)).cost_usd or Decimal(0)
        return project_spent(store, root, midnight if scope == "day" else None)

    return budget_list(
        settings, item_id=item_id, item_name=item_name, midnight=midnight, spent=spent
    )


class Ledger(Protocol):
    """What a guard needs of the run's budget ledger (engine/ledger.py)."""

    def budgets(
        self, settings: Settings, *, item_id: int, item_name: str, exclude: int | None = None
    ) -> list[Budget]: ...

    def live(self, attempt_id: int, item_id: int, usd: Decimal) -> None: ...

    def claim_warning(self, key: str) -> bool: ...


@dataclass(frozen=True)
class LedgerScope:
    """A guard's view of the ledger: whose budgets, under which settings."""

    ledger: Ledger
    settings: Settings
    item_id: int
    item_name: str


class BudgetGuard:
    """The budgets of one attempt: how much it may spend, the 80 % warnings,
    and which budget stopped it."""

    def __init__(
        self,
        budgets: list[Budget],
        *,
        store: Store,
        run_id: str,
        reporter: Reporter,
        ledger: LedgerScope | None = None,
    ) -> None:
        self._budgets = budgets
        self._store = store
        self._run_id = run_id
        self._reporter = reporter
        self._ledger = ledger
        self._attempt_id: int | None = None  # this guard's attempt, once it streams
        # Without a ledger the warnings already given are read from the event log.
        self._warned = (
            set()
            if ledger is not None
            else {
                str(e["payload"].get("budget"))
                for e in store.events(run_id)
                if e["kind"] == EVENT and isinstance(e["payload"], dict)
            }
        )

    @classmethod
    def of(
        cls,
        ledger: Ledger,
        settings: Settings,
        *,
        item_id: int,
        item_name: str,
        store: Store,
        run_id: str,
        reporter: Reporter,
    ) -> BudgetGuard:
        """A guard that answers from the run's ledger: what is spent includes
        every other attempt in flight, and a warning is given once per run
        whichever attempt crosses 80 %."""
        scope = LedgerScope(ledger, settings, item_id, item_name)
        return cls([], store=store, run_id=run_id, reporter=reporter, ledger=scope)

    @property
    def budgets(self) -> list[Budget]:
        """Every budget that is set, each with what was spent before (or
        beside) this guard's attempt."""
        scope = self._ledger
        if scope is None:
            return self._budgets
        return scope.ledger.budgets(
            scope.settings,
            item_id=scope.item_id,
            item_name=scope.item_name,
            exclude=self._attempt_id,
        )

    def _first_warning(self, key: str) -> bool:
        if self._ledger is not None:
            return self._ledger.ledger.claim_warning(key)
        if key in self._warned:
            return False
        self._warned.add(key)
        return True

    def left(self) -> Decimal | None:
        """What the next attempt may spend before the tightest budget is reached."""
        if not self.budgets:
            return None
        return min(b.left() for b in self.budgets)

    def exceeded(self, live: Decimal = Decimal(0)) -> Budget | None:
        return next((b for b in self.budgets if b.left(live) <= 0), None)

    def check(self, live: Decimal = Decimal(0), *, attempt_id: int | None = None) -> None:
        """Warn once per budget (per run) when 80 % of it is spent. With a
        ledger, ``live`` is also what attempt ``attempt_id`` has cost so far."""
        if self._ledger is not None and attempt_id is not None:
            self._attempt_id = attempt_id
            self._ledger.ledger.live(attempt_id, self._ledger.item_id, live)
        for budget in self.budgets:
            if budget.limit <= 0:
                continue
            spent = budget.spent + live
            # Past 100 % the stop message says it all.
            if budget.limit * WARN_AT <= spent < budget.limit and self._first_warning(budget.key):
                self._reporter.emit(
                    BudgetWarning(
                        run_id=self._run_id,
                        attempt_id=attempt_id,
                        budget=budget.key,
                        name=budget.name,
                        limit_usd=budget.limit,
                        spent_usd=spent,
                    )
                )

    def stop(self, live: Decimal = Decimal(0), *, attempt_id: int | None = None) -> BudgetStop:
        """The budget that stops the work (the tightest, when none is spent yet)."""
        budget = self.exceeded(live) or min(self.budgets, key=lambda b: b.left(live))
        return BudgetStop(
            run_id=self._run_id,
            attempt_id=attempt_id,
            budget=budget.key,
            name=budget.name,
            limit_usd=budget.limit,
            spent_usd=budget.spent + live,
        )

    def message(self, live: Decimal = Decimal(0)) -> str:
        budget = self.exceeded(live) or min(self.budgets, key=lambda b: b.left(live))
        spent = budget.spent + live
        return (
            f"budget exceeded: {budget.name} is spent ({_usd(spent)} of"
            f" {_usd(budget.limit)}); raise it and continue with --resume"
        )
