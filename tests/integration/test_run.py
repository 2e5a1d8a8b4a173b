"""``nightcrew run`` end to end: the real Claude Code CLI, nightcrew.sim as the
model, real git, real pytest gates, the real SQLite store."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import SimStarter
from tests.integration.support import (
    BIG_USAGE,
    MODEL,
    USAGE_DONE,
    USAGE_TOOL,
    add_function,
    alive,
    cost_of,
    git,
    hang_command,
    kill_quietly,
    make_project,
    nightcrew_env,
    plan_text,
    run_nightcrew,
    script,
    session_alive,
    start_nightcrew,
    status,
    two_costly_batches,
    wait_for,
    work_turns,
)

pytestmark = pytest.mark.cli


THREE = ["Subtraction", "Multiplication", "Division"]


def three_batch_scenario() -> dict[str, object]:
    return {
        "scripts": [
            script(
                "b1",
                ["Batch 1 of 3"],
                work_turns(add_function("sub", "a - b", "calc.sub(5, 3) == 2")),
            ),
            script(
                "b2",
                ["Batch 2 of 3"],
                work_turns(add_function("mul", "a * b", "calc.mul(3, 4) == 12")),
            ),
            script(
                "b3",
                ["Batch 3 of 3"],
                work_turns(add_function("div", "a / b", "calc.div(8, 2) == 4")),
            ),
        ]
    }


def db(root: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(root / ".nightcrew" / "nightcrew.db")
    conn.row_factory = sqlite3.Row
    return conn


def test_three_batches_pass_with_one_commit_each(tmp_path: Path, sim_env: SimStarter) -> None:
    root = make_project(tmp_path / "proj", plan_text(THREE))
    server, sim = sim_env(three_batch_scenario())
    env = nightcrew_env(sim)

    result = run_nightcrew(root, env, "run", "PLAN.md", "--model", MODEL)

    assert result.returncode == 0, result.stdout + result.stderr
    # The agent works under Claude Code's own system prompt (its tool, coding and
    # safety instructions), as with `claude -p`, not the SDK's minimal one (235 chars).
    assert all(len(r.system_prompt) > 5000 for r in server.requests)
    assert all("software engineering" in r.system_prompt for r in server.requests)
    assert result.stdout.count("nightcrew run summary") == 1  # the summary is shown once
    assert result.stdout.count("every batch passed") == 1
    subjects = git(root, "log", "--format=%s").splitlines()
    assert subjects == [
        "Batch 3: Division",
        "Batch 2: Multiplication",
        "Batch 1: Subtraction",
        "initial",
    ]
    # nightcrew's own files never reach the repository, and nothing is left over
    assert not any(p.startswith(".nightcrew") for p in git(root, "ls-files").split())
    assert git(root, "status", "--porcelain") == ""
    data = status(root, env)
    assert data["run"]["state"] == "succeeded"
    shas = git(root, "log", "--format=%H", "-3").split()[::-1]
    assert [b["commit"] for b in data["batches"]] == shas
    assert all(b["state"] == "passed" and b["attempts"] == 1 for b in data["batches"])
    assert all(b["gate"]["passed"] for b in data["batches"])
    assert [b["gate"]["tests_passed"] for b in data["batches"]] == [2, 3, 4]
    # money: exactly what Claude Code reported for the scripted usage
    per_batch = cost_of(USAGE_TOOL, USAGE_DONE)
    for batch in data["batches"]:
        assert batch["cost_usd"] == pytest.approx(per_batch, abs=1e-6)
    assert data["run"]["cost_usd"] == pytest.approx(3 * per_batch, abs=1e-6)
    assert data["run"]["tokens"] == {
        "input": 3 * 2 * 1200,
        "output": 3 * 340,
        "cache_read": 3 * 2 * 5000,
        "cache_write": 3 * 2 * 1000,
    }
    with db(root) as conn:
        prefixes = {r[0] for r in conn.execute("SELECT prefix_sha256 FROM attempts")}
        sources = {r[0] for r in conn.execute("SELECT cost_source FROM attempts")}
        sessions = [r[0] for r in conn.execute("SELECT session_id FROM attempts")]
    # each attempt's prompt-cache hit ratio: cache read / (input + cache read + cache write)
    for batch in data["batches"]:
        (attempt,) = batch["attempt_usage"]
        assert attempt["cache_hit_ratio"] == pytest.approx(10_000 / (2_400 + 10_000 + 2_000))
        assert attempt["cost_source"] == "reported" and attempt["model"] == MODEL
    assert len(prefixes) == 1  # the stable prefix is byte-identical across attempts
    assert sources == {"reported"}
    assert len(set(sessions)) == 3 and all(sessions)  # a fresh session per batch
    assert "3 passed" in result.stdout or "passed" in result.stdout


def test_failed_gate_is_retried_with_the_digest(tmp_path: Path, sim_env: SimStarter) -> None:
    root = make_project(tmp_path / "proj", plan_text(["Multiplication"]))
    fix = [
        {"tool": {"name": "Read", "input": {"file_path": "{cwd}/calc.py"}}},
        {
            "tool": {
                "name": "Edit",
                "input": {
                    "file_path": "{cwd}/calc.py",
                    "old_string": "return a + b  # mul",
                    "new_string": "return a * b  # mul",
                },
            }
        },
        {"text": "Fixed."},
    ]
    server, sim = sim_env(
        {
            "scripts": [
                # The retry is recognised by what only the harness's digest can tell it.
                script("fix", ["Batch 1 of 1", "previous attempt failed", "test_mul"], fix),
                script(
                    "first",
                    ["Batch 1 of 1"],
                    work_turns(add_function("mul", "a + b  # mul", "calc.mul(3, 4) == 12")),
                ),
            ]
        }
    )
    env = nightcrew_env(sim)

    result = run_nightcrew(root, env, "run", "PLAN.md", "--model", MODEL)

    assert result.returncode == 0, result.stdout + result.stderr
    assert [r.script for r in server.requests if r.turn_index == 0] == ["first", "fix"]
    data = status(root, env)
    assert data["batches"][0]["attempts"] == 2
    assert data["batches"][0]["state"] == "passed"
    evidence = root / ".nightcrew" / "runs"
    attempt_1 = next(evidence.glob("*/batch-1/attempt-1"))
    attempt_2 = attempt_1.parent / "attempt-2"
    assert "test_mul" in (attempt_2 / "prompt.txt").read_text()
    assert (attempt_1 / "junit.xml").is_file()  # the gate's full evidence is kept
    with db(root) as conn:
        first = conn.execute("SELECT state, digest FROM attempts WHERE number = 1").fetchone()
    assert first["state"] == "failed"
    assert "tests/test_calc.py::test_mul" in first["digest"]
    assert "return a * b" in (root / "calc.py").read_text()


def test_budget_stops_the_run_and_resume_continues(tmp_path: Path, sim_env: SimStarter) -> None:
    root = make_project(tmp_path / "proj", plan_text(["One", "Two"]))
    big = BIG_USAGE
    _, sim = sim_env(two_costly_batches())
    env = nightcrew_env(sim)
    per_batch = cost_of(big, big)  # ≈ $0.615

    result = run_nightcrew(root, env, "run", "PLAN.md", "--model", MODEL, "--max-budget-usd", "0.9")

    assert result.returncode == 3, result.stdout + result.stderr
    assert "budget exceeded" in result.stdout + result.stderr
    data = status(root, env)
    assert data["run"]["state"] == "budget_exceeded"
    assert data["batches"][0]["state"] == "passed"
    assert data["batches"][1]["state"] == "pending"
    # the attempt was cut off: the run spent more than batch 1 but not a whole batch 2
    assert per_batch < data["run"]["cost_usd"] < 2 * per_batch
    with db(root) as conn:
        states = [r[0] for r in conn.execute("SELECT state FROM attempts ORDER BY id")]
    assert states == ["passed", "over_budget"]

    again = run_nightcrew(
        root, env, "run", "PLAN.md", "--resume", "--model", MODEL, "--max-budget-usd", "5"
    )

    assert again.returncode == 0, again.stdout + again.stderr
    data = status(root, env)
    assert data["run"]["state"] == "succeeded"
    assert data["batches"][0]["attempts"] == 1  # batch 1 was not redone
    assert data["batches"][1]["attempts"] == 2
    assert git(root, "log", "--format=%s").splitlines()[:2] == ["Batch 2: Two", "Batch 1: One"]


def test_hung_agent_is_killed_at_the_timeout(tmp_path: Path, sim_env: SimStarter) -> None:
    # The attempt timeout is a wall clock, so on a loaded machine it may fire
    # before the agent reaches its hanging command. Either way the test checks
    # what matters: the attempt is timed out and nothing of the agent's session
    # (the hanging command included, if it started) survives.
    root = make_project(tmp_path / "proj", plan_text(["Hang"]))
    pidfile = tmp_path / "tool.pid"
    _, sim = sim_env(
        {
            "scripts": [
                script("hang", ["Batch 1 of 1"], work_turns(hang_command(pidfile))),
            ]
        }
    )
    env = nightcrew_env(sim)

    result = run_nightcrew(
        root,
        env,
        "run",
        "PLAN.md",
        "--model",
        MODEL,
        "--attempt-timeout",
        "4",
        "--max-retries",
        "0",
    )

    assert result.returncode == 1, result.stdout + result.stderr
    with db(root) as conn:
        row = conn.execute("SELECT state, exit_reason, agent_pid FROM attempts").fetchone()
    assert row["state"] == "timed_out"
    assert "4 s" in row["exit_reason"]
    assert row["agent_pid"] is not None
    assert not alive(row["agent_pid"])
    assert session_alive(row["agent_pid"]) == []
    if pidfile.exists():  # the agent reached its hanging command: it was killed too
        assert not alive(int(pidfile.read_text()))


def test_orchestrator_killed_mid_batch_shows_crashed_and_resumes_without_orphans(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    """One SIGKILLed orchestrator, three things a person sees afterwards: status
    says the run crashed (its pid is gone); the resume reaps the agent it left
    running; and the resume removes the half-written temp files of that agent's
    tree (what an Edit cut short by the kill leaves) before batch 2 runs again."""
    root = make_project(tmp_path / "proj", plan_text(["One", "Two"]))
    pidfile, marker = tmp_path / "tool.pid", tmp_path / "hung-once"
    two = hang_command(pidfile, marker) + "\n" + add_function("two", "2", "calc.two(0, 0) == 2")
    _, sim = sim_env(
        {
            "scripts": [
                script(
                    "b1",
                    ["Batch 1 of 2"],
                    work_turns(add_function("one", "1", "calc.one(0, 0) == 1")),
                ),
                script("b2", ["Batch 2 of 2"], work_turns(two)),
            ]
        }
    )
    env = nightcrew_env(sim)
    first = start_nightcrew(root, env, "run", "PLAN.md", "--model", MODEL)
    try:
        wait_for(pidfile.exists, what="batch 2's agent to start its hanging command")
        assert status(root, env)["run"]["state"] == "running"
        first.kill()  # SIGKILL: no chance to clean up; the store still says running
        first.communicate()
    finally:
        kill_quietly(first.pid)
    tool_pid = int(pidfile.read_text())
    assert alive(tool_pid)  # the agent outlived its orchestrator

    data = status(root, env)
    text = run_nightcrew(root, env, "status")

    assert data["run"]["state"] == "crashed"
    assert data["run"]["state_note"] == f"pid {first.pid} is gone"
    assert f"crashed (pid {first.pid} is gone)" in text.stdout

    with db(root) as conn:
        (agent_pid,) = conn.execute(
            "SELECT a.agent_pid FROM attempts a JOIN work_items i ON i.id = a.item_id"
            " WHERE i.number = 2"
        ).fetchone()
    assert agent_pid and alive(agent_pid)
    # What an Edit cut short by the kill leaves: <file>.tmp.<writer pid>.<hex>, written by
    # the CLI itself (the stored pid) or by a process of its tree.
    own = f"calc.py.tmp.{agent_pid}.1a2b3c4d5e6f"
    child = f"tests/test_calc.py.tmp.{tool_pid}.0f0f0f0f0f0f"
    for rel in (own, child):
        (root / rel).write_text("half written\n")

    result = run_nightcrew(root, env, "run", "PLAN.md", "--resume", "--model", MODEL)

    assert result.returncode == 0, result.stdout + result.stderr
    assert not alive(tool_pid)  # reaped on resume
    assert f"removed the crashed agent's unfinished write(s): {own}, {child}" in result.stdout
    assert not (root / own).exists() and not (root / child).exists()
    data = status(root, env)
    assert [b["state"] for b in data["batches"]] == ["passed", "passed"]
    assert data["batches"][0]["attempts"] == 1  # batch 1 was not redone
    with db(root) as conn:
        states = [
            r[0]
            for r in conn.execute(
                "SELECT a.state FROM attempts a JOIN work_items i ON i.id = a.item_id"
                " WHERE i.number = 2 ORDER BY a.number"
            )
        ]
    assert states == ["crashed", "passed"]
    assert git(root, "log", "--format=%s").splitlines() == [
        "Batch 2: Two",
        "Batch 1: One",
        "initial",
    ]
    assert git(root, "status", "--porcelain") == ""


def test_second_run_is_refused_and_ctrl_c_stops_the_first(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", plan_text(["Hang"]))
    pidfile = tmp_path / "tool.pid"
    _, sim = sim_env(
        {
            "scripts": [
                script("hang", ["Batch 1 of 1"], work_turns(hang_command(pidfile))),
            ]
        }
    )
    env = nightcrew_env(sim)
    first = start_nightcrew(root, env, "run", "PLAN.md", "--model", MODEL)
    try:
        wait_for(pidfile.exists, what="the first run's agent to start")

        second = run_nightcrew(root, env, "run", "PLAN.md", "--model", MODEL)

        assert second.returncode == 4
        assert f"pid {first.pid}" in second.stderr
        first.send_signal(signal.SIGINT)  # what Ctrl-C sends
        _, err = first.communicate(timeout=60)
        assert first.returncode == 130, err
    finally:
        kill_quietly(first.pid)
    tool_pid = int(pidfile.read_text())
    wait_for(lambda: not alive(tool_pid), timeout=10, what="the agent's tool to be stopped")
    data = status(root, env)
    assert data["run"]["state"] == "interrupted"
    assert data["batches"][0]["state"] == "pending"
    with db(root) as conn:
        assert [r[0] for r in conn.execute("SELECT state FROM attempts")] == ["cancelled"]


def test_hangup_stops_the_agent_and_saves_the_run(tmp_path: Path, sim_env: SimStarter) -> None:
    root = make_project(tmp_path / "proj", plan_text(["Hang"]))
    pidfile = tmp_path / "tool.pid"
    _, sim = sim_env(
        {
            "scripts": [
                script("hang", ["Batch 1 of 1"], work_turns(hang_command(pidfile))),
            ]
        }
    )
    env = nightcrew_env(sim)
    first = start_nightcrew(root, env, "run", "PLAN.md", "--model", MODEL)
    try:
        wait_for(pidfile.exists, what="the agent to start its hanging command")
        first.send_signal(signal.SIGHUP)  # what closing the terminal or SSH sends
        _, err = first.communicate(timeout=60)
        assert first.returncode == 129, err
    finally:
        kill_quietly(first.pid)
    with db(root) as conn:
        row = conn.execute("SELECT state, exit_reason, agent_pid FROM attempts").fetchone()
    assert row["state"] == "cancelled"
    assert "SIGHUP" in row["exit_reason"]
    wait_for(lambda: session_alive(row["agent_pid"]) == [], what="the agent's session to be killed")
    assert not alive(int(pidfile.read_text()))
    data = status(root, env)
    assert data["run"]["state"] == "interrupted"
    assert data["batches"][0]["state"] == "pending"


def test_item_budget_warns_at_80_percent_then_stops_naming_itself(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", plan_text(["Big"]))
    big = {
        "input_tokens": 100_000,
        "output_tokens": 500,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
    }
    step = {"text": "Looking.", "tool": {"name": "Bash", "input": {"command": "true"}}}
    turns = [{**step, "usage": big}, {**step, "usage": big}, {"text": "Done.", "usage": big}]
    _, sim = sim_env({"scripts": [script("b1", ["Batch 1 of 1"], turns)]})
    env = nightcrew_env(sim)
    per_response = cost_of(big)  # $0.3075 each: 41 %, 82 %, then 123 % of $0.75

    result = run_nightcrew(root, env, "run", "PLAN.md", "--model", MODEL, "--max-item-usd", "0.75")

    output = result.stdout + result.stderr
    assert result.returncode == 3, output
    # 81 %: the second response's input is counted as soon as it streams
    assert re.search(r"budget warning: 8\d% of batch 1's budget \(--max-item-usd \$0.75\)", output)
    assert "budget exceeded: batch 1's budget (--max-item-usd $0.75) is spent" in output
    data = status(root, env)
    assert data["run"]["state"] == "budget_exceeded"
    assert 2 * per_response < data["run"]["cost_usd"] < 3 * per_response + 0.01
    with db(root) as conn:
        warnings = conn.execute("SELECT payload_json FROM events WHERE kind = 'budget_warning'")
        assert [json.loads(r[0])["budget"] for r in warnings] == ["item:1"]


def test_resume_judges_against_the_baseline_before_the_stopped_attempt(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    """A stopped attempt that broke a test leaves the tree broken; the resumed
    run must still count that test as passing before the batch, not re-take
    the baseline from the broken tree and commit the breakage."""
    root = make_project(tmp_path / "proj", plan_text(["Refactor"]))
    pidfile, marker = tmp_path / "tool.pid", tmp_path / "hung-once"
    breaks = "sed -i 's/a + b/a - b/' calc.py\n" + hang_command(pidfile, marker)
    _, sim = sim_env({"scripts": [script("b1", ["Batch 1 of 1"], work_turns(breaks))]})
    env = nightcrew_env(sim)
    first = start_nightcrew(root, env, "run", "PLAN.md", "--model", MODEL)
    try:
        wait_for(
            lambda: pidfile.exists() or first.poll() is not None,
            timeout=180,
            what="the agent to break calc.py and hang",
        )
        first.kill()  # SIGKILL: the broken tree stays as the attempt left it
        out, err = first.communicate()
        assert pidfile.exists(), out + err
    finally:
        kill_quietly(first.pid)

    result = run_nightcrew(
        root, env, "run", "PLAN.md", "--resume", "--model", MODEL, "--max-retries", "0"
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "keeping this run's baseline" in result.stdout + result.stderr
    assert "test_add" in result.stdout + result.stderr  # named as the regression
    assert git(root, "log", "--format=%s").splitlines() == ["initial"]  # nothing broken committed
