"""What each feature cost (attempts, models, tokens, dollars, across every build
that touched it) and what the rest of the backlog will likely cost: the median
of passed features of the same category times what is left of it."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from nightcrew.usage.ledger import forecast
from nightcrew.views.attempts import attempt_seconds, feature_attempts
from nightcrew.views.forecast import forecast_json
from nightcrew.work.backlog_graph import display_states

if TYPE_CHECKING:
    from nightcrew.store.backlog import Backlog
    from nightcrew.store.records import Store


def _num(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def feature_money(store: Store, feature_id: int) -> dict[str, Any]:
    """The ``show`` fields about money: each attempt, and the totals."""
    attempts = feature_attempts(store, feature_id)
    totals = store.totals(attempts)
    listed = []
    for number, attempt in enumerate(attempts, 1):
        tokens = store.attempt_tokens(attempt.id)
        listed.append(
            {
                "number": number,
                "run_id": attempt.run_id,
                "state": str(attempt.state),
                "model": attempt.model,
                "models": attempt.models,
                "tokens": tokens.total,
                "cost_usd": _num(attempt.cost_usd),
                "seconds": attempt_seconds(attempt),
            }
        )
    t = totals.tokens
    return {
        "attempt_list": listed,
        "cost_usd": _num(totals.cost_usd),
        "cost_unknown_attempts": totals.unknown_cost,
        "tokens": {
            "input": t.input,
            "output": t.output,
            "cache_read": t.cache_read,
            "cache_write": t.cache_write,
        },
    }


def backlog_stats(backlog: Backlog) -> dict[str, Any]:
    """Counts by state, cost so far, and the forecast for what remains, per
    category (falling back to every passed feature when a category has none)."""
    features = backlog.features()
    shown = display_states(features)
    counts: dict[str, int] = {}
    spent = Decimal(0)  # nothing spent is $0; only attempts can make it unknown
    known = unknown = 0
    samples: dict[str, list[tuple[Decimal | None, float]]] = {}
    remaining: dict[str, int] = {}
    for feature in features:
        state = shown[feature.id]
        counts[state] = counts.get(state, 0) + 1
        attempts = feature_attempts(backlog.store, feature.id)
        totals = backlog.store.totals(attempts)
        unknown += totals.unknown_cost
        if totals.cost_usd is not None:
            spent += totals.cost_usd
            known += 1
        if state == "passed" and attempts:
            cost = totals.cost_usd if totals.unknown_cost == 0 else None
            samples.setdefault(feature.category, []).append(
                (cost, sum(attempt_seconds(a) for a in attempts))
            )
        elif state in ("pending", "in_progress", "failed") and not feature.manual:
            remaining[feature.category] = remaining.get(feature.category, 0) + 1
    every = [s for group in samples.values() for s in group]
    per_category = {}
    for category, left in sorted(remaining.items()):
        own = samples.get(category)
        per_category[category] = {
            "remaining": left,
            "from": "category" if own else "all passed features",
            "forecast": forecast_json(forecast(own or every, left)),
        }
    total_left = sum(remaining.values())
    claimed = {
        r[0]
        for r in backlog.store.db.execute(
            "SELECT DISTINCT feature_id FROM feature_claims WHERE verdict IS NULL"
        )
    }
    return {
        "unverified": sum(f.id in claimed and f.state != "passed" for f in features),
        "total": len(features),
        "passed": counts.get("passed", 0),
        "states": counts,
        "cost_usd": None if unknown and not known else float(spent),
        "cost_unknown_attempts": unknown,
        "remaining": total_left,
        "forecast": _sum_forecasts(per_category),
        "by_category": per_category,
    }


def _sum_forecasts(per_category: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    parts = [c["forecast"] for c in per_category.values() if c["forecast"] is not None]
    if not parts or len(parts) < len(per_category):
        return None  # some category has nothing to estimate from
    total: dict[str, Any] = {}
    for key in ("cost_median", "cost_low", "cost_high"):
        values = [p[key] for p in parts]
        total[key] = None if any(v is None for v in values) else sum(values)
    for key in ("seconds_median", "seconds_low", "seconds_high", "remaining"):
        total[key] = sum(p[key] for p in parts)
    return total
