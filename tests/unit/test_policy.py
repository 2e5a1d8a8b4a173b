"""What happens after a failed attempt: retry, escalate, skip, stop, or give up as stuck."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import pytest

from nightcrew.engine.policy import (
    BatchPolicy,
    Climb,
    Decision,
    after_failure,
    batch_ladder,
    failed,
)


def decide(
    attempts_made: int,
    *,
    on_failure: Literal["stop", "skip", "retry"] = "retry",
    max_retries: int = 2,
    signatures: Sequence[str | None] | None = None,
    model: str | None = "sonnet",
    escalate_model: str | None = "opus",
    current_model: str | None = None,
) -> Decision:
    if signatures is None:
        signatures = [f"sig-{n}" for n in range(1, attempts_made + 1)]
    return after_failure(
        on_failure=on_failure,
        max_retries=max_retries,
        attempts_made=attempts_made,
        signatures=signatures,
        model=model,
        escalate_model=escalate_model,
        current_model=current_model if current_model is not None else model,
    )


def test_stop_policy_stops_at_the_first_failure() -> None:
    decision = decide(1, on_failure="stop")
    assert decision.action == "stop"
    assert "--on-failure is stop" in decision.reason
    assert not decision.stuck


def test_skip_policy_skips_at_the_first_failure() -> None:
    decision = decide(1, on_failure="skip")
    assert decision.action == "skip"
    assert "--on-failure is skip" in decision.reason


def test_two_retries_mean_three_attempts() -> None:
    first = decide(1)
    second = decide(2)
    third = decide(3)
    assert (first.action, second.action, third.action) == ("retry", "retry", "stop")
    assert first.reason == "retry 1 of 2"
    assert second.reason == "retry 2 of 2"
    assert third.reason == "still failing after 3 attempts"


def test_only_the_last_retry_escalates_the_model() -> None:
    assert decide(1).model == "sonnet"
    assert decide(2).model == "opus"


def test_no_escalation_model_keeps_the_model_for_the_last_retry() -> None:
    assert decide(2, escalate_model=None).model == "sonnet"


def test_single_retry_is_the_last_one_and_escalates() -> None:
    assert decide(1, max_retries=1).model == "opus"
    assert decide(2, max_retries=1).action == "stop"


def test_zero_retries_stops_after_the_first_attempt() -> None:
    assert decide(1, max_retries=0).action == "stop"


@pytest.mark.parametrize("made", [3, 4, 10])
def test_never_retries_beyond_the_maximum(made: int) -> None:
    assert decide(made).action == "stop"


def test_same_failure_twice_in_a_row_is_stuck() -> None:
    decision = decide(2, signatures=["boom", "boom"], escalate_model=None)
    assert decision.action == "stop"
    assert decision.stuck
    assert decision.reason == "stuck: attempts 1 and 2 failed the same way"


def test_stuck_escalates_once_for_a_last_try() -> None:
    decision = decide(2, max_retries=5, signatures=["boom", "boom"])
    assert (decision.action, decision.model, decision.stuck) == ("retry", "opus", True)
    assert decision.reason == "stuck (attempts 1 and 2 failed the same way): one last try with opus"


def test_stuck_again_on_the_escalated_model_stops() -> None:
    decision = decide(3, max_retries=5, signatures=["boom", "boom", "boom"], current_model="opus")
    assert (decision.action, decision.stuck) == ("stop", True)


def test_same_failure_not_in_a_row_is_not_stuck() -> None:
    decision = decide(3, max_retries=5, signatures=["boom", "other", "boom"])
    assert decision.action == "retry"
    assert not decision.stuck


def test_unknown_signatures_are_never_stuck() -> None:
    decision = decide(2, signatures=[None, None])
    assert decision.action == "retry"
    assert not decision.stuck


def test_one_attempt_cannot_be_stuck() -> None:
    assert not decide(1, signatures=["boom"]).stuck


@pytest.mark.parametrize("on_failure", ["retry", "skip", "stop"])
def test_a_critical_batch_stops_the_run_whatever_the_policy(
    on_failure: Literal["stop", "skip", "retry"],
) -> None:
    decision = after_failure(
        on_failure=on_failure,
        max_retries=2,
        attempts_made=1,
        signatures=["sig"],
        model="sonnet",
        escalate_model="opus",
        critical=True,
    )
    assert decision.action == "stop"
    assert "CRITICAL" in decision.reason


def test_stuck_names_the_stored_attempt_numbers_after_a_resume() -> None:
    decision = after_failure(
        on_failure="retry",
        max_retries=2,
        attempts_made=2,  # the second attempt since the resume ...
        signatures=["boom", "boom"],
        model="sonnet",
        escalate_model=None,
        numbers=[3, 4],  # ... is attempt 4 of the batch, as the log and status say
    )
    assert decision.reason == "stuck: attempts 3 and 4 failed the same way"


# ---- the one policy: a batch on the same Climb as a feature -----------------------------


def test_a_batch_is_a_two_rung_ladder_stuck_after_two_equal_failures() -> None:
    policy = BatchPolicy("retry", max_retries=5)
    climb = Climb(batch_ladder("sonnet", "opus"))
    assert batch_ladder("sonnet", None) == ("sonnet",) == batch_ladder("sonnet", "sonnet")

    assert failed(policy, climb, "a", 1, "sonnet") == Decision("retry", "retry 1 of 5", "sonnet")
    assert failed(policy, climb, "b", 2, "sonnet").model == "sonnet"
    stuck = failed(policy, climb, "b", 3, "sonnet")
    assert stuck == Decision(
        "retry",
        "stuck (attempts 2 and 3 failed the same way): one last try with opus",
        "opus",
        True,
    )
    assert climb.model == "opus" and climb.rung_signatures == []  # a new rung
    last = failed(policy, climb, "b", 4, "opus")
    assert last == Decision("stop", "stuck: attempts 3 and 4 failed the same way", None, True)


def test_a_critical_batch_stops_whatever_its_ladder() -> None:
    climb = Climb(batch_ladder("sonnet", "opus"))
    decision = failed(BatchPolicy("skip", 2, critical=True), climb, "a", 1, "sonnet")
    assert decision.action == "stop" and "CRITICAL" in decision.reason
