"""Each lane of a parallel build gets its own number and ports, and a fresh
worktree is made runnable by the config's setup commands, run for real in a
temp dir: in order, each with its log, stopping at the first failure with one
line a person can act on."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from nightcrew.config import Settings, load_settings
from nightcrew.core.errors import LocatedError
from nightcrew.core.events import event_from_json
from nightcrew.engine.lane_env import (
    lane_env,
    lane_ports,
    run_setup,
    setup_event,
    shown_command,
    worktree_env,
)
from nightcrew.engine.setup_check import first_word, setup_problems, setup_warnings

# ---- lanes ------------------------------------------------------------------------


def test_lanes_one_to_four_have_distinct_numbers_and_port_blocks() -> None:
    settings = Settings(parallel=2)  # two lanes per agent
    envs = [lane_env(k, settings) for k in range(1, 5)]
    assert [e["NIGHTCREW_LANE"] for e in envs] == ["1", "2", "3", "4"]
    assert [e["NIGHTCREW_PORT_BASE"] for e in envs] == ["3100", "3110", "3120", "3130"]
    assert all(e["PORT"] == e["NIGHTCREW_PORT_BASE"] for e in envs)


@pytest.mark.parametrize(
    ("parallel", "port_base", "ports_per_lane"),
    [(4, 3100, 10), (16, 1024, 1), (16, 33535, 1000), (3, 65000, 89)],
)
def test_no_two_lanes_share_a_port_and_every_port_is_valid(
    parallel: int, port_base: int, ports_per_lane: int
) -> None:
    settings = Settings(parallel=parallel, port_base=port_base, ports_per_lane=ports_per_lane)
    lanes = 2 * parallel  # two per agent
    blocks = [set(lane_ports(k, settings)) for k in range(1, lanes + 1)]
    every = set().union(*blocks)
    assert len(every) == lanes * ports_per_lane  # disjoint
    assert min(every) == port_base
    assert max(every) <= 65535
    for k, block in enumerate(blocks, start=1):
        assert int(lane_env(k, settings)["PORT"]) == min(block)


def test_a_lane_outside_the_configured_count_is_refused() -> None:
    settings = Settings(parallel=2)  # four lanes: two per agent
    lane_env(4, settings)
    with pytest.raises(ValueError, match="lane 5 is not one of the 4 lane"):
        lane_env(5, settings)
    with pytest.raises(ValueError, match="lane 0"):
        lane_env(0, settings)


def test_ports_that_would_pass_65535_are_refused_naming_the_keys(tmp_path: Path) -> None:
    config = tmp_path / "nightcrew.toml"
    config.write_text("parallel = 8\nport_base = 60000\nports_per_lane = 1000\n")
    with pytest.raises(LocatedError) as raised:
        load_settings(tmp_path)
    message = str(raised.value)
    assert message.startswith(f"{config}:2: ")
    for key in ("port_base", "parallel", "ports_per_lane"):
        assert key in message
    assert "65535" in message
    # exactly at the limit is fine
    config.write_text("parallel = 8\nport_base = 49535\nports_per_lane = 1000\n")
    assert max(lane_ports(16, load_settings(tmp_path))) < 65535


def test_the_worktree_env_says_where_the_checkout_and_the_worktree_are(tmp_path: Path) -> None:
    env = worktree_env(2, Settings(parallel=2), project_root=tmp_path, worktree=tmp_path / "wt")
    assert env["NIGHTCREW_PROJECT_ROOT"] == str(tmp_path)
    assert env["NIGHTCREW_WORKTREE"] == str(tmp_path / "wt")
    assert env["NIGHTCREW_LANE"] == "2"


# ---- setup ------------------------------------------------------------------------


def project_and_worktree(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "project"
    worktree = root / ".nightcrew" / "worktrees" / "feature-7"
    worktree.mkdir(parents=True)
    (root / ".env").write_text("SECRET=1\n")
    return root, worktree


def test_setup_runs_in_order_in_the_worktree_with_the_lane_env_and_keeps_logs(
    tmp_path: Path,
) -> None:
    root, worktree = project_and_worktree(tmp_path)
    evidence = tmp_path / "evidence"
    env = worktree_env(2, Settings(parallel=2), project_root=root, worktree=worktree)
    result = run_setup(
        [
            'cp "$NIGHTCREW_PROJECT_ROOT/.env" .env',
            "echo first >> order.txt; echo lane $NIGHTCREW_LANE port $PORT",
            "echo second >> order.txt; echo to stderr >&2",
        ],
        cwd=worktree,
        env=env,
        evidence_dir=evidence,
        timeout_s=30,
    )
    assert result.passed
    assert result.reason is None
    assert (worktree / ".env").read_text() == "SECRET=1\n"
    assert (worktree / "order.txt").read_text() == "first\nsecond\n"
    assert [s.exit_code for s in result.steps] == [0, 0, 0]
    assert [s.log.name for s in result.steps] == ["setup-1.log", "setup-2.log", "setup-3.log"]
    assert (evidence / "setup-2.log").read_text() == "lane 2 port 3110\n"
    assert (evidence / "setup-3.log").read_text() == "to stderr\n"
    assert result.seconds >= sum(s.seconds for s in result.steps)


def test_the_relative_path_to_the_checkout_is_three_levels_up(tmp_path: Path) -> None:
    # what the README says about `cp ../../../.env .env`
    _, worktree = project_and_worktree(tmp_path)
    result = run_setup(["cp ../../../.env .env"], worktree, {}, tmp_path / "e", 30)
    assert result.passed, result.reason
    assert (worktree / ".env").is_file()


def test_setup_stops_at_the_first_failure_with_a_one_line_reason(tmp_path: Path) -> None:
    _, worktree = project_and_worktree(tmp_path)
    evidence = tmp_path / "evidence"
    result = run_setup(
        ["touch one", "echo npm broke; exit 3", "touch three"],
        cwd=worktree,
        env={},
        evidence_dir=evidence,
        timeout_s=30,
    )
    assert not result.passed
    assert len(result.steps) == 2
    assert not (worktree / "three").exists()
    assert not (evidence / "setup-3.log").exists()
    log = evidence / "setup-2.log"
    assert log.read_text() == "npm broke\n"
    assert result.reason == (
        f"worktree setup failed: `echo npm broke; exit 3` exited 3 (see {log})"
    )
    assert "\n" not in (result.reason or "")


def test_a_command_not_found_fails_the_setup(tmp_path: Path) -> None:
    _, worktree = project_and_worktree(tmp_path)
    result = run_setup(["no-such-program-here"], worktree, {}, tmp_path / "e", 30)
    assert result.failed is not None
    assert result.failed.exit_code == 127
    assert "not found" in result.failed.log.read_text()


def test_a_command_that_hangs_is_killed_at_the_timeout(tmp_path: Path) -> None:
    _, worktree = project_and_worktree(tmp_path)
    evidence = tmp_path / "evidence"
    marker = worktree / "child.pid"
    result = run_setup(
        [f"echo started; {sys.executable} -c 'import time; time.sleep(60)' & echo $! > {marker};"
         " wait", "touch never"],
        cwd=worktree,
        env={},
        evidence_dir=evidence,
        timeout_s=0.5,
    )  # fmt: skip
    assert not result.passed
    step = result.failed
    assert step is not None and step.timed_out and step.exit_code is None
    assert result.reason == (
        f"worktree setup failed: `{shown_command(step.command)}` timed out after 0.5s"
        f" (see {evidence / 'setup-1.log'})"
    )
    assert not (worktree / "never").exists()
    assert (evidence / "setup-1.log").read_text() == "started\n"
    # the command's own child went with it
    child = int(marker.read_text())
    assert not Path(f"/proc/{child}").exists() or "Z" in _state(child)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
    except OSError:
        return "Z"


def test_a_missing_worktree_is_a_reason_not_a_traceback(tmp_path: Path) -> None:
    result = run_setup(["true"], tmp_path / "gone", {}, tmp_path / "e", 30)
    assert result.failed is not None and result.failed.exit_code is None
    assert result.reason == (
        "worktree setup failed: `true` could not start: No such file or directory:"
        f" {tmp_path / 'gone'} (see {tmp_path / 'e' / 'setup-1.log'})"
    )
    assert (tmp_path / "e" / "setup-1.log").is_file()


def test_no_commands_is_a_passed_setup(tmp_path: Path) -> None:
    result = run_setup([], tmp_path, {}, tmp_path / "e", 30)
    assert result.passed and result.steps == ()
    event = setup_event(result, item="feature #7", run_id="r1")
    assert (event.commands, event.log, event.failed_command) == ((), None, None)


def test_a_long_or_multiline_command_is_quoted_short() -> None:
    assert shown_command("npm ci") == "npm ci"
    assert shown_command("set -e\nnpm ci\n") == "set -e…"
    long = "x" * 200
    assert len(shown_command(long)) == 60 and shown_command(long).endswith("…")


def test_the_setup_event_round_trips_and_names_the_failed_command(tmp_path: Path) -> None:
    result = run_setup(["true", "false", "true"], tmp_path, {}, tmp_path / "e", 30)
    event = setup_event(result, item="feature #7", run_id="r1", item_id=3, lane=2)
    assert event.commands == ("true", "false")
    assert (event.passed, event.failed_command) == (False, "false")
    assert event.log == str(tmp_path / "e" / "setup-2.log")
    assert event.reason == result.reason
    assert event.seconds == result.seconds
    assert event_from_json(json.loads(json.dumps(event.to_json()))) == event


# ---- before any agent runs ----------------------------------------------------------


def test_setup_problems_find_what_the_shell_cannot_read(tmp_path: Path) -> None:
    settings = Settings(worktree_setup=("npm ci", 'echo "unclosed', "if true; then echo x"))
    problems = setup_problems(settings, tmp_path)
    assert [p.split(":")[0] for p in problems] == ["worktree_setup item 2", "worktree_setup item 3"]
    assert all("the shell cannot read it: " in p and "/bin/sh" not in p for p in problems)
    assert setup_problems(Settings(worktree_setup=("npm ci && npm run build",))) == []


def test_an_empty_command_is_a_problem_even_when_the_settings_were_built_in_code() -> None:
    settings = Settings.model_construct(worktree_setup=("true", "  "))
    assert setup_problems(settings) == ["worktree_setup item 2: the command is empty"]


def test_a_first_word_not_on_path_is_a_warning(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "mytool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "setup.sh").write_text("")
    settings = Settings(
        worktree_setup=(
            "mytool install",
            "CI=1 nosuchtool --flag",
            "./scripts/setup.sh",
            "./scripts/missing.sh",
            'cp "$NIGHTCREW_PROJECT_ROOT/.env" .env',
            "cd sub && nosuchtool",
            "$TOOL run",
        )
    )
    warnings = setup_warnings(settings, tmp_path, path=f"{bin_dir}:/bin:/usr/bin")
    assert warnings == [
        "worktree_setup item 2: `nosuchtool` is not on PATH; the command may fail in the worktree",
        "worktree_setup item 4: `./scripts/missing.sh` does not exist;"
        " the command may fail in the worktree",
    ]


@pytest.mark.parametrize(
    ("command", "word"),
    [
        ("npm ci", "npm"),
        ("FOO=1 BAR=x make setup", "make"),
        ("uv sync # deps", "uv"),
        ("cd web && npm ci", None),
        ("$PYTHON -m venv .venv", None),
        ("(cd web; npm ci)", None),
        ("echo 'unclosed", None),
        ("# only a comment", None),
    ],
)
def test_the_first_word_is_the_program_when_it_can_be_known(command: str, word: str | None) -> None:
    assert first_word(command) == word
