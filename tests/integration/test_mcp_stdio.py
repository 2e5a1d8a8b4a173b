"""``nightcrew mcp`` as a person's MCP client sees it: the real command over
stdio, driven by the ``mcp`` client library, against a real project store
that another process writes at the same time."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.types import CallToolResult, TextContent

from nightcrew.mcp.tools import TOOL_NAMES
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import Store
from nightcrew.work.backlog import FeatureSpec
from tests.integration.support import make_project


def text(result: CallToolResult) -> str:
    [block] = result.content
    assert isinstance(block, TextContent)
    return block.text


def data(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, text(result)
    loaded: dict[str, Any] = json.loads(text(result))
    assert result.structured_content == loaded
    return loaded


def server(*args: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "nightcrew", "mcp", *args],
        env={"NIGHTCREW_HOME": os.environ["NIGHTCREW_HOME"]},
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_project(tmp_path / "proj", "")


def test_a_client_builds_and_reads_a_backlog_over_stdio(root: Path, tmp_path: Path) -> None:
    async def session() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with (
            stdio_client(server("--project", str(root))) as (read, write),
            ClientSession(read, write) as client,
        ):
            init = await client.initialize()
            seen["server"] = init.server_info.name
            seen["tools"] = [t.name for t in (await client.list_tools()).tools]
            seen["created"] = data(
                await client.call_tool(
                    "create_features",
                    {
                        "features": [
                            {"name": "Schema", "acceptance": ["test -f db.sql"]},
                            {"name": "Signup", "acceptance": ["true"], "depends_on_indices": [0]},
                            {"name": "Login", "acceptance": ["true"], "depends_on_indices": [1]},
                            {"name": "Untestable"},
                        ]
                    },
                )
            )
            seen["ready"] = data(await client.call_tool("get_ready_features", {}))
            # the build (another process, another connection) adds one meanwhile
            store = Store.open(root / ".nightcrew" / "nightcrew.db")
            try:
                Backlog(store).create(
                    [FeatureSpec("From build", acceptance=("true",))], source="build"
                )
            finally:
                store.close()
            seen["stats"] = data(await client.call_tool("get_stats", {}))
            seen["claim"] = data(await client.call_tool("claim_passing", {"id": 1}))
            cycle = await client.call_tool("set_dependencies", {"id": 1, "depends_on": [3]})
            seen["cycle"] = (cycle.is_error, text(cycle))
            bad = await client.call_tool("get_feature", {"id": "one"})
            seen["bad"] = (bad.is_error, text(bad))
            # the server is still there after the errors
            seen["after"] = data(await client.call_tool("get_feature", {"id": 3}))
        return seen

    seen = anyio.run(session)

    assert seen["server"] == "nightcrew"
    assert seen["tools"] == list(TOOL_NAMES)
    assert seen["created"]["ids"][:3] == [1, 2, 3] and seen["created"]["ids"][3] is None
    assert "no acceptance command" in seen["created"]["rejected"][0]["reason"]
    assert [f["name"] for f in seen["ready"]["ready"]] == ["Schema"]
    assert (seen["stats"]["total"], seen["stats"]["ready_count"]) == (4, 2)
    assert "does not mark it passed" in seen["claim"]["message"]
    assert seen["cycle"] == (
        True,
        "set_dependencies: that would make a dependency cycle: #1 → #3 → #2 → #1",
    )
    assert seen["bad"] == (True, "get_feature: 'id' must be an integer, not a string")
    assert seen["after"]["depends_on"] == [2]

    # the store file says the same, and who wrote what
    db = sqlite3.connect(root / ".nightcrew" / "nightcrew.db")
    rows = db.execute("SELECT id, name, state FROM features ORDER BY id").fetchall()
    assert [(n, s) for _, n, s in rows] == [
        ("Schema", "pending"),
        ("Signup", "pending"),
        ("Login", "pending"),
        ("From build", "pending"),
    ]
    edges = db.execute("SELECT feature_id, depends_on FROM feature_deps ORDER BY 1").fetchall()
    assert edges == [(2, 1), (3, 2)]
    [(source, verdict)] = db.execute("SELECT source, verdict FROM feature_claims").fetchall()
    assert source.startswith("mcp:") and verdict is None
    reasons = [r for (r,) in db.execute("SELECT reason FROM state_history WHERE entity='feature'")]
    assert reasons.count(f"created ({source})") == 3
    db.close()


@pytest.mark.parametrize("entry", [["nightcrew", "mcp"], ["nightcrew.mcp.server"]])
def test_outside_a_git_repository_it_says_so_and_exits_2(tmp_path: Path, entry: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *entry, "--project", str(tmp_path)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "not inside a git repository" in result.stderr
    assert not (tmp_path / ".nightcrew").exists()
