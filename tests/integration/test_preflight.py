"""Before the first attempt: the user's own work is never taken, lost or paid
for twice (a dirty tree, a secret that is not ignored, an unfinished run, a
killed agent's temp files, and the dry run that checks all of it)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from nightcrew.sim import SimServer
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
    two_costly_batches,
    wait_for,
    work_turns,
)

pytestmark = pytest.mark.cli


def runs(root: Path) -> list[tuple[str, str]]:
    path = root / ".nightcrew" / "nightcrew.db"
    if not path.exists():
        return []
    with sqlite3.connect(path) as conn:
        return [(r[0], r[1]) for r in conn.execute("SELECT id, state FROM runs ORDER BY rowid")]


def one_batch(sim_env: SimStarter, title: str = "Subtraction") -> tuple[SimServer, dict[str, str]]:
    server, sim = sim_env(
        {
            "scripts": [
                script(
                    "b1",
                    ["Batch 1 of"],
                    work_turns(add_function("sub", "a - b", "calc.sub(5, 3) == 2")),
                )
            ]
        }
    )
    return server, nightcrew_env(sim)


def test_dirty_tree_is_refused_before_any_agent(tmp_path: Path, sim_env: SimStarter) -> None:
    root = make_project(tmp_path / "proj", plan_text(["Subtraction"]))
    (root / "calc.py").write_text((root / "calc.py").read_text() + "# my work in progress\n")
    (root / "NOTES.md").write_text("mine\n")
    server, env = one_batch(sim_env)

    result = run_nightcrew(root, env, "run", "PLAN.md", "--model", MODEL)

    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nightcrew: ")
    assert "calc.py (modified)" in lines[0] and "NOTES.md (untracked)" in lines[0]
    assert "--allow-dirty" in lines[0]
    assert server.requests == []
    assert runs(root) == []
    assert git(root, "log", "--format=%s").splitlines() == ["initial"]
    assert "# my work in progress" in (root / "calc.py").read_text()


def test_allow_dirty_commits_only_what_the_attempt_changed(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", plan_text(["Subtraction"]))
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "# trying something\n")
    git(root, "add", "pyproject.toml")  # staged work in progress stays staged
    (root / "scratch.txt").write_text("mine\n")
    _, env = one_batch(sim_env)

    result = run_nightcrew(root, env, "run", "PLAN.md", "--model", MODEL, "--allow-dirty")

    assert result.returncode == 0, result.stdout + result.stderr
    assert git(root, "log", "--format=%s").splitlines() == ["Batch 1: Subtraction", "initial"]
    committed = git(root, "show", "--name-only", "--format=", "HEAD").split()
    assert committed == ["calc.py", "tests/test_calc.py"]
    assert git(root, "status", "--porcelain").splitlines() == [
        "M  pyproject.toml",
        "?? scratch.txt",
    ]
    assert "Left alone, uncommitted as before the run: pyproject.toml, scratch.txt" in (
        result.stdout
    )


def test_untracked_secret_is_refused_before_spending(tmp_path: Path, sim_env: SimStarter) -> None:
    root = make_project(tmp_path / "proj", plan_text(["Subtraction"]))
    (root / ".env").write_text("API_TOKEN=abc\n")
    server, env = one_batch(sim_env)

    result = run_nightcrew(root, env, "run", "PLAN.md", "--model", MODEL, "--allow-dirty")

    assert result.returncode == 2, result.stdout + result.stderr
    line = result.stderr.strip()
    assert line.startswith("nightcrew: ") and "\n" not in line
    assert ".env (looks like a secrets file)" in line and ".gitignore" in line
    assert server.requests == []
    assert runs(root) == []


def test_unfinished_run_is_refused_and_new_abandons_it(tmp_path: Path, sim_env: SimStarter) -> None:
    root = make_project(tmp_path / "proj", plan_text(["One", "Two"]))
    _, sim = sim_env(two_costly_batches())
    env = nightcrew_env(sim)
    stopped = run_nightcrew(
        root, env, "run", "PLAN.md", "--model", MODEL, "--max-budget-usd", "0.9"
    )
    assert stopped.returncode == 3, stopped.stdout + stopped.stderr
    git(root, "checkout", "--", ".")  # the person throws the half-done batch 2 away
    git(root, "clean", "-fdq", "-e", ".nightcrew")
    ((first_id, _),) = runs(root)

    again = run_nightcrew(root, env, "run", "PLAN.md", "--model", MODEL)

    assert again.returncode == 2, again.stdout + again.stderr
    assert again.stderr.strip() == (
        f"nightcrew: run {first_id} of PLAN.md is unfinished (batch 2 of 2; it stopped at a"
        " budget): continue with --resume, or start over with --new"
    )
    assert runs(root) == [(first_id, "budget_exceeded")]

    fresh = run_nightcrew(root, env, "run", "PLAN.md", "--model", MODEL, "--new")

    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    (old, old_state), (_, new_state) = runs(root)
    assert (old, old_state, new_state) == (first_id, "abandoned", "succeeded")
    resumed = run_nightcrew(root, env, "run", "PLAN.md", "--model", MODEL, "--resume")
    assert resumed.returncode == 0  # the new run succeeded: nothing to resume
    assert "nothing to resume" in resumed.stdout + resumed.stderr


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


def test_dry_run_shows_what_would_run_and_starts_nothing(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", plan_text(["One", "Two"]))
    server, env = one_batch(sim_env)

    result = run_nightcrew(
        root, env, "run", "PLAN.md", "--dry-run", "--show-prompt", "--max-budget-usd", "2"
    )

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "batch 1/2 'One'" in out and "batch 2/2 'Two'" in out
    assert "gate clean:" in out
    assert "Batch 1 of 2" in out and "Batch 2 of 2" in out  # the prompts themselves
    assert "this run: $2" in out
    assert "ready: 2 batch(es) would run" in out
    assert server.requests == []
    assert runs(root) == []

    (root / "NOTES.md").write_text("mine\n")
    refused = run_nightcrew(root, env, "run", "PLAN.md", "--dry-run")
    assert refused.returncode == 2
    assert refused.stderr.startswith("nightcrew: the working tree has uncommitted changes:")
    assert "NOTES.md (untracked)" in refused.stderr


def test_dry_run_shows_each_batch_as_the_run_would_treat_it(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    plan = (
        "# Plan\n\n## Batch 1: Notes\n\n### Task 1: write notes\n\n"
        "## Batch 2: CRITICAL Migrate\n\nno-change-ok\n\n### Task 1: migrate\n\n"
        "## Batch 3:\n"
    )
    root = make_project(tmp_path / "proj", plan)
    git(root, "rm", "-rq", "tests", "pyproject.toml")  # no tests: the work must change a file
    git(root, "commit", "-qm", "no tests")
    server, env = one_batch(sim_env)

    result = run_nightcrew(root, env, "run", "PLAN.md", "--dry-run")

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    one, two = out.split("batch 1/3 'Notes'")[1].split("batch 2/3")
    assert "gate changes: the attempt must change a file (not counting PLAN.md)" in one
    assert "(critical: a failure stops the run)" in two.splitlines()[0]
    assert "gate changes" not in two  # no-change-ok
    assert "batch 3/3 (no title): empty, skipped without an agent" in out
    assert "PLAN.md:13: warning: batch 3 is empty" in out
    assert "`None`" not in out
    assert "ready: 2 batch(es) would run" in out
    assert server.requests == []


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


def test_the_abandoned_patch_holds_the_attempts_work_not_the_users_files(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", plan_text(["Broken"]))
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "# trying something\n")
    (root / "scratch.txt").write_text("mine\n")
    broken = add_function("sub", "a + b", "calc.sub(5, 3) == 2")
    _, sim = sim_env({"scripts": [script("b1", ["Batch 1 of 1"], work_turns(broken))]})
    env = nightcrew_env(sim)

    result = run_nightcrew(
        root,
        env,
        "run",
        "PLAN.md",
        "--model",
        MODEL,
        "--allow-dirty",
        "--max-retries",
        "0",
        "--on-failure",
        "skip",
    )

    assert result.returncode == 0, result.stdout + result.stderr  # skipped by policy
    patch = next((root / ".nightcrew" / "runs").glob("*/batch-1/abandoned.patch")).read_text()
    assert "+def sub(a, b):" in patch
    assert "pyproject.toml" not in patch and "scratch.txt" not in patch
    # the user's files are as they were; the attempt's work is gone from the tree
    assert pyproject.read_text().endswith("# trying something\n")
    assert (root / "scratch.txt").read_text() == "mine\n"
    assert "def sub" not in (root / "calc.py").read_text()
