"""Unit tests for nightcrew.sim: scenario parsing, matching and the HTTP wire format."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nightcrew.sim import Scenario, SimServer, agent_env, load_scenario
from nightcrew.sim.scenario import TextBlock, ToolUseBlock, Usage

EXAMPLE: dict[str, Any] = {
    "default_model": None,
    "scripts": [
        {
            "name": "batch2-broken",
            "match": {"all": ["Batch 2"], "none": ["previous attempt failed"], "model": None},
            "turns": [
                {
                    "blocks": [
                        {"type": "text", "text": "Writing the module."},
                        {
                            "type": "tool_use",
                            "name": "Bash",
                            "input": {"command": "printf 'x' > a.txt"},
                        },
                    ],
                    "usage": {
                        "input_tokens": 1000,
                        "output_tokens": 200,
                        "cache_read_input_tokens": 300,
                        "cache_creation_input_tokens": 50,
                        "cache_creation": {
                            "ephemeral_5m_input_tokens": 40,
                            "ephemeral_1h_input_tokens": 10,
                        },
                    },
                    "model": None,
                    "delay_s": 0,
                },
                {"blocks": [{"type": "text", "text": "Done."}]},
            ],
        }
    ],
    "fallback": {"blocks": [{"type": "text", "text": "OK."}]},
}


# --- helpers ---------------------------------------------------------------------------------


def env_reminder(cwd: str) -> str:
    """The environment reminder Claude Code 2.1.329 puts first in the first user message."""
    return (
        "<system-reminder>\n# Environment\nYou have been invoked in the following environment: \n"
        f" - Primary working directory: {cwd}\n - Is a git repository: false\n"
        " - Platform: linux\n</system-reminder>"
    )


def body(
    prompt: str,
    *,
    assistant_turns: int = 0,
    stream: bool = True,
    model: str = "claude-sonnet-4-5",
    cwd: str | None = None,
) -> dict[str, Any]:
    """A request shaped like the CLI's: reminders, the prompt, then tool round trips."""
    first: list[dict[str, Any]] = []
    if cwd is not None:
        first.append({"type": "text", "text": env_reminder(cwd)})
    first.append({"type": "text", "text": prompt})
    messages: list[dict[str, Any]] = [{"role": "user", "content": first}]
    for i in range(assistant_turns):
        tool_id = f"toolu_{i}"
        messages.append(
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": tool_id, "name": "Bash", "input": {}}],
            }
        )
        result = {"type": "tool_result", "tool_use_id": tool_id, "content": f"result {i}"}
        messages.append({"role": "user", "content": [result]})
    return {"model": model, "max_tokens": 100, "stream": stream, "messages": messages}


