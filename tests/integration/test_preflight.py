"""Before an attempt: a killed agent's unfinished writes (its temp files) are
removed and never committed, on the real CLI and nightcrew.sim, whose real
agent process tree writes and is killed. The preflight refusals, the dry run
and the abandoned patch are tested in tests/unit/test_run_preflight.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conftest import SimStarter
from tests.integration.support import (
    MODEL,
    add_function,
    alive,
    git,
    hang_command,
    kill_quietly,
    make_project,
    nightcrew_env,
    plan_text,
    run_nightcrew,
    script,
    start_nightcrew,
    wait_for,
    work_turns,
)

pytestmark = pytest.mark.cli


def test_killed_agents_temp_file_is_removed_and_never_committed(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", plan_text(["Hang"]))
    temp = "calc.py.tmp.4242.1a2b3c"
    marker, pidfile = tmp_path / "hung-once", tmp_path / "tool.pid"
    # The first attempt starts a write and hangs until it is killed; the second just ends.
    once = f"if [ ! -e {marker} ]; then touch {marker}; printf x > {temp};"
    once += f" echo $$ > {pidfile}; exec sleep 300; fi"
    _, sim = sim_env({"scripts": [script("hang", ["Batch 1 of 1"], work_turns(once))]})
    env = nightcrew_env(sim)
    (root / "old.txt.tmp.7.ff").write_text("the user's own, from before\n")
    git(root, "add", "old.txt.tmp.7.ff")
    git(root, "commit", "-qm", "an old temp file")

    result = run_nightcrew(root, env, "run", "PLAN.md", "--model", MODEL, "--attempt-timeout", "20")

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"removed the stopped agent's unfinished write(s): {temp}" in result.stdout
    assert not (root / temp).exists()
    assert (root / "old.txt.tmp.7.ff").exists()
    assert temp not in git(root, "log", "--all", "--name-only", "--format=")


def test_resume_removes_the_unfinished_writes_of_an_agent_whose_orchestrator_was_killed(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", plan_text(["Subtraction"]))
    pidfile, marker = tmp_path / "tool.pid", tmp_path / "hung-once"
    work = (
        hang_command(pidfile, marker) + "\n" + add_function("sub", "a - b", "calc.sub(5, 3) == 2")
    )
    _, sim = sim_env({"scripts": [script("b1", ["Batch 1 of 1"], work_turns(work))]})
    env = nightcrew_env(sim)
    first = start_nightcrew(root, env, "run", "PLAN.md", "--model", MODEL)
    try:
        wait_for(pidfile.exists, what="the agent to start its hanging command")
        first.kill()  # SIGKILL: the orchestrator cannot clean up
        first.communicate()
    finally:
        kill_quietly(first.pid)
    tool_pid = int(pidfile.read_text())
    db = root / ".nightcrew" / "nightcrew.db"
    with sqlite3.connect(db) as conn:
        (agent_pid,) = conn.execute("SELECT agent_pid FROM attempts").fetchone()
    assert agent_pid and alive(agent_pid)
    # What an Edit cut short by the kill leaves: <file>.tmp.<writer pid>.<hex>, written by
    # the CLI itself (the stored pid) or by a process of its tree.
    own = f"calc.py.tmp.{agent_pid}.1a2b3c4d5e6f"
    child = f"tests/test_calc.py.tmp.{tool_pid}.0f0f0f0f0f0f"
    for rel in (own, child):
        (root / rel).write_text("half written\n")

    result = run_nightcrew(root, env, "run", "PLAN.md", "--resume", "--model", MODEL)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"removed the crashed agent's unfinished write(s): {own}, {child}" in result.stdout
    assert not (root / own).exists() and not (root / child).exists()
    assert git(root, "log", "--format=%s").splitlines() == ["Batch 1: Subtraction", "initial"]
    assert git(root, "status", "--porcelain") == ""
