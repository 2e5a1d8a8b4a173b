"""The claude backend's table of failures a retry cannot fix."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from nightcrew.agents.claude.failures import classify, last_reason


@pytest.mark.parametrize(
    ("status", "text", "stderr", "kind"),
    [
        (None, "Not logged in · Please run /login", [], "not_logged_in"),
        (401, "Invalid API key · Fix external API key", [], "invalid_api_key"),
        (404, "There's an issue with the selected model (x).", [], "model_not_found"),
        (429, "API Error: Request rejected (429) · slow down", [], "usage_limit"),
        (
            None,
            None,
            ["error: option '--max-budget-usd <amount>' argument 'inf' is invalid."],
            "invalid_argument",
        ),
    ],
)
def test_known_failures_are_not_retryable(
    status: int | None, text: str | None, stderr: list[str], kind: str
) -> None:
    found = classify(api_status=status, result_text=text, stderr=stderr)

    assert found is not None
    assert found.kind == kind
    assert not found.retryable
    assert found.advice


def test_a_usage_limit_carries_its_reset_time() -> None:
    found = classify(
        api_status=None, result_text="Claude AI usage limit reached|1800000000", stderr=[]
    )

    assert found is not None and found.kind == "usage_limit"
    assert found.reset_at == datetime.fromtimestamp(1800000000, UTC)
    assert "|" not in found.message


def test_an_overloaded_api_may_be_retried() -> None:
    assert classify(api_status=529, result_text="API Error: Overloaded", stderr=[]) is None


def test_the_reason_is_the_result_text_else_the_last_stderr_line() -> None:
    assert last_reason("Boom\nmore", ["x"]) == "Boom"
    assert last_reason(None, ["first", "last", ""]) == "last"
    assert last_reason(None, []) is None
