"""Harness tools in-process: the real Claude Code CLI, driven by ClaudeBackend
with the backlog tools as an SDK MCP server, calls them because the scripted
model (nightcrew.sim) asks it to; the features land in the store, and the tool
results the CLI sends back to the model carry what the tools answered."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from nightcrew.agents.base import AgentEvent, AgentRequest, Finished, ToolCall, ToolResult
from nightcrew.agents.claude import ClaudeBackend
from nightcrew.core.states import ItemState
from nightcrew.mcp.tools import ToolContext, bind
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import Store
from nightcrew.work.backlog import FeatureSpec
from tests.conftest import SimStarter
from tests.integration.support import MODEL, make_project, script

pytestmark = pytest.mark.cli

FEATURES = [
    {"name": "Database schema", "category": "infrastructure", "acceptance": ["test -f db.sql"]},
    {
        "name": "Sign up",
        "acceptance": ["pytest -q tests/test_signup.py"],
        "depends_on_indices": [0],
    },
    {"name": "Log in", "acceptance": ["pytest -q tests/test_login.py"], "depends_on_indices": [1]},
    {"name": "No way to check"},  # rejected: neither acceptance commands nor manual
]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_project(tmp_path / "proj", "")


@pytest.fixture
def backlog(root: Path) -> Iterator[Backlog]:
    store = Store.open(root / ".nightcrew" / "nightcrew.db")
    yield Backlog(store)
    store.close()


def run_agent(request: AgentRequest) -> list[AgentEvent]:
    async def collect() -> list[AgentEvent]:
        return [event async for event in ClaudeBackend().run(request)]

    return asyncio.run(asyncio.wait_for(collect(), timeout=120))


def tool(name: str, arguments: dict[str, object]) -> dict[str, object]:
    return {"tool": {"name": f"mcp__nightcrew__{name}", "input": arguments}}


def test_the_agent_creates_a_backlog_through_the_harness_tools(
    root: Path, backlog: Backlog, sim_env: SimStarter
) -> None:
    sim, env = sim_env(
        {
            "scripts": [
                script(
                    "init",
                    ["Turn the spec into features"],
                    [
                        tool("create_features", {"features": FEATURES}),
                        tool("get_stats", {}),
                        tool("get_feature", {"id": 99}),
                        {"text": "Backlog ready."},
                    ],
                )
            ]
        }
    )
    context = ToolContext(backlog, source="agent:test-run")
    request = AgentRequest(
        prompt="Turn the spec into features.",
        cwd=root,
        model=MODEL,
        env=env,
        harness_tools=bind(context),
    )
    events = run_agent(request)

    finished = events[-1]
    assert isinstance(finished, Finished)
    assert finished.status == "success", finished.error
    # the features are in the store, with the graph the indices described
    features = backlog.features()
    assert [f.name for f in features] == ["Database schema", "Sign up", "Log in"]
    schema, signup, login = features
    assert signup.depends_on == (schema.id,)
    assert login.depends_on == (signup.id,)
    assert all(f.state == ItemState.PENDING for f in features)
    # what the CLI sent back to the model: the created ids and the rejection ...
    answers = [r.last_user_text for r in sim.requests]
    created = json.loads(answers[1])
    assert created["ids"] == [schema.id, signup.id, login.id, None]
    assert "no acceptance command" in created["rejected"][0]["reason"]
    # ... the stats ...
    assert json.loads(answers[2])["message"] == "0 of 3 features passed; 1 ready to build"
    # ... and a refused call as an error result whose first line is ours (Claude Code
    # appends a reminder of the tool's schema), the session going on
    assert answers[3].splitlines()[0] == "get_feature: no feature #99 in the backlog"
    results = [e for e in events if isinstance(e, ToolResult)]
    assert [r.is_error for r in results] == [False, False, True]
    calls = [e.name for e in events if isinstance(e, ToolCall)]
    assert calls == [
        "mcp__nightcrew__create_features",
        "mcp__nightcrew__get_stats",
        "mcp__nightcrew__get_feature",
    ]


def test_the_build_agent_claims_and_asks_for_its_own_feature(
    root: Path, backlog: Backlog, sim_env: SimStarter
) -> None:
    backlog.create([FeatureSpec("OAuth login", acceptance=("test -f oauth.txt",))], source="t")
    backlog.claim(1, by="run-7")
    sim, env = sim_env(
        {
            "scripts": [
                script(
                    "build",
                    ["Build feature #1"],
                    [
                        tool("claim_passing", {"note": "login works"}),
                        tool("request_human_input", {"question": "Which OAuth provider?"}),
                        {"text": "Waiting for an answer."},
                    ],
                )
            ]
        }
    )
    context = ToolContext(backlog, source="agent:run-7", feature_id=1, attempt_id=3)
    request = AgentRequest(
        prompt="Build feature #1.",
        cwd=root,
        model=MODEL,
        env=env,
        harness_tools=bind(context, ["claim_passing", "request_human_input"]),
    )
    finished = run_agent(request)[-1]

    assert isinstance(finished, Finished) and finished.status == "success", finished
    [claim] = backlog.open_claims(1)
    assert (claim["source"], claim["attempt_id"], claim["note"]) == (
        "agent:run-7",
        3,
        "login works",
    )
    feature = backlog.feature(1)
    assert feature.state == ItemState.NEEDS_INPUT
    assert feature.input_request == "Which OAuth provider?"
    answers = [r.last_user_text for r in sim.requests]
    assert "running its acceptance commands (test -f oauth.txt)" in answers[1]
    assert "nightcrew backlog answer 1" in answers[2]