def request(
    url: str, path: str, data: Any = None, method: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    payload = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(url + path, data=payload, method=method)
    req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        headers = {k.lower(): v for k, v in err.headers.items()}
        with err:
            return err.code, headers, err.read()


def post(
    url: str, data: Any, path: str = "/v1/messages?beta=true"
) -> tuple[int, dict[str, str], bytes]:
    return request(url, path, data)


def parse_sse(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """Split an SSE body into (event name, data) pairs, checking every event is well formed."""
    events = []
    text = raw.decode()
    assert text.endswith("\n\n")
    for chunk in text.split("\n\n")[:-1]:
        lines = chunk.split("\n")
        assert len(lines) == 2, chunk
        assert lines[0].startswith("event: ") and lines[1].startswith("data: "), chunk
        name, data = lines[0][len("event: ") :], json.loads(lines[1][len("data: ") :])
        assert data["type"] == name
        events.append((name, data))
    return events


def sse_content(events: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Rebuild the content blocks the way a client does, from start + deltas."""
    blocks: dict[int, dict[str, Any]] = {}
    partial: dict[int, str] = {}
    for name, data in events:
        if name == "content_block_start":
            blocks[data["index"]] = dict(data["content_block"])
        elif name == "content_block_delta":
            delta = data["delta"]
            if delta["type"] == "text_delta":
                blocks[data["index"]]["text"] += delta["text"]
            else:
                partial[data["index"]] = partial.get(data["index"], "") + delta["partial_json"]
    for index, text in partial.items():
        blocks[index]["input"] = json.loads(text)
    return [blocks[i] for i in sorted(blocks)]


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[SimServer] = []

    def start(data: dict[str, Any]) -> SimServer:
        server = SimServer(Scenario.from_dict(data))
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
        assert server.errors == []


# --- scenario parsing -------------------------------------------------------------------------


def test_parses_the_documented_example() -> None:
    scenario = Scenario.from_dict(EXAMPLE)
    (script,) = scenario.scripts
    assert script.name == "batch2-broken"
    assert script.match.all_of == ("Batch 2",) and script.match.none_of == (
        "previous attempt failed",
    )
    first, second = script.turns
    assert first.blocks == (
        TextBlock("Writing the module."),
        ToolUseBlock("Bash", {"command": "printf 'x' > a.txt"}),
    )
    assert first.stop_reason == "tool_use" and second.stop_reason == "end_turn"
    assert first.usage == Usage(1000, 200, 300, 50, 40, 10)
    assert second.usage == Usage(input_tokens=100, output_tokens=20)
    assert scenario.fallback.blocks == (TextBlock("OK."),)


def test_shorthand_turns_and_defaults() -> None:
    scenario = Scenario.from_dict(
        {
            "scripts": [
                {
                    "name": "s",
                    "turns": [
                        {"text": "hi", "tool": {"name": "Read", "input": {"file_path": "x"}}},
                        {"tools": [{"name": "A"}, {"name": "B", "input": {"k": 1}}]},
                        {"text": "bye", "usage": {"cache_creation_input_tokens": 70}},
                    ],
                }
            ]
        }
    )
    one, two, three = scenario.scripts[0].turns
    assert one.blocks == (TextBlock("hi"), ToolUseBlock("Read", {"file_path": "x"}))
    assert two.blocks == (ToolUseBlock("A", {}), ToolUseBlock("B", {"k": 1}))
    # A cache write total without a split is all 5-minute writes, as the API reports it.
    assert three.usage == Usage(100, 20, 0, 70, 70, 0)
    assert Scenario.from_dict({}).fallback.blocks == (TextBlock("OK."),)


def turn_scenario(turn: Any) -> dict[str, Any]:
    return {"scripts": [{"name": "s", "turns": [turn]}]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "scenario: expected an object, got list"),
        ({"scripst": []}, "scenario: unknown key(s) scripst"),
        ({"default_model": 5}, "default_model: expected a string, got int"),
        ({"scripts": {}}, "scripts: expected a list, got dict"),
        ({"scripts": [{"turns": [{"text": "x"}]}]}, "scripts[0]: missing 'name'"),
        (
            {"scripts": [{"name": "", "turns": [{"text": "x"}]}]},
            "scripts[0].name: must not be empty",
        ),
        (
            {"scripts": [{"name": "s", "turns": []}]},
            "scripts[0].turns: must contain at least one turn",
        ),
        ({"scripts": [{"name": "s"}]}, "scripts[0].turns: expected a list, got null"),
        (
            {"scripts": [{"name": "s", "turns": [{"text": "a"}]}] * 2},
            "scripts[1].name: duplicate script name 's'",
        ),
        (
            {"scripts": [{"name": "s", "match": {"all": "Batch"}, "turns": [{"text": "x"}]}]},
            "scripts[0].match.all: expected a list, got str",
        ),
        (
            {"scripts": [{"name": "s", "match": {"none": [1]}, "turns": [{"text": "x"}]}]},
            "scripts[0].match.none[0]: expected a string, got int",
        ),
        (turn_scenario({}), "scripts[0].turns[0]: needs at least one block"),
        (turn_scenario("text"), "scripts[0].turns[0]: expected an object, got str"),
        (turn_scenario({"text": "a", "blocks": []}), "use either 'blocks' or text, not both"),
        (turn_scenario({"tool": {"name": "A"}, "tools": []}), "use either 'tool' or 'tools'"),
        (
            turn_scenario({"blocks": [{"type": "image"}]}),
            "blocks[0].type: expected 'text' or 'tool_use'",
        ),
        (
            turn_scenario({"blocks": [{"type": "text"}]}),
            "blocks[0].text: expected a string, got null",
        ),
        (turn_scenario({"tool": {"input": {}}}), "turns[0].tool.name: expected a string, got null"),
        (
            turn_scenario({"tool": {"name": "A", "input": []}}),
            "tool.input: expected an object, got list",
        ),
        (turn_scenario({"tool": {"name": "A", "args": {}}}), "tool: unknown key(s) args"),
        (
            turn_scenario({"text": "a", "usage": {"input_tokens": -1}}),
            "usage.input_tokens: must be >= 0",
        ),
        (
            turn_scenario({"text": "a", "usage": {"output_tokens": True}}),
            "expected an integer, got bool",
        ),
        (turn_scenario({"text": "a", "usage": {"inputs": 1}}), "usage: unknown key(s) inputs"),
        (
            turn_scenario(
                {
                    "text": "a",
                    "usage": {
                        "cache_creation_input_tokens": 10,
                        "cache_creation": {"ephemeral_5m_input_tokens": 4},
                    },
                }
            ),
            "cache_creation_input_tokens (10) must equal ephemeral_5m + ephemeral_1h (4 + 0)",
        ),
        (turn_scenario({"text": "a", "delay_s": "1"}), "delay_s: expected a number, got str"),
        (turn_scenario({"text": "a", "delay_s": 1e6}), "delay_s: must be between 0 and 3600"),
        (turn_scenario({"text": "a", "hold_until": "gate"}), "hold_until: must be an absolute"),
        (turn_scenario({"text": "a", "hold_until": 3}), "hold_until: expected a string, got int"),
        (turn_scenario({"error": {}}), "turns[0].error: missing 'status'"),
        (turn_scenario({"error": {"status": 200}}), "error.status: must be between 400 and 599"),
        (turn_scenario({"error": {"status": 529}, "text": "a"}), "blocks that are never sent"),
        (turn_scenario({"error": {"status": 529, "times": 1}}), "needs blocks to send after it"),
        (turn_scenario({"error": {"status": 529, "times": 0}, "text": "a"}), "times: must be >= 1"),
        ({"fallback": {"text": 3}}, "fallback.text: expected a string, got int"),
    ],
)
def test_invalid_scenarios_name_the_problem(data: Any, message: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        Scenario.from_dict(data)
    assert message in str(excinfo.value)


def test_load_scenario_reports_file_and_position(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(EXAMPLE))
    assert load_scenario(good) == Scenario.from_dict(EXAMPLE)
    broken = tmp_path / "broken.json"
    broken.write_text('{"scripts": [\n  oops]}')
    with pytest.raises(ValueError, match=r"broken\.json: not valid JSON \(line 2, column 3"):
        load_scenario(broken)
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"fallback": {}}')
    with pytest.raises(ValueError, match=r"wrong\.json: fallback: needs at least one block"):
        load_scenario(wrong)
    with pytest.raises(FileNotFoundError):
        load_scenario(tmp_path / "missing.json")


# --- matching ------------------------------------------------------------------------------------


MATCHING: dict[str, Any] = {
    "scripts": [
        {
            "name": "retry",
            "match": {"all": ["batch 2", "previous attempt FAILED"]},
            "turns": [{"text": "r"}],
        },
        {
            "name": "first",
            "match": {"all": ["Batch 2"], "none": ["failed"]},
            "turns": [{"text": "f0"}, {"text": "f1"}],
        },
        {"name": "haiku", "match": {"model": "claude-haiku-4-5"}, "turns": [{"text": "h"}]},
    ],
    "fallback": {"text": "nothing matched"},
}


@pytest.mark.parametrize(
    ("prompt", "model", "turns", "script", "text"),
    [
        ("Do BATCH 2 now", "m", 0, "first", "f0"),
        ("Do batch 2 now", "m", 1, "first", "f1"),
        ("Do batch 2 now", "m", 2, "first", "Done."),
        ("Batch 2: the previous attempt failed", "m", 0, "retry", "r"),
        ("Batch 2 failed twice", "m", 0, None, "nothing matched"),
        ("Batch 3", "claude-haiku-4-5", 0, "haiku", "h"),
        ("Batch 2", "claude-haiku-4-5", 0, "first", "f0"),
        ("Batch 3", "m", 4, None, "nothing matched"),
    ],
)
def test_select_first_match_none_model_and_turn(
    prompt: str, model: str, turns: int, script: str | None, text: str
) -> None:
    selection = Scenario.from_dict(MATCHING).select(prompt, model, turns)
    assert (selection.script, selection.turn_index) == (script, turns)
    assert selection.turn.blocks == (TextBlock(text),)


# --- the server ---------------------------------------------------------------------------------


def sim_id(server: SimServer, kind: str, n: int) -> str:
    """The ``n``-th id of a kind (msg, req, toolu) that ``server`` hands out."""
    return f"{kind}_sim_{server.run_id}_{n}"


def test_streaming_reply_has_the_api_event_shape(serve: Any) -> None:
    server = serve(EXAMPLE)
    status, headers, raw = post(server.url, body("Start Batch 2 please"))
    assert status == 200
    assert headers["content-type"] == "text/event-stream"
    assert headers["request-id"] == sim_id(server, "req", 1)
    events = parse_sse(raw)
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "ping",
        *["content_block_start", "content_block_delta", "content_block_stop"] * 2,
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert start["id"] == sim_id(server, "msg", 1) and start["model"] == "claude-sonnet-4-5"
    assert start["content"] == [] and start["stop_reason"] is None
    assert start["usage"] == {
        "input_tokens": 1000,
        "output_tokens": 1,
        "cache_creation_input_tokens": 50,
        "cache_read_input_tokens": 300,
        "cache_creation": {"ephemeral_5m_input_tokens": 40, "ephemeral_1h_input_tokens": 10},
        "service_tier": "standard",
    }
    assert [data["index"] for name, data in events if name.startswith("content")] == [0] * 3 + [
        1
    ] * 3
    assert events[-2][1]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert events[-2][1]["usage"] == {"output_tokens": 200}
    assert sse_content(events) == [
        {"type": "text", "text": "Writing the module."},
        {
            "type": "tool_use",
            "id": sim_id(server, "toolu", 1),
            "name": "Bash",
            "input": {"command": "printf 'x' > a.txt"},
        },
    ]
    # The next turn ends the conversation; ids keep counting per server.
    _, headers, raw = post(server.url, body("Start Batch 2 please", assistant_turns=1))
    events = parse_sse(raw)
    assert headers["request-id"] == sim_id(server, "req", 2)
    assert events[0][1]["message"]["id"] == sim_id(server, "msg", 2)
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert sse_content(events) == [{"type": "text", "text": "Done."}]


def test_non_streaming_reply_is_one_message(serve: Any) -> None:
    server = serve(EXAMPLE)
    status, headers, raw = post(server.url, body("Batch 2", stream=False))
    assert status == 200 and headers["content-type"] == "application/json"
    message = json.loads(raw)
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["id"] == sim_id(server, "msg", 1) and message["stop_reason"] == "tool_use"
    assert message["content"][1] == {
        "type": "tool_use",
        "id": sim_id(server, "toolu", 1),
        "name": "Bash",
        "input": {"command": "printf 'x' > a.txt"},
    }
    assert message["usage"]["output_tokens"] == 200 and message["usage"]["input_tokens"] == 1000
    assert server.requests[0].stream is False


def test_fallback_and_model_choice(serve: Any) -> None:
    server = serve(
        {
            "default_model": "claude-opus-4-1",
            "scripts": [
                {
                    "name": "s",
                    "match": {"all": ["x"]},
                    "turns": [{"text": "a", "model": "claude-haiku-4-5"}],
                }
            ],
        }
    )
    fallback = json.loads(post(server.url, body("nothing here", stream=False))[2])
    assert fallback["content"] == [{"type": "text", "text": "OK."}]
    assert fallback["stop_reason"] == "end_turn" and fallback["model"] == "claude-opus-4-1"
    scripted = json.loads(post(server.url, body("x", stream=False))[2])
    assert scripted["model"] == "claude-haiku-4-5"
    echo = serve({})
    assert (
        json.loads(post(echo.url, body("hi", stream=False, model="my-model"))[2])["model"]
        == "my-model"
    )


def test_records_each_model_call(serve: Any) -> None:
    server = serve(EXAMPLE)
    post(server.url, body("Batch 2", assistant_turns=1, cwd="/work/x"))
    post(server.url, body("hello", stream=False))
    first, second = server.requests
    assert first.path == "/v1/messages?beta=true" and first.model == "claude-sonnet-4-5"
    assert first.prompt == "Batch 2"  # the CLI's <system-reminder> blocks are not the prompt
    assert first.last_user_text == "result 0"
    assert (first.assistant_turns, first.script, first.turn_index) == (1, "batch2-broken", 1)
    assert (first.message_id, first.request_id, first.status, first.cwd) == (
        sim_id(server, "msg", 1),
        sim_id(server, "req", 1),
        200,
        "/work/x",
    )
    assert (second.script, second.turn_index, second.cwd, second.message_id) == (
        None,
        0,
        None,
        sim_id(server, "msg", 2),
    )
    status, _, raw = request(server.url, "/_sim/requests")
    assert status == 200
    listed = json.loads(raw)
    assert [r["message_id"] for r in listed] == [sim_id(server, "msg", 1), sim_id(server, "msg", 2)]
    assert listed[0]["prompt"] == "Batch 2"


def test_cwd_placeholder_is_expanded_in_tool_input(serve: Any) -> None:
    tool = {
        "name": "Write",
        "input": {"file_path": "{cwd}/a.txt", "content": "{x}", "more": [{"p": "{cwd}"}, 3]},
    }
    server = serve({"scripts": [{"name": "w", "turns": [{"tool": tool}]}]})
    message = json.loads(post(server.url, body("go", stream=False, cwd="/tmp/agent dir"))[2])
    assert message["content"][0]["input"] == {
        "file_path": "/tmp/agent dir/a.txt",
        "content": "{x}",
        "more": [{"p": "/tmp/agent dir"}, 3],
    }
    without = json.loads(post(server.url, body("go", stream=False))[2])
    assert without["content"][0]["input"]["file_path"] == "./a.txt"


def test_cwd_is_also_found_in_an_older_style_system_prompt(serve: Any) -> None:
    server = serve(
        {
            "scripts": [
                {
                    "name": "w",
                    "turns": [{"tool": {"name": "Bash", "input": {"command": "ls {cwd}"}}}],
                }
            ]
        }
    )
    data = body("go", stream=False)
    data["system"] = [
        {"type": "text", "text": "<env>\nWorking directory: /srv/app\nIs a git repo: no\n</env>"}
    ]
    message = json.loads(post(server.url, data)[2])
    assert message["content"][0]["input"] == {"command": "ls /srv/app"}


def test_scripted_error_status_body_and_times(serve: Any) -> None:
    server = serve(
        {
            "scripts": [
                {
                    "name": "busy",
                    "match": {"all": ["busy"]},
                    "turns": [{"error": {"status": 529, "message": "try later"}}],
                },
                {"name": "once", "turns": [{"text": "back", "error": {"status": 429, "times": 1}}]},
            ]
        }
    )
    status, headers, raw = post(server.url, body("busy"))
    assert status == 529 and headers["retry-after"] == "0"
    assert headers["request-id"] == sim_id(server, "req", 1)
    assert json.loads(raw) == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "try later"},
    }
    assert post(server.url, body("busy"))[0] == 529  # no `times`: it never recovers
    status, _, raw = post(server.url, body("other"))
    assert status == 429 and json.loads(raw)["error"]["type"] == "rate_limit_error"
    status, _, raw = post(server.url, body("other"))
    assert status == 200 and sse_content(parse_sse(raw)) == [{"type": "text", "text": "back"}]
    assert [(r.status, r.message_id) for r in server.requests] == [
        (529, None),
        (529, None),
        (429, None),
        (200, sim_id(server, "msg", 1)),
    ]


def test_count_tokens_and_simple_routes(serve: Any) -> None:
    server = serve({})
    data = body("x" * 400)
    status, _, raw = post(server.url, data, "/v1/messages/count_tokens?beta=true")
    expected = len(json.dumps({"system": None, "messages": data["messages"], "tools": None})) // 4
    assert status == 200 and json.loads(raw) == {"input_tokens": expected}
    assert expected > 100
    assert request(server.url, "/", method="HEAD")[0] == 200
    assert request(server.url, "/")[0] == 200
    status, _, raw = request(server.url, "/v2/other")
    assert status == 404 and json.loads(raw)["error"]["type"] == "not_found_error"
    assert post(server.url, {"x": 1}, "/v1/other")[0] == 404
    req = urllib.request.Request(server.url + "/v1/messages", data=b"{not json", method="POST")
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(req, timeout=30)
    with excinfo.value as err:
        assert err.code == 400
    assert server.requests == []  # only model calls are recorded


def test_stop_interrupts_a_delayed_reply() -> None:
    server = SimServer(Scenario.from_dict({"fallback": {"text": "late", "delay_s": 3600}}))
    server.start()
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(post(server.url, body("hi")))
        except (urllib.error.URLError, ConnectionError) as exc:
            outcome.append(exc)

    client = threading.Thread(target=call)
    client.start()
    deadline = time.monotonic() + 30
    while not server.requests and time.monotonic() < deadline:
        threading.Event().wait(0.01)  # waiting for the request to arrive, not for a delay
    assert server.requests, "the delayed request never reached the server"
    began = time.monotonic()
    server.stop()
    client.join(timeout=30)
    assert time.monotonic() - began < 30  # far below the scripted hour
    assert not client.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], Exception)
    assert server.errors == []
    server.stop()  # idempotent


def test_a_held_reply_goes_out_once_its_file_exists(serve: Any, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    server = serve(
        {"scripts": [{"name": "held", "match": {"all": ["wait"]}, "turns": [
            {"text": "released", "hold_until": str(gate)}]}]}
    )  # fmt: skip
    replies: list[tuple[int, dict[str, str], bytes]] = []
    client = threading.Thread(target=lambda: replies.append(post(server.url, body("wait"))))
    client.start()
    assert post(server.url, body("other", stream=False))[0] == 200  # others are not held
    deadline = time.monotonic() + 30
    while len(server.requests) < 2 and time.monotonic() < deadline:
        threading.Event().wait(0.01)  # waiting for the request to arrive, not for a delay
    held = [r for r in server.requests if r.script == "held"]
    assert len(held) == 1 and held[0].model == "claude-sonnet-4-5"  # recorded while held
    assert client.is_alive() and replies == []
    gate.write_text("")
    client.join(timeout=30)
    [(status, _, raw)] = replies
    assert status == 200
    assert sse_content(parse_sse(raw)) == [{"type": "text", "text": "released"}]


def test_stop_lets_go_of_a_held_reply(tmp_path: Path) -> None:
    never = tmp_path / "never"
    server = SimServer(Scenario.from_dict({"fallback": {"text": "x", "hold_until": str(never)}}))
    server.start()
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(post(server.url, body("hi")))
        except (urllib.error.URLError, ConnectionError) as exc:
            outcome.append(exc)

    client = threading.Thread(target=call)
    client.start()
    deadline = time.monotonic() + 30
    while not server.requests and time.monotonic() < deadline:
        threading.Event().wait(0.01)  # waiting for the request to arrive
    server.stop()
    client.join(timeout=30)
    assert not client.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], Exception)
    assert server.errors == []


def test_url_requires_a_started_server() -> None:
    server = SimServer(Scenario())
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url
    with server:
        assert server.url.startswith("http://127.0.0.1:")
        with pytest.raises(RuntimeError, match="already started"):
            server.start()


def test_agent_env(tmp_path: Path) -> None:
    assert agent_env("http://127.0.0.1:1", tmp_path / "cfg") == {
        "HOME": str(tmp_path / "agent-home"),
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:1",
        "ANTHROPIC_API_KEY": "sk-ant-sim-offline",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CONFIG_DIR": str(tmp_path / "cfg"),
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
    }
    assert (tmp_path / "agent-home").is_dir()  # the agent's shell never reads the real ~/.bashrc


def test_sim_env_fixture_gives_a_running_server_and_env(sim_env: Any, tmp_path: Path) -> None:
    server, env = sim_env({"fallback": {"text": "fixture"}})
    assert env["ANTHROPIC_BASE_URL"] == server.url
    assert Path(env["CLAUDE_CONFIG_DIR"]).parent == tmp_path
    raw = post(server.url, body("hi"))[2]
    assert sse_content(parse_sse(raw)) == [{"type": "text", "text": "fixture"}]


# --- python -m nightcrew.sim ----------------------------------------------------------------


def run_main(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nightcrew.sim", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_main_rejects_a_bad_scenario_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"scripts": [{"name": "s", "turns": [{}]}]}')
    for path in (bad, tmp_path / "missing.json"):
        result = run_main("--scenario", str(path))
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr.startswith("nightcrew.sim: error: ")
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "turns[0]: needs at least one block" in run_main("--scenario", str(bad)).stderr


def test_main_serves_until_interrupted(tmp_path: Path) -> None:
    scenario = tmp_path / "s.json"
    scenario.write_text(json.dumps({"fallback": {"text": "from main"}}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "nightcrew.sim", "--scenario", str(scenario), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("nightcrew.sim listening on http://127.0.0.1:")
        url = line.split(" on ", 1)[1].strip()
        raw = post(url, body("hi"))[2]
        assert sse_content(parse_sse(raw)) == [{"type": "text", "text": "from main"}]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert out == "" and err == ""
