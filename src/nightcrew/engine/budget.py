"""Budgets at every level: the run, one work item, the project today, the
project in total.

Each counts every call made, failed attempts included, and what the running
attempt has spent so far. Crossing 80 % of a budget warns once (console and
event log); reaching 100 % cancels the running attempt and stops the run with
exit 3 and a message naming the budget. Costs that are unknown (a model with no
price) cannot be counted; they are reported as unknown elsewhere, never as 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from nightcrew.config import Settings
from nightcrew.engine.report import Reporter
from nightcrew.store.records import Store
from nightcrew.store.usage_query import project_entries

WARN_AT = Decimal("0.8")
EVENT = "budget_warning"


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
    """Every budget that is set, with what was spent before the next attempt."""
    found: list[Budget] = []
    if settings.max_budget_usd is not None:
        spent = store.totals(store.attempts(run_id=run_id)).cost_usd or Decimal(0)
        found.append(
            Budget(
                "run",
                f"the run budget (--max-budget-usd {_limit(settings.max_budget_usd)})",
                Decimal(str(settings.max_budget_usd)),
                spent,
            )
        )
    if settings.max_item_usd is not None:
        spent = store.totals(store.attempts(item_id=item_id)).cost_usd or Decimal(0)
        found.append(
            Budget(
                f"item:{item_id}",
                f"{item_name}'s budget (--max-item-usd {_limit(settings.max_item_usd)})",
                Decimal(str(settings.max_item_usd)),
                spent,
            )
        )
    if settings.daily_budget_usd is not None:
        midnight = local_midnight(now or datetime.now(UTC))
        found.append(
            Budget(
                f"day:{midnight.date().isoformat()}",
                "this project's daily budget"
                f" (daily_budget_usd = {settings.daily_budget_usd:g} in the config)",
                Decimal(str(settings.daily_budget_usd)),
                project_spent(store, root, midnight),
            )
        )
    if settings.total_budget_usd is not None:
        found.append(
            Budget(
                "total",
                "this project's total budget"
                f" (total_budget_usd = {settings.total_budget_usd:g} in the config)",
                Decimal(str(settings.total_budget_usd)),
                project_spent(store, root),
            )
        )
    return found


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
    ) -> None:
        self.budgets = budgets
        self._store = store
        self._run_id = run_id
        self._reporter = reporter
        self._warned = {
            str(e["payload"].get("budget"))
            for e in store.events(run_id)
            if e["kind"] == EVENT and isinstance(e["payload"], dict)
        }

    def left(self) -> Decimal | None:
        """What the next attempt may spend before the tightest budget is reached."""
        if not self.budgets:
            return None
        return min(b.left() for b in self.budgets)

    def exceeded(self, live: Decimal = Decimal(0)) -> Budget | None:
        return next((b for b in self.budgets if b.left(live) <= 0), None)

    def check(self, live: Decimal = Decimal(0), *, attempt_id: int | None = None) -> None:
        """Warn once per budget (per run) when 80 % of it is spent."""
        for budget in self.budgets:
            if budget.key in self._warned or budget.limit <= 0:
                continue
            spent = budget.spent + live
            # Past 100 % the stop message says it all.
            if budget.limit * WARN_AT <= spent < budget.limit:
                self._warned.add(budget.key)
                share = int(spent / budget.limit * 100)
                message = (
                    f"budget warning: {share}% of {budget.name} spent"
                    f" ({_usd(spent)} of {_usd(budget.limit)})"
                )
                self._reporter.note(message, "warn")
                self._store.event(
                    self._run_id,
                    EVENT,
                    {
                        "budget": budget.key,
                        "name": budget.name,
                        "limit_usd": str(budget.limit),
                        "spent_usd": str(spent),
                    },
                    attempt_id=attempt_id,
                )

    def message(self, live: Decimal = Decimal(0)) -> str:
        budget = self.exceeded(live) or min(self.budgets, key=lambda b: b.left(live))
        spent = budget.spent + live
        return (
            f"budget exceeded: {budget.name} is spent ({_usd(spent)} of"
            f" {_usd(budget.limit)}); raise it and continue with --resume"
        )
