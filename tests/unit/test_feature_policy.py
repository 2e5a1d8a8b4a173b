"""A backlog feature's policy: the model ladder it climbs when stuck, when it is
given up, and how a build replays that from the store after a restart."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import pytest

from nightcrew.config import Settings
from nightcrew.core.states import AttemptState
from nightcrew.engine.feature import replay
from nightcrew.engine.policy import Decision, after_feature_failure, model_ladder
from nightcrew.store.records import ItemRow, RunRow, Store
from tests.unit.store_rows import new_attempt, new_item, new_run

CHAIN = ("haiku", "sonnet", "opus")


@pytest.mark.parametrize(
    ("model", "override", "ladder"),
    [
        (None, None, CHAIN),
        ("sonnet", None, ("sonnet", "opus")),  # --model inside the chain climbs from there
        ("gpt-x", None, ("gpt-x", *CHAIN)),  # outside it goes first
        (None, "opus", ("opus",)),  # retry --model opus: top of the chain
        ("haiku", "sonnet", ("sonnet", "opus")),  # the feature's own model wins
        ("haiku", "mine", ("mine",)),  # an override outside the chain is used alone
    ],
)
def test_ladder(model: str | None, override: str | None, ladder: tuple[str, ...]) -> None:
    assert model_ladder(CHAIN, model, override) == ladder


def test_ladder_without_a_chain_is_the_model_or_the_agents_default() -> None:
    assert model_ladder((), "sonnet") == ("sonnet",)
    assert model_ladder((), None) == (None,)
    assert model_ladder(("a", "b", "a"), None) == ("a", "b")  # repeats dropped


def decide(
    signatures: Sequence[str | None],
    *,
    rung: int = 0,
    made: int | None = None,
    ladder: Sequence[str | None] = CHAIN,
    on_failure: Literal["stop", "skip", "retry"] = "retry",
    max_attempts: int = 10,
    stuck_after: int = 3,
) -> Decision:
    return after_feature_failure(
        on_failure=on_failure,
        ladder=ladder,
        rung=rung,
        rung_signatures=signatures,
        attempts_made=len(signatures) if made is None else made,
        max_attempts=max_attempts,
        stuck_after=stuck_after,
    )


def test_different_failures_retry_on_the_same_model() -> None:
    decision = decide(["a", "b", "c"])
    assert decision.action == "retry" and decision.model == "haiku" and not decision.stuck


def test_the_same_failure_three_times_climbs_to_the_next_model() -> None:
    assert decide(["x", "x"]).action == "retry"
    assert decide(["x", "x"]).model == "haiku"  # twice is not yet stuck
    decision = decide(["y", "x", "x", "x"])
    assert decision == Decision(
        "retry", "stuck (attempts 2–4 failed the same way): escalating to sonnet", "sonnet", True
    )


def test_stuck_on_the_last_model_gives_up() -> None:
    decision = decide(["x", "x", "x"], rung=2, made=9, max_attempts=20)
    assert decision.action == "give_up" and decision.stuck
    assert "on opus, the last model of the chain" in decision.reason


def test_unknown_signatures_never_count_as_the_same_failure() -> None:
    assert decide([None, None, None]).action == "retry"
    assert not decide([None, None, None]).stuck


def test_the_attempt_cap_gives_up_whatever_the_failures() -> None:
    decision = decide(["a", "b", "c"], max_attempts=3)
    assert decision.action == "give_up"
    assert "after 3 attempts" in decision.reason


def test_stuck_after_is_configurable() -> None:
    assert decide(["x", "x"], stuck_after=2).model == "sonnet"
    assert decide(["x"], stuck_after=1, ladder=("solo",)).action == "give_up"


def test_skip_and_stop_policies() -> None:
    assert decide(["a"], on_failure="skip").action == "give_up"
    assert decide(["a"], on_failure="stop").action == "stop"


# ---- replaying the ladder from the store ------------------------------------------------


def fail(store: Store, run: RunRow, item: ItemRow, model: str | None, sig: str | None) -> None:
    attempt = new_attempt(store, run, item, model=model or "default")
    store.finish_attempt(
        attempt.id,
        AttemptState.FAILED,
        reason="gates failed",
        digest=f"failed: {sig}",
        signature=sig,
    )


def test_a_reopened_store_gives_the_same_model_count_and_failures_in_a_row(
    tmp_path: Path,
) -> None:
    settings = Settings(escalation=CHAIN, stuck_after=3)
    store = Store.open(tmp_path / "nc.db")
    run = new_run(store)
    item = new_item(store, run)
    for model, sig in [("haiku", "x"), ("haiku", "x"), ("haiku", "x"), ("sonnet", "y")]:
        fail(store, run, item, model, sig)
    crashed = new_attempt(store, run, item, model="sonnet")  # the orchestrator died here
    store.finish_attempt(crashed.id, AttemptState.CRASHED, reason="orchestrator stopped")
    store.close()

    store = Store.open(tmp_path / "nc.db")
    climb = replay(settings, None, store.attempts(item_id=item.id), start=1)
    assert climb.model == "sonnet"  # climbed once, and stays there
    assert climb.attempts_made == 4  # the crash is not the feature's fault
    assert climb.rung_signatures == ["y"]
    assert climb.previous is not None and climb.previous.digest == "failed: y"
    assert climb.verdict is None
    # two more "y" and the next failure climbs to opus
    fail(store, run, item, "sonnet", "y")
    fail(store, run, item, "sonnet", "y")
    climb = replay(settings, None, store.attempts(item_id=item.id), start=1)
    assert climb.model == "opus" and climb.rung_signatures == []
    store.close()


def test_a_window_counts_from_its_start_and_a_finished_ladder_is_a_verdict(
    tmp_path: Path,
) -> None:
    settings = Settings(escalation=("haiku",), stuck_after=2)
    store = Store.open(tmp_path / "nc.db")
    run = new_run(store)
    item = new_item(store, run)
    fail(store, run, item, "haiku", "x")
    fail(store, run, item, "haiku", "x")  # stuck at the top: given up...
    climb = replay(settings, None, store.attempts(item_id=item.id), start=1)
    assert climb.verdict is not None and climb.verdict.action == "give_up"
    # ...then a person sent it back: the new window starts at attempt 3
    fail(store, run, item, "haiku", "x")
    climb = replay(settings, None, store.attempts(item_id=item.id), start=3)
    assert climb.verdict is None and climb.attempts_made == 1
    store.close()


def test_stuck_at_the_top_names_the_model_the_agent_really_used() -> None:
    decision = after_feature_failure(
        on_failure="retry",
        ladder=(None,),  # no --model, no chain: the agent's default
        rung=0,
        rung_signatures=["x", "x", "x"],
        attempts_made=3,
        max_attempts=10,
        stuck_after=3,
        used_model="claude-sonnet-4-5",
    )
    assert decision.reason == (
        "stuck (attempts 1–3 failed the same way) on claude-sonnet-4-5, the last model of the chain"
    )


def test_stuck_names_the_stored_attempt_numbers() -> None:
    decision = after_feature_failure(
        on_failure="retry",
        ladder=CHAIN,
        rung=0,
        rung_signatures=["x", "x", "x"],
        attempts_made=3,  # three since the feature was sent back by a person ...
        max_attempts=10,
        stuck_after=3,
        rung_numbers=[5, 6, 7],  # ... which the log and status call attempts 5 to 7
    )
    assert decision.reason == "stuck (attempts 5–7 failed the same way): escalating to sonnet"
