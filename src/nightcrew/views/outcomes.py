"""How each model's attempts went, beside what it cost: whether a model (or a
routing rule that picks it) pays. Light on purpose: the JSON output reads it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from nightcrew.usage.pricing import CostTotal


@dataclass(frozen=True)
class ModelOutcome:
    """How one model's attempts went: whether a model (or a routing rule that
    picks it) pays. ``attempts`` that used the model, how many of them passed,
    and how many work items those passed."""

    attempts: int
    passed: int
    items_passed: int

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.attempts if self.attempts else None

    def __add__(self, other: ModelOutcome) -> ModelOutcome:
        return ModelOutcome(
            self.attempts + other.attempts,
            self.passed + other.passed,
            self.items_passed + other.items_passed,
        )


def cost_per_passed_item(cost: CostTotal, outcome: ModelOutcome) -> Decimal | None:
    """What each item a model passed cost, counting all of the model's attempts;
    unknown (None, never $0) when any cost is unknown or nothing passed."""
    if not cost.complete or cost.usd is None or outcome.items_passed == 0:
        return None
    return cost.usd / outcome.items_passed
