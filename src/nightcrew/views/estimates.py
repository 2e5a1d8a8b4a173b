"""The cost and time left for a backlog's remaining features, per category:
each category's remaining features times the medians of its passed ones
(``usage --forecast``'s :func:`~nightcrew.usage.ledger.forecast`, category by
category); a category with no passed feature yet borrows the whole
backlog's medians, and says so. The dashboard shows the total and its basis.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from nightcrew.store.backlog import Backlog
from nightcrew.store.records import Store
from nightcrew.usage.ledger import Forecast, forecast
from nightcrew.views.attempts import attempt_seconds, feature_attempts
from nightcrew.views.forecast import build_forecast
from nightcrew.work.backlog_graph import display_states

LEFT_STATES = ("pending", "in_progress", "failed")  # as views/forecast.build_forecast counts


@dataclass(frozen=True)
class CategoryEstimate:
    category: str  # "" when the features have none
    left: int
    samples: int  # its passed features the medians come from; 0: the backlog's used
    result: Forecast | None


@dataclass(frozen=True)
class Estimate:
    left: int
    passed: int
    categories: tuple[CategoryEstimate, ...]
    whole: Forecast | None  # the backlog's medians, as ``usage --forecast`` shows them

    @property
    def cost(self) -> Decimal | None:
        """The dollars left: None when a category left has no known cost to go by."""
        parts = [c.result.cost_median for c in self.categories if c.left and c.result]
        if not parts or any(p is None for p in parts) or self.unknown_left:
            return None
        return sum((p for p in parts if p is not None), Decimal(0))

    @property
    def seconds(self) -> float | None:
        if self.unknown_left:
            return None
        return sum(c.result.seconds_median for c in self.categories if c.left and c.result)

    @property
    def unknown_left(self) -> int:
        """Features left with nothing to estimate them from (nothing passed yet)."""
        return sum(c.left for c in self.categories if c.left and c.result is None)


def backlog_estimate(store: Store) -> Estimate:
    features = Backlog(store).features()
    shown = display_states(features)
    done: dict[str, list[tuple[Decimal | None, float]]] = {}
    left: dict[str, int] = {}
    for feature in features:
        state = shown[feature.id]
        if state == "passed":
            attempts = feature_attempts(store, feature.id)
            if attempts:
                cost = store.totals(attempts)
                usd = cost.cost_usd if cost.unknown_cost == 0 else None
                secs = sum(attempt_seconds(a) for a in attempts)
                done.setdefault(feature.category, []).append((usd, secs))
        elif state in LEFT_STATES and not feature.manual:
            left[feature.category] = left.get(feature.category, 0) + 1
    whole, passed, total_left = build_forecast(store)
    everything = [pair for pairs in done.values() for pair in pairs]
    categories = []
    for category in sorted(set(left) | set(done)):
        n = left.get(category, 0)
        own = done.get(category, [])
        result = forecast(own or everything, n) if (own or everything) else None
        categories.append(CategoryEstimate(category, n, len(own), result))
    return Estimate(total_left, passed, tuple(categories), whole)
