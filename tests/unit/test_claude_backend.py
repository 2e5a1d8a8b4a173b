"""What the Claude Code backend says in typed form, so the engine never needs
Claude Code's own words: its budget backstop, its tool names, its defaults."""

from __future__ import annotations

from claude_agent_sdk import ResultMessage

from nightcrew.agents.base import Finished
from nightcrew.agents.claude import ClaudeBackend
from nightcrew.agents.claude.backend import DEFAULT_ALLOWED_TOOLS, _Translator


def result(subtype: str, *, is_error: bool) -> Finished:
    message = ResultMessage(
        subtype=subtype,
        duration_ms=1,
        duration_api_ms=1,
        is_error=is_error,
        num_turns=1,
        session_id="s1",
        total_cost_usd=0.5,
        result="stopped",
    )
    events = list(_Translator().translate(message))
    assert len(events) == 1 and isinstance(events[0], Finished)
    return events[0]


def test_the_budget_backstop_is_said_on_finished() -> None:
    stopped = result("error_max_budget_usd", is_error=True)
    assert stopped.budget_stopped
    assert stopped.result_subtype == "error_max_budget_usd"  # still stored as before


def test_other_endings_are_not_budget_stops() -> None:
    assert not result("success", is_error=False).budget_stopped
    assert not result("error_during_execution", is_error=True).budget_stopped
    assert not result("error_max_turns", is_error=True).budget_stopped


def test_harness_tools_are_named_as_claude_code_names_mcp_tools() -> None:
    assert ClaudeBackend().tool_name("create_features") == "mcp__nightcrew__create_features"


def test_capabilities_and_default_tools() -> None:
    backend = ClaudeBackend()
    caps = backend.capabilities
    assert caps.reports_cost and caps.resumable_sessions
    assert caps.harness_tools and caps.tool_policy
    assert backend.default_allowed_tools == DEFAULT_ALLOWED_TOOLS
    assert "Bash" in DEFAULT_ALLOWED_TOOLS and "Edit" in DEFAULT_ALLOWED_TOOLS
