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
    current_model: str | None = None,
) -> Decision:
    """``attempts_made`` counts this batch's attempts in this policy window;
    ``signatures`` are their failure signatures, oldest first; ``model`` is the
    run's model and ``current_model`` the one the failed attempt used.

    A batch is stuck when two attempts in a row fail the same way: retrying
    the same model again is pointless, so it gets one last try with the
    escalation model (when there is one and it was not used yet), then stops.
    """
    if on_failure == "stop":
        return Decision("stop", "the batch failed and --on-failure is stop")
    if on_failure == "skip":
        return Decision("skip", "the batch failed and --on-failure is skip")
    if len(signatures) >= 2 and signatures[-1] is not None and signatures[-1] == signatures[-2]:
        same = f"attempts {attempts_made - 1} and {attempts_made} failed the same way"
        if escalate_model and current_model != escalate_model:
            return Decision(
                "retry",
                f"stuck ({same}): one last try with {escalate_model}",
                model=escalate_model,
                stuck=True,
            )
        return Decision("stop", f"stuck: {same}", stuck=True)
    if attempts_made > max_retries:
        return Decision("stop", f"still failing after {attempts_made} attempts")
    is_last = attempts_made + 1 == max_retries + 1
    next_model = escalate_model if (is_last and escalate_model) else model
    return Decision("retry", f"retry {attempts_made} of {max_retries}", model=next_model)
