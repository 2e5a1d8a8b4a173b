"""The real Claude Code CLI (bundled with claude-agent-sdk) against nightcrew.sim."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk import ClaudeAgentOptions, Message, ResultMessage, ToolUseBlock, query

from nightcrew.usage.globaldb import open_global, transcript_entries
from nightcrew.usage.pricing import Pricer
from nightcrew.usage.transcripts import find_transcripts, import_transcripts

pytestmark = pytest.mark.cli

MODEL = "claude-sonnet-4-5"
# Sonnet 4.5 list prices, USD per million tokens (formats.md section 1.4).
PRICE = {"in": 3.0, "out": 15.0, "cache_read": 0.30, "write_5m": 3.75, "write_1h": 6.0}


def run_agent(prompt: str, cwd: Path, env: dict[str, str]) -> list[Message]:
    """Run one headless CLI session to completion and return every message it emitted."""
    options = ClaudeAgentOptions(
        cwd=cwd,
        model=MODEL,
        permission_mode="acceptEdits",
        allowed_tools=["Bash", "Write", "Read", "Edit"],
        env=env,
    )

    async def collect() -> list[Message]:
        return [message async for message in query(prompt=prompt, options=options)]

    return asyncio.run(collect())


def final_result(messages: list[Message]) -> ResultMessage:
    results = [m for m in messages if isinstance(m, ResultMessage)]
    assert results, f"no result message in {messages!r}"
    return results[-1]


def test_bash_tool_runs_and_usage_is_priced_as_scripted(sim_env: Any, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    usage_1 = {
        "input_tokens": 1000,
        "output_tokens": 200,
        "cache_read_input_tokens": 300,
        "cache_creation_input_tokens": 400,
        "cache_creation": {"ephemeral_5m_input_tokens": 300, "ephemeral_1h_input_tokens": 100},
    }
    usage_2 = {"input_tokens": 1500, "output_tokens": 50, "cache_read_input_tokens": 1200}
    server, env = sim_env(
        {
            "scripts": [
                {
                    "name": "make-marker",
                    "match": {"all": ["Batch 1"]},
                    "turns": [
                        {
                            "text": "Creating the marker.",
                            "tool": {
                                "name": "Bash",
                                "input": {"command": "printf 'made by sim' > marker.txt"},
                            },
                            "usage": usage_1,
                        },
                        {"text": "The marker exists.", "usage": usage_2},
                    ],
                }
            ]
        }
    )

    messages = run_agent("Batch 1: create the marker file.", work, env)

    assert (work / "marker.txt").read_text() == "made by sim"
    result = final_result(messages)
    assert result.is_error is False and result.subtype == "success"
    assert result.result == "The marker exists."
    assert result.model_usage is not None
    usage = result.model_usage[MODEL]
    assert usage["inputTokens"] == 2500
    assert usage["outputTokens"] == 250
    assert usage["cacheReadInputTokens"] == 1500
    assert usage["cacheCreationInputTokens"] == 400
    assert usage["cacheCreationEphemeral1hInputTokens"] == 100
    expected_cost = (
        2500 * PRICE["in"]
        + 250 * PRICE["out"]
        + 1500 * PRICE["cache_read"]
        + 100 * PRICE["write_1h"]
        + (400 - 100) * PRICE["write_5m"]
    ) / 1e6
    assert usage["costUSD"] == pytest.approx(expected_cost, rel=1e-9)
    assert result.total_cost_usd == pytest.approx(expected_cost, rel=1e-9)
    assert [(r.script, r.turn_index) for r in server.requests] == [
        ("make-marker", 0),
        ("make-marker", 1),
    ]
    assert server.requests[0].cwd == str(work)
    assert server.errors == []


def test_write_tool_gets_an_absolute_path_from_cwd(sim_env: Any, tmp_path: Path) -> None:
    work = tmp_path / "project"
    work.mkdir()
    server, env = sim_env(
        {
            "scripts": [
                {
                    "name": "write",
                    "turns": [
                        {
                            "tool": {
                                "name": "Write",
                                "input": {"file_path": "{cwd}/hello.txt", "content": "hello\n"},
                            }
                        },
                        {"text": "Written."},
                    ],
                }
            ]
        }
    )

    messages = run_agent("Write the greeting.", work, env)

    assert (work / "hello.txt").read_text() == "hello\n"
    tool_calls = [
        block
        for m in messages
        for block in getattr(m, "content", [])
        if isinstance(block, ToolUseBlock)
    ]
    assert [(c.name, c.input["file_path"]) for c in tool_calls] == [
        ("Write", str(work / "hello.txt"))
    ]
    assert final_result(messages).result == "Written."
    assert len(server.requests) == 2


def test_transcripts_of_two_sim_runs_import_with_every_response_counted(
    sim_env: Any, tmp_path: Path
) -> None:
    """Each run is a new server; its message and request ids must not repeat the last
    run's, or the import takes one run's responses for copies of the other's."""
    work = tmp_path / "work"
    work.mkdir()
    scenario = {"scripts": [{"name": "s", "turns": [
        {"text": "Looking.", "tool": {"name": "Bash", "input": {"command": "true"}}},
        {"text": "Done."},
    ]}]}  # fmt: skip
    for _ in range(2):
        _, env = sim_env(scenario)  # one config dir for both, as for a person
        assert final_result(run_agent("Batch 1: look.", work, env)).is_error is False
    db = open_global(tmp_path / "usage.db")
    try:
        import_transcripts(db, find_transcripts([tmp_path / "claude-config"]), Pricer())
        assert len(list(transcript_entries(db))) == 4
    finally:
        db.close()
