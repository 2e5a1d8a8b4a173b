"""Failures of the agent a retry cannot fix, through the real CLI: the console
and ``status`` show the agent's own reason, the run stops at once with exit 2,
and no retry is spent."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SimStarter
from tests.integration.support import (
    MODEL,
    make_project,
    nightcrew_env,
    plan_text,
    run_nightcrew,
    status,
)

pytestmark = pytest.mark.cli


def failing(sim_env: SimStarter, error: dict[str, Any]) -> dict[str, str]:
    _, sim = sim_env({"fallback": {"error": error}})
    return {**nightcrew_env(sim), "CLAUDE_CODE_MAX_RETRIES": "0"}


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            {"status": 401, "type": "authentication_error", "message": "invalid x-api-key"},
            "Invalid API key",
        ),
        (
            {"status": 404, "type": "not_found_error", "message": "model: nope"},
            "issue with the selected model",
        ),
        (
            {"status": 429, "type": "rate_limit_error", "message": "per-minute rate limit"},
            "per-minute rate limit",
        ),
    ],
)
def test_an_api_refusal_stops_the_run_with_the_agents_reason(
    tmp_path: Path, sim_env: SimStarter, error: dict[str, Any], reason: str
) -> None:
    root = make_project(tmp_path / "proj", plan_text(["One", "Two"]))
    env = failing(sim_env, error)

    result = run_nightcrew(root, env, "run", "PLAN.md", "--model", MODEL, "--max-retries", "3")

    assert result.returncode == 2, result.stdout + result.stderr
    assert reason in result.stdout + result.stderr
    assert "unknown error" not in result.stdout + result.stderr
    data = status(root, env)
    assert data["run"]["state"] == "failed"
    assert reason in data["run"]["message"]
    first = data["batches"][0]
    assert first["attempts"] == 1  # no retry was spent
    assert reason in first["attempt_usage"][0]["reason"]
    assert data["batches"][1]["attempts"] == 0
    text = run_nightcrew(root, env, "status")
    assert reason in text.stdout


def test_not_logged_in_says_so(tmp_path: Path, sim_env: SimStarter) -> None:
    root = make_project(tmp_path / "proj", plan_text(["One"]))
    _, sim = sim_env({"fallback": {"text": "OK."}})
    env = nightcrew_env(sim)
    env.pop("ANTHROPIC_API_KEY")

    result = run_nightcrew(root, env, "run", "PLAN.md", "--model", MODEL)

    assert result.returncode == 2, result.stdout + result.stderr
    assert "Not logged in" in result.stdout + result.stderr
    assert "ANTHROPIC_API_KEY" in result.stdout + result.stderr  # the advice
    assert status(root, env)["batches"][0]["attempts"] == 1


def test_an_infinite_budget_is_refused_before_the_cli_sees_it(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    # Claude Code refuses `--max-budget-usd inf` ("argument 'inf' is invalid",
    # exit 1) after a session has started: nightcrew refuses it first.
    root = make_project(tmp_path / "proj", plan_text(["One"]))
    server, sim = sim_env({"fallback": {"text": "OK."}})
    env = nightcrew_env(sim)

    result = run_nightcrew(root, env, "run", "PLAN.md", "--model", MODEL, "--max-budget-usd", "inf")

    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == (
        "nightcrew: command line: --max-budget-usd: must be a finite number, got inf"
    )
    assert server.requests == []


def test_wait_on_limit_waits_for_the_reset_and_tries_again(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", plan_text(["One"]))
    reset = int(time.time()) - 60  # already past: the run waits for nothing
    error = {
        "status": 429,
        "type": "rate_limit_error",
        "message": f"Claude AI usage limit reached|{reset}",
        "times": 1,
    }
    _, sim = sim_env({"fallback": {"text": "OK.", "error": error}})
    env = {**nightcrew_env(sim), "CLAUDE_CODE_MAX_RETRIES": "0"}

    result = run_nightcrew(
        root, env, "run", "PLAN.md", "--model", MODEL, "--max-retries", "0", "--wait-on-limit"
    )

    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "usage limit reached: waiting until" in out
    data = status(root, env)
    assert data["run"]["state"] == "succeeded"
    assert [a["state"] for a in data["batches"][0]["attempt_usage"]] == ["crashed", "passed"]
