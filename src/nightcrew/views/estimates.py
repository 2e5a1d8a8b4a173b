"""The cost and time left for a backlog's remaining features, per category:
each category's remaining features times the medians of its passed ones
(``usage --forecast``'s :func:`~nightcrew.usage.ledger.forecast`, category by
category, over the samples ``views/forecast.build_forecast`` takes, read in
one query rather than one per feature, so a backlog of a thousand is served);
a category with no passed feature yet borrows the whole backlog's medians,
and says so. The dashboard shows the total and its basis.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from nightcrew.core.states import AttemptState
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import Store
from nightcrew.usage.ledger import Forecast, forecast
from nightcrew.views.backlog import BacklogView

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


# Only the passed features' attempts are read (a third of a big store's, or fewer).
_ATTEMPTS_SQL = """
SELECT w.feature_id, a.cost_usd, a.state, a.started_at, a.finished_at
FROM work_items w JOIN attempts a ON a.item_id = w.id
WHERE w.feature_id IN (SELECT value FROM json_each(?))
"""


def _passed_samples(store: Store, passed: set[int]) -> dict[int, tuple[Decimal | None, float]]:
    """(cost, seconds) of each passed feature over all its attempts, failed ones
    included, read in one query: what ``build_forecast`` adds up feature by
    feature (``store.totals`` and ``attempt_seconds``): the cost is None when
    a finished attempt's is unknown."""
    costs: dict[int, Decimal | None] = {}
    unknown: set[int] = set()
    seconds: dict[int, float] = {}
    rows = store.db.execute(_ATTEMPTS_SQL, (json.dumps(sorted(passed)),))
    for feature_id, cost, state, started, finished in rows:
        seconds.setdefault(feature_id, 0.0)
        if finished is not None:
            seconds[feature_id] += (
                datetime.fromisoformat(finished) - datetime.fromisoformat(started)
            ).total_seconds()
        if cost is None:
            if state != AttemptState.RUNNING or finished:
                unknown.add(feature_id)
            costs.setdefault(feature_id, None)
            continue
        seen = costs.get(feature_id)
        costs[feature_id] = Decimal(cost) if seen is None else seen + Decimal(cost)
    return {f: (None if f in unknown else costs.get(f), seconds[f]) for f in seconds}


def backlog_estimate(store: Store) -> Estimate:
    """The estimate of every category left, and the whole backlog's forecast
    (the same numbers ``usage --forecast`` prints for a build)."""
    features = Backlog(store).outlines()  # no texts or commands decoded: ~4× faster
    shown = BacklogView(features).states
    samples = _passed_samples(store, {f.id for f in features if shown[f.id] == "passed"})
    done: dict[str, list[tuple[Decimal | None, float]]] = {}
    left: dict[str, int] = {}
    for feature in features:
        state = shown[feature.id]
        if state == "passed" and feature.id in samples:
            done.setdefault(feature.category, []).append(samples[feature.id])
        elif state in LEFT_STATES and not feature.manual:
            left[feature.category] = left.get(feature.category, 0) + 1
    everything = [pair for pairs in done.values() for pair in pairs]
    total_left = sum(left.values())
    categories = []
    for category in sorted(set(left) | set(done)):
        n = left.get(category, 0)
        own = done.get(category, [])
        result = forecast(own or everything, n) if (own or everything) else None
        categories.append(CategoryEstimate(category, n, len(own), result))
    whole = forecast(everything, total_left) if everything else None
    return Estimate(total_left, len(everything), tuple(categories), whole)
