"""One attempt without the CLI: every way it ends is one typed AttemptResult
(or BudgetSpent when none could start), stored once by ``finish``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from nightcrew.core.states import AttemptState
from nightcrew.core.usage import ModelUsage, TokenCounts
from nightcrew.engine.attempt_run import AttemptResult, BudgetSpent, run_attempt
from nightcrew.engine.batch import BatchWork
from nightcrew.testing import FakeBackend, Script, success
from tests.unit.run_context import Lanes, plan_text


@pytest.fixture
def backends() -> Iterator[list[FakeBackend]]:
    made: list[FakeBackend] = []
    yield made
    for backend in made:
        backend.reap()


def attempt(lanes: Lanes, **settings: object) -> AttemptResult | BudgetSpent:
    ctx = replace(lanes.ctx, settings=lanes.ctx.settings.model_copy(update=settings))
    batch, item = lanes.items[0]
    work = BatchWork.of(ctx, batch, item)
    return asyncio.run(
        run_attempt(
            ctx, work.job, item, model="sonnet", previous=None, base_sha=None, baseline=None
        )
    )


def test_a_passed_attempt_waits_for_its_commit(tmp_path: Path) -> None:
    lanes = Lanes(tmp_path, FakeBackend([Script()]), plan_text(1))

    result = attempt(lanes)

    assert isinstance(result, AttemptResult)
    assert (result.end, result.state, result.number, result.model) == ("passed", None, 1, "sonnet")
    assert [g.name for g in result.results] and all(g.passed for g in result.results)
    assert lanes.store.attempt(result.attempt.id).state == AttemptState.RUNNING


def test_a_crash_is_finished_with_its_digest_signature_and_what_the_next_attempt_is_told(
    tmp_path: Path,
) -> None:
    lanes = Lanes(tmp_path, FakeBackend([Script(error=RuntimeError("boom"))]), plan_text(1))

    result = attempt(lanes)

    assert isinstance(result, AttemptResult)
    assert (result.end, result.state) == ("failed", AttemptState.CRASHED)
    assert result.digest == "The agent session ended with an error: RuntimeError: boom"
    assert result.signature is not None and result.signature.startswith("crashed:")
    assert result.previous is not None and result.previous.outcome == "crashed"
    stored = lanes.store.attempt(result.attempt.id)
    assert (stored.state, stored.digest) == (AttemptState.CRASHED, result.digest)


def test_the_cost_the_agent_reported_is_the_results_cost(tmp_path: Path) -> None:
    cent = ModelUsage("claude-sonnet-4-5", TokenCounts(input=10), Decimal("0.01"))
    backend = FakeBackend([Script(finished=success(model_usage=(cent,)))])
    lanes = Lanes(tmp_path, backend, plan_text(1))

    result = attempt(lanes)

    assert isinstance(result, AttemptResult)
    assert result.cost_usd == Decimal("0.01")


def test_a_spent_budget_is_a_typed_stop_and_starts_no_attempt(tmp_path: Path) -> None:
    backend = FakeBackend([Script()])
    lanes = Lanes(tmp_path, backend, plan_text(1))

    result = attempt(lanes, max_budget_usd=0.0)

    assert isinstance(result, BudgetSpent)
    assert "run budget" in result.message
    assert backend.requests == []
    assert lanes.store.attempts(run_id=lanes.ctx.run.id) == []


def test_an_agent_past_its_timeout_is_stopped_and_judged_timed_out(
    tmp_path: Path, backends: list[FakeBackend]
) -> None:
    backend = FakeBackend(
        [Script(child=True, wait_for_child=True, events=(), finished=None, session_id=None)]
    )
    backends.append(backend)
    lanes = Lanes(tmp_path, backend, plan_text(1))

    result = attempt(lanes, attempt_timeout=0.01)  # the child sleeps a minute

    assert isinstance(result, AttemptResult)
    assert (result.end, result.state) == ("failed", AttemptState.TIMED_OUT)
    assert result.previous is not None and result.previous.outcome == "timed_out"


def test_a_judged_attempt_keeps_the_files_it_changed(tmp_path: Path) -> None:
    lanes = Lanes(
        tmp_path, FakeBackend([Script(writes={"src/cart.py": "x = 1\n", "a.md": "a\n"})]),
        plan_text(1),
    )  # fmt: skip

    result = attempt(lanes)

    assert isinstance(result, AttemptResult)
    assert lanes.store.attempt(result.attempt.id).files == ("a.md", "src/cart.py")
