"""What is left of a run or a build, in dollars and time, estimated from the
items that already passed (``usage --forecast``, ``backlog stats``)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from nightcrew.core.states import ItemState
from nightcrew.store.backlog import Backlog
from nightcrew.usage.ledger import Forecast, forecast
from nightcrew.views.attempts import attempt_seconds, feature_attempts
from nightcrew.work.backlog_graph import display_states

if TYPE_CHECKING:
    from nightcrew.store.records import Store


def forecast_json(result: Forecast | None) -> dict[str, Any] | None:
    """A forecast with its dollars as JSON numbers."""
    if result is None:
        return None
    return {k: float(v) if isinstance(v, Decimal) else v for k, v in vars(result).items()}


def run_forecast(store: Store, run_id: str) -> tuple[Forecast | None, int, int]:
    """(forecast, passed, left) for a run: each passed item's whole cost and
    time, failed attempts included, times the items still to do."""
    done: list[tuple[Decimal | None, float]] = []
    left = 0
    for item in store.items(run_id):
        if item.state == ItemState.PASSED:
            attempts = store.attempts(item_id=item.id)
            cost = store.totals(attempts)
            usd = cost.cost_usd if cost.unknown_cost == 0 else None
            done.append((usd, sum(attempt_seconds(a) for a in attempts)))
        elif item.state != ItemState.SKIPPED:
            left += 1
    return forecast(done, left), len(done), left


def build_forecast(store: Store) -> tuple[Forecast | None, int, int]:
    """(forecast, passed, left) for a build: the backlog's passed features (their
    attempts in every build, failed ones included, with the costs Claude Code
    reported) times the features still to build. Skipped, blocked, manual and
    waiting features are not counted as left, as in ``backlog stats``."""
    features = Backlog(store).features()
    shown = display_states(features)
    done: list[tuple[Decimal | None, float]] = []
    left = 0
    for feature in features:
        state = shown[feature.id]
        attempts = feature_attempts(store, feature.id)
        if state == "passed" and attempts:
            cost = store.totals(attempts)
            usd = cost.cost_usd if cost.unknown_cost == 0 else None
            done.append((usd, sum(attempt_seconds(a) for a in attempts)))
        elif state in ("pending", "in_progress", "failed") and not feature.manual:
            left += 1
    return forecast(done, left), len(done), left
