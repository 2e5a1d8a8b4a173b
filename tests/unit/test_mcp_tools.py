"""The backlog tools against a real SQLite store: what an agent (or a person's
MCP client) sees when it calls them, and what ends up in the backlog."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nightcrew.agents.base import ToolReply
from nightcrew.core.states import ItemState
from nightcrew.mcp.tools import TOOL_NAMES, TOOLS, ToolContext, bind, call_tool
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import Store
from nightcrew.work.backlog import FeatureSpec


@pytest.fixture
def backlog(tmp_path: Path) -> Iterator[Backlog]:
    store = Store.open(tmp_path / ".nightcrew" / "nightcrew.db")
    yield Backlog(store)
    store.close()


@pytest.fixture
def context(backlog: Backlog) -> ToolContext:
    return ToolContext(backlog, source="agent:run-1")


def ok(context: ToolContext, name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    reply = call_tool(context, name, args or {})
    assert not reply.is_error, reply.text
    assert reply.data is not None
    assert json.loads(reply.text) == reply.data  # the text the agent reads says the same
    return dict(reply.data)


def error(context: ToolContext, name: str, args: dict[str, Any]) -> str:
    reply = call_tool(context, name, args)
    assert reply.is_error, reply.text
    assert reply.data is None
    assert "\n" not in reply.text and "Traceback" not in reply.text
    return reply.text


def feature(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "acceptance": [f"test -f {name.lower()}.txt"], **fields}


def test_bulk_create_with_indices_builds_the_dependency_graph(context: ToolContext) -> None:
    reply = ok(
        context,
        "create_features",
        {
            "features": [
                feature("Schema", category="infrastructure"),
                feature("Signup", depends_on_indices=[0]),
                feature("Login", depends_on_indices=[0, 1]),
                feature("Docs"),
            ]
        },
    )
    assert reply["ids"] == [1, 2, 3, 4]
    assert reply["rejected"] == []
    assert reply["message"] == "created 4 of 4 feature(s): #1, #2, #3, #4"

    graph = ok(context, "get_dependency_graph")
    assert sorted((e["feature"], e["depends_on"]) for e in graph["edges"]) == [
        (2, 1),
        (3, 1),
        (3, 2),
    ]
    order = graph["order"]
    assert order.index(1) < order.index(2) < order.index(3)
    assert {n["id"]: n["state"] for n in graph["nodes"]} == {
        1: "pending",
        2: "pending",
        3: "pending",
        4: "pending",
    }
    # only what has no unmet dependency is ready; the schema unblocks most, so it leads
    ready = ok(context, "get_ready_features")
    assert [f["id"] for f in ready["ready"]] == [1, 4]
    assert ok(context, "get_ready_features", {"limit": 1})["ready"][0]["name"] == "Schema"

    # a later call may depend on stored features by id
    later = ok(context, "create_features", {"features": [feature("Profile", depends_on=[3])]})
    assert context.backlog.feature(later["ids"][0]).depends_on == (3,)


def test_rejections_come_back_with_reasons_and_the_valid_ones_are_created(
    context: ToolContext,
) -> None:
    reply = ok(
        context,
        "create_features",
        {
            "features": [
                feature("Schema"),
                {"name": "Untestable"},  # no acceptance, not manual
                feature("On a rejected one", depends_on_indices=[1]),
                feature("Unknown dependency", depends_on=[99]),
                feature("Forward", depends_on_indices=[5]),
                {"name": "Looks right", "manual": True},
            ]
        },
    )
    first, *rejected, last = reply["ids"]
    assert rejected == [None, None, None, None]
    assert [c["name"] for c in reply["created"]] == ["Schema", "Looks right"]
    reasons = {r["index"]: r["reason"] for r in reply["rejected"]}
    assert "no acceptance command" in reasons[1]
    assert "index 1, which was rejected" in reasons[2]
    assert "#99, which is not in the backlog" in reasons[3]
    assert "only earlier features" in reasons[4]
    assert "4 rejected" in reply["message"]
    assert [f.name for f in context.backlog.features()] == ["Schema", "Looks right"]
    assert context.backlog.feature(last).manual
    assert [c["id"] for c in reply["created"]] == [first, last]


def test_create_one_feature_or_say_why_not(context: ToolContext) -> None:
    made = ok(context, "create_feature", feature("Schema", priority=2, files=["db.py"]))
    assert made["id"] == 1
    stored = context.backlog.feature(1)
    assert (stored.priority, stored.files, stored.acceptance) == (
        2,
        ("db.py",),
        ("test -f schema.txt",),
    )
    text = error(context, "create_feature", {"name": "Untestable"})
    assert text.startswith("create_feature: feature not created: no acceptance command")
    assert len(context.backlog.features()) == 1


def test_claim_passing_records_a_claim_and_changes_no_state(backlog: Backlog) -> None:
    backlog.create([FeatureSpec("Schema", acceptance=("test -f db.sql",))], source="test")
    backlog.claim(1, by="run-1")
    context = ToolContext(backlog, source="agent:run-1", feature_id=1, attempt_id=42)

    reply = ok(context, "claim_passing", {"note": "wrote db.sql and checked it"})

    assert backlog.feature(1).state == ItemState.IN_PROGRESS
    [claim] = backlog.open_claims(1)
    assert (claim["source"], claim["attempt_id"], claim["note"]) == (
        "agent:run-1",
        42,
        "wrote db.sql and checked it",
    )
    assert reply["claim_id"] == claim["id"]
    assert reply["state"] == "in_progress"
    assert "does not mark it passed" in reply["message"]
    assert "running its acceptance commands (test -f db.sql)" in reply["message"]
    # a person's client names the feature; no context feature needed
    other = ToolContext(backlog, source="mcp:123")
    ok(other, "claim_passing", {"id": 1})
    assert [c["source"] for c in backlog.open_claims(1)] == ["agent:run-1", "mcp:123"]
    assert error(other, "claim_passing", {}) == (
        "claim_passing: missing argument 'id': which feature?"
    )


def test_request_human_input_moves_a_feature_in_progress_to_needs_input(
    backlog: Backlog,
) -> None:
    backlog.create(
        [FeatureSpec("OAuth", acceptance=("true",)), FeatureSpec("Later", acceptance=("true",))],
        source="test",
    )
    backlog.claim(1, by="run-1")
    context = ToolContext(backlog, source="agent:run-1", feature_id=1)

    reply = ok(context, "request_human_input", {"question": "Which OAuth provider?"})

    stored = backlog.feature(1)
    assert (stored.state, stored.input_request) == (ItemState.NEEDS_INPUT, "Which OAuth provider?")
    assert reply["state"] == "needs_input"
    assert "nightcrew backlog answer 1" in reply["message"]
    # a feature nobody works on cannot ask
    text = error(context, "request_human_input", {"id": 2, "question": "?"})
    assert text == (
        "request_human_input: feature #2 is pending: only a feature in progress can ask for input"
    )
    assert backlog.feature(2).state == ItemState.PENDING


def test_skip_and_set_dependencies_change_what_is_ready(context: ToolContext) -> None:
    ok(context, "create_features", {"features": [feature("A"), feature("B"), feature("C")]})
    reply = ok(context, "set_dependencies", {"id": 3, "depends_on": [1, 2]})
    assert reply["depends_on"] == [1, 2]
    assert reply["message"] == "#3 now depends on #1, #2"

    skipped = ok(context, "skip_feature", {"id": 1, "reason": "out of scope"})
    assert skipped["state"] == "skipped"
    assert ok(context, "skip_feature", {"id": 1, "reason": "again"})["message"] == (
        "#1 was already skipped"
    )
    shown = ok(context, "get_feature", {"id": 3})
    assert shown["state"] == "blocked"
    assert shown["blocked_by"] == [1]
    assert shown["dependencies"] == [
        {"id": 1, "name": "A", "state": "skipped"},
        {"id": 2, "name": "B", "state": "pending"},
    ]
    assert ok(context, "get_feature", {"id": 2})["needed_by"] == [3]

    stats = ok(context, "get_stats")
    assert (stats["passed"], stats["total"]) == (0, 3)
    assert stats["states"] == {"skipped": 1, "pending": 1, "blocked": 1}
    assert [f["id"] for f in stats["ready_next"]] == [2]
    assert stats["message"] == "0 of 3 features passed; 1 ready to build"

    ok(context, "set_dependencies", {"id": 3, "depends_on": []})
    assert context.backlog.feature(3).depends_on == ()


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        ("get_feature", {"id": 99}, "get_feature: no feature #99 in the backlog"),
        (
            "set_dependencies",
            {"id": 1, "depends_on": [2]},
            "set_dependencies: that would make a dependency cycle: #1 → #2 → #1",
        ),
        (
            "set_dependencies",
            {"id": 1, "depends_on": [1]},
            "set_dependencies: feature #1 cannot depend on itself",
        ),
        ("set_dependencies", {"id": 1, "depends_on": [7]}, "no feature #7 in the backlog"),
        ("get_feature", {"id": "2"}, "get_feature: 'id' must be an integer, not a string"),
        ("get_feature", {"id": True}, "get_feature: 'id' must be an integer, not a boolean"),
        ("get_feature", {}, "get_feature: missing argument 'id'"),
        (
            "get_feature",
            {"id": 1, "verbose": True},
            "get_feature: unknown argument 'verbose' (this tool takes: id)",
        ),
        ("get_ready_features", {"limit": 0}, "get_ready_features: 'limit' must be at least 1"),
        ("get_ready_features", {"limit": 51}, "get_ready_features: 'limit' must be at most 50"),
        ("create_features", {"features": []}, "'features' must have at least 1 item"),
        (
            "create_features",
            {"features": [{"name": "X", "steps": "click it"}]},
            "create_features: 'features[0].steps' must be a list of strings, not a string",
        ),
        (
            "create_features",
            {"features": [{"name": "X", "dependencies": [1]}]},
            "'features[0]' has an unknown field 'dependencies'",
        ),
        ("create_features", {"features": [{"acceptance": ["true"]}]}, "is missing 'name'"),
        ("skip_feature", {"id": 2, "reason": " "}, "skip_feature: give a reason for skipping"),
        ("skip_feature", {"id": 2, "reason": "done"}, "feature #2 has passed: nothing to skip"),
        ("request_human_input", {"id": 1, "question": " "}, "say what you need from a person"),
        ("drop_table", {}, "unknown tool 'drop_table'"),
    ],
)
def test_bad_calls_are_one_line_tool_errors(
    context: ToolContext, name: str, args: dict[str, Any], expected: str
) -> None:
    ok(
        context,
        "create_features",
        {"features": [feature("A"), feature("B", depends_on_indices=[0])]},
    )
    context.backlog.claim(1, by="run-1")
    context.backlog.release(1, ItemState.PASSED, by="run-1", reason="test")
    context.backlog.claim(2, by="run-1")
    context.backlog.release(2, ItemState.PASSED, by="run-1", reason="test")
    before = [(f.id, f.state, f.depends_on, f.version) for f in context.backlog.features()]

    assert expected in error(context, name, args)

    after = [(f.id, f.state, f.depends_on, f.version) for f in context.backlog.features()]
    assert after == before  # a refused call changes nothing


def test_a_failure_inside_a_tool_is_an_error_reply_not_a_crash(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "nightcrew.db")
    context = ToolContext(Backlog(store), source="mcp:1")
    store.close()  # every query now fails

    text = error(context, "get_stats", {})

    assert text.startswith("get_stats: internal error: ProgrammingError:")


def test_every_tool_has_a_strict_schema_and_a_description() -> None:
    assert len(set(TOOL_NAMES)) == len(TOOLS) == 10
    for tool in TOOLS:
        schema = tool.input_schema
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert set(schema["required"]) <= set(schema["properties"]), tool.name
        assert len(tool.description) > 40, tool.name


def test_bound_tools_answer_like_call_tool(context: ToolContext) -> None:
    tools = {t.name: t for t in bind(context)}
    assert tuple(tools) == TOOL_NAMES
    assert tools["get_stats"].read_only and not tools["create_features"].read_only

    async def create() -> ToolReply:
        return await tools["create_features"].call({"features": [feature("A")]})

    reply = asyncio.run(create())
    assert isinstance(reply, ToolReply) and not reply.is_error
    assert context.backlog.feature(1).name == "A"

    [only] = bind(context, ["claim_passing"])
    assert only.name == "claim_passing"
    with pytest.raises(ValueError, match="no backlog tool 'nope'"):
        bind(context, ["nope"])


def test_feature_id_is_taken_for_id_by_every_tool_that_takes_an_id(
    context: ToolContext,
) -> None:
    ok(context, "create_features", {"features": [feature("A"), feature("B"), feature("C")]})
    taking_id = sorted(t.name for t in TOOLS if "id" in t.input_schema["properties"])
    assert taking_id == [
        "claim_passing",
        "get_feature",
        "request_human_input",
        "set_dependencies",
        "skip_feature",
    ]

    assert ok(context, "get_feature", {"feature_id": 2}) == ok(context, "get_feature", {"id": 2})
    assert error(context, "get_feature", {"feature_id": 99}) == (
        "get_feature: no feature #99 in the backlog"
    )
    assert ok(context, "set_dependencies", {"feature_id": 3, "depends_on": [1]})["id"] == 3
    assert ok(context, "skip_feature", {"feature_id": 2, "reason": "later"})["state"] == "skipped"
    assert ok(context, "claim_passing", {"feature_id": 1})["id"] == 1
    context.backlog.claim(1, by="run-1")
    asked = ok(context, "request_human_input", {"feature_id": 1, "question": "Which DB?"})
    assert asked["state"] == "needs_input"
    # the same feature twice is fine; two different ones is a mistake to name
    assert ok(context, "get_feature", {"id": 3, "feature_id": 3})["id"] == 3
    assert error(context, "get_feature", {"id": 3, "feature_id": 2}) == (
        "get_feature: 'feature_id' and 'id' name different features; give only 'id'"
    )
    # a tool that takes no id still names what it does take
    assert error(context, "get_stats", {"feature_id": 1}) == (
        "get_stats: unknown argument 'feature_id' (this tool takes: nothing)"
    )
