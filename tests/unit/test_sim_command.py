"""``nightcrew sim``'s scenario loading (a bad file names file:line) and the sim's ids."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from nightcrew.cli.sim import EXAMPLE, load_scenario_file
from nightcrew.core.errors import BadInput
from nightcrew.sim import Scenario, SimServer
from nightcrew.sim.json_where import line_of

BAD_USAGE = """{
  "scripts": [
    {"name": "a", "turns": [{"text": "fine"}]},
    {"name": "b",
     "turns": [
       {"text": "x"},
       {"text": "y",
        "usage": {"output_tokens": 3,
                  "input_tokens": -1}}
     ]}
  ]
}
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BAD_USAGE, ":9: scripts[1].turns[1].usage.input_tokens: must be >= 0, got -1"),
        ('{\n  "scripts": [\n    {"turns": []}\n  ]\n}\n', ":3: scripts[0]: missing 'name'"),
        ('{\n  "scripts": [,]\n}\n', ":2: not valid JSON: Expecting value (column 15)"),
        ("[1, 2]\n", ":1: scenario: expected an object, got list"),
        ('{\n\n  "colour": 1}\n', ":3: scenario: unknown key(s) colour"),
        (
            '{"scripts": [\n {"name": "a",\n  "turns": [{"txt": 1}]}]}',
            ":3: scripts[0].turns[0]: unknown",
        ),
    ],
)
def test_a_bad_scenario_is_one_line_naming_file_and_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "scenario.json"
    path.write_text(text)
    with pytest.raises(BadInput) as caught:
        load_scenario_file(path)
    assert caught.value.message.startswith(f"{path}{message}")
    assert "\n" not in caught.value.message


def test_the_command_says_it_in_one_line_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "scenario.json"
    path.write_text(BAD_USAGE)
    result = subprocess.run(
        [sys.executable, "-m", "nightcrew", "sim", "--scenario", str(path)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"nightcrew: {path}:9: scripts[1].turns[1].usage.input_tokens: must be >= 0, got -1\n"
    )


def test_a_port_in_use_is_one_line_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "nightcrew", "sim", "--port", str(port)],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(f"nightcrew: --port {port}: cannot listen on 127.0.0.1: ")
    assert result.stderr.count("\n") == 1


def test_a_missing_scenario_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"nope\.json: no such scenario file$"):
        load_scenario_file(tmp_path / "nope.json")


def test_line_of_finds_the_deepest_part_of_a_path_that_exists() -> None:
    text = '{"a": [\n  {"b": 1},\n  {"c":\n     {"d": 2}}\n]}'
    assert line_of(text, "a[1].c.d") == 4
    assert line_of(text, "a[1].c.missing") == 4  # c's value starts on line 4
    assert line_of(text, "a[1]") == 3
    assert line_of(text, "a[7]") == 1
    assert line_of(text, "scenario") == 1


def test_the_shipped_example_scenario_loads() -> None:
    scenario = load_scenario_file(EXAMPLE)
    tools = [b.name for t in scenario.scripts[0].turns for b in t.blocks if hasattr(b, "input")]
    assert tools[:2] == ["Read", "Write"]  # Claude Code only Writes over a file it has Read
    assert json.loads(EXAMPLE.read_text())["scripts"][0]["name"] == "example-batch"


def test_two_servers_never_hand_out_the_same_ids() -> None:
    """Transcripts of several sim runs must not share (message id, request id): the
    import would count their responses as copies of one another."""
    seen: list[set[str]] = []
    for _ in range(2):
        server = SimServer(Scenario.from_dict({}))
        ids = {server._next_id(kind) for kind in ("msg_sim", "req_sim", "toolu_sim")}
        assert len(ids) == 3
        seen.append(ids)
    assert not seen[0] & seen[1]
