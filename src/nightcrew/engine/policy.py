"""What happens after a failed attempt: retry (with the digest, escalating the
model for the last try), skip, or stop; and when retrying is pointless because
the same failure came back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Action = Literal["retry", "skip", "stop"]


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    model: str | None = None  # the model for the retry
    stuck: bool = False


def after_failure(
    *,
    on_failure: Literal["stop", "skip", "retry"],
    max_retries: int,
    attempts_made: int,
    signatures: Sequence[str | None],
    model: str | None,
    escalate_model: str | None,
) -> Decision:
    """``attempts_made`` counts this batch's attempts in this policy window;
    ``signatures`` are their failure signatures, oldest first."""
    if on_failure == "stop":
        return Decision("stop", "the batch failed and --on-failure is stop")
    if on_failure == "skip":
        return Decision("skip", "the batch failed and --on-failure is skip")
    if len(signatures) >= 2 and signatures[-1] is not None and signatures[-1] == signatures[-2]:
        return Decision(
            "stop",
            f"stuck: attempts {attempts_made - 1} and {attempts_made} failed the same way",
            stuck=True,
        )
    if attempts_made > max_retries:
        return Decision("stop", f"still failing after {attempts_made} attempts")
    is_last = attempts_made + 1 == max_retries + 1
    next_model = escalate_model if (is_last and escalate_model) else model
    return Decision("retry", f"retry {attempts_made} of {max_retries}", model=next_model)
