"""``nightcrew run PLAN --branch NAME [--worktree]`` end to end: the real Claude
Code CLI against nightcrew.sim, real git, real pytest gates. The batches'
commits go on NAME; with --worktree the person's checkout is never touched."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import SimStarter
from tests.integration.support import (
    MODEL,
    add_function,
    git,
    hang_command,
    kill_quietly,
    make_project,
    nightcrew_env,
    plan_text,
    run_nightcrew,
    script,
    start_nightcrew,
    status,
    wait_for,
    work_turns,
)

pytestmark = pytest.mark.cli

TWO = ["Subtraction", "Multiplication"]


def two_batches(second: str | None = None) -> dict[str, object]:
    """Batch 1 adds ``sub``, batch 2 runs ``second`` (if given) then adds ``mul``."""
    mul = add_function("mul", "a * b", "calc.mul(3, 4) == 12")
    return {
        "scripts": [
            script(
                "b1",
                ["Batch 1 of 2"],
                work_turns(add_function("sub", "a - b", "calc.sub(5, 3) == 2")),
            ),
            script("b2", ["Batch 2 of 2"], work_turns(f"{second}\n{mul}" if second else mul)),
        ]
    }


def subjects(root: Path, ref: str) -> list[str]:
    return git(root, "log", "--format=%s", ref).splitlines()


def last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


def test_worktree_run_commits_on_the_branch_and_leaves_the_checkout_alone(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", plan_text(TWO))
    server, sim = sim_env(two_batches())
    env = nightcrew_env(sim)
    # The person keeps working in their checkout: an uncommitted edit.
    (root / "calc.py").write_text((root / "calc.py").read_text() + "# my own edit\n")
    before = (root / "calc.py").read_text()

    result = run_nightcrew(
        root, env, "run", "PLAN.md", "--branch", "feat", "--worktree", "--model", MODEL
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "every batch passed; work is on branch feat" in last_line(result.stdout)
    # The person's checkout: same branch, same commits, their edit as it was.
    assert git(root, "branch", "--show-current").strip() == "main"
    assert subjects(root, "main") == ["initial"]
    assert (root / "calc.py").read_text() == before
    assert git(root, "status", "--porcelain").splitlines() == [" M calc.py"]
    # The work is on feat, one commit per batch, made from where main was.
    assert subjects(root, "feat") == ["Batch 2: Multiplication", "Batch 1: Subtraction", "initial"]
    assert "def mul" in git(root, "show", "feat:calc.py")
    assert "my own edit" not in git(root, "show", "feat:calc.py")
    # The agents worked in the run's worktree, which is gone now; the branch stays.
    worktree = root / ".nightcrew" / "worktrees" / "run-feat"
    assert {r.cwd for r in server.requests if r.script} == {str(worktree)}
    assert len(git(root, "worktree", "list").splitlines()) == 1
    assert not worktree.exists()
    data = status(root, env)
    assert [b["state"] for b in data["batches"]] == ["passed", "passed"]
    assert [b["commit"] for b in data["batches"]] == git(
        root, "log", "--format=%H", "-2", "feat"
    ).split()[::-1]


def test_in_place_branch_run_checks_the_branch_out_and_commits_there(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", plan_text(TWO))
    server, sim = sim_env(two_batches())
    env = nightcrew_env(sim)
    (root / "calc.py").write_text((root / "calc.py").read_text() + "# my own edit\n")

    refused = run_nightcrew(root, env, "run", "PLAN.md", "--branch", "feat", "--model", MODEL)

    # In place, a dirty tree is refused as always, before anything moves.
    assert refused.returncode == 2
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "uncommitted changes: calc.py (modified)" in refused.stderr
    assert git(root, "branch", "--show-current").strip() == "main"
    assert "feat" not in git(root, "branch", "--list")
    git(root, "checkout", "--", "calc.py")

    result = run_nightcrew(root, env, "run", "PLAN.md", "--branch", "feat", "--model", MODEL)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "every batch passed; work is on branch feat" in last_line(result.stdout)
    assert git(root, "branch", "--show-current").strip() == "feat"
    assert subjects(root, "HEAD") == ["Batch 2: Multiplication", "Batch 1: Subtraction", "initial"]
    assert subjects(root, "main") == ["initial"]
    assert git(root, "status", "--porcelain") == ""
    assert {r.cwd for r in server.requests if r.script} == {str(root)}
    assert len(git(root, "worktree", "list").splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--branch", "bad..name"], "--branch bad..name: not a valid branch name"),
        (["--branch", "-x", "--worktree"], "--branch -x: not a valid branch name"),
        (["--worktree"], "--worktree needs --branch NAME"),
        (["--branch", "side"], "branch side exists and does not contain HEAD"),
        (["--branch", "main", "--worktree"], "branch main is checked out in your checkout"),
    ],
)
def test_bad_branch_options_are_refused_in_one_line(
    tmp_path: Path, args: list[str], said: str
) -> None:
    root = make_project(tmp_path / "proj", plan_text(TWO))
    git(root, "checkout", "-q", "-b", "side")
    (root / "side.txt").write_text("elsewhere\n")
    git(root, "add", "side.txt")
    git(root, "commit", "-q", "-m", "side work")
    git(root, "checkout", "-q", "main")
    git(root, "commit", "-q", "--allow-empty", "-m", "main moved on")  # side lacks HEAD now
    env = nightcrew_env({})

    result = run_nightcrew(root, env, "run", "PLAN.md", *args)

    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("nightcrew: ") and said in line
    assert git(root, "branch", "--show-current").strip() == "main"
    assert git(root, "branch", "--list", "--format=%(refname:short)").split() == ["main", "side"]
    assert len(git(root, "worktree", "list").splitlines()) == 1
    store = root / ".nightcrew" / "nightcrew.db"
    if store.exists():  # refused before a run was made
        with contextlib.closing(sqlite3.connect(store)) as conn:
            assert conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)


def test_dry_run_names_the_branch_and_the_worktree(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", plan_text(TWO))
    (root / "calc.py").write_text("# a dirty tree does not stop a worktree run\n")
    env = nightcrew_env({})

    result = run_nightcrew(
        root, env, "run", "PLAN.md", "--branch", "feat", "--worktree", "--dry-run"
    )

    assert result.returncode == 0, result.stdout + result.stderr
    worktree = root / ".nightcrew" / "worktrees" / "run-feat"
    assert "works on branch feat (made from HEAD " in result.stdout
    assert f"in the worktree {worktree}; your checkout is not touched" in result.stdout
    assert "feat" not in git(root, "branch", "--list")  # a dry run makes nothing
    assert not worktree.exists()


def test_interrupted_worktree_run_resumes_in_the_same_worktree(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = make_project(tmp_path / "proj", plan_text(TWO))
    pidfile, marker = tmp_path / "tool.pid", tmp_path / "hung-once"
    server, sim = sim_env(two_batches(second=hang_command(pidfile, marker)))
    env = nightcrew_env(sim)
    worktree = root / ".nightcrew" / "worktrees" / "run-feat"
    first = start_nightcrew(
        root, env, "run", "PLAN.md", "--branch", "feat", "--worktree", "--model", MODEL
    )
    try:
        wait_for(pidfile.exists, what="batch 2's agent to start its hanging command")
        first.send_signal(signal.SIGINT)  # what Ctrl-C sends
        out, err = first.communicate(timeout=60)
        assert first.returncode == 130, out + err
    finally:
        kill_quietly(first.pid)
    assert f"its worktree {worktree} is kept for --resume" in last_line(out)
    assert worktree.is_dir()
    assert subjects(root, "feat") == ["Batch 1: Subtraction", "initial"]
    assert git(root, "branch", "--show-current").strip() == "main"
    (root / "notes.txt").write_text("the person's own file, meanwhile\n")

    other = run_nightcrew(root, env, "run", "PLAN.md", "--resume", "--branch", "other")
    assert other.returncode == 2
    (line,) = other.stderr.strip().splitlines()
    assert "works with --branch feat --worktree: resume it with those options" in line

    # --resume alone: the run remembers its branch and its worktree.
    result = run_nightcrew(root, env, "run", "PLAN.md", "--resume", "--model", MODEL)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "work is on branch feat" in last_line(result.stdout)
    assert {r.cwd for r in server.requests if r.script} == {str(worktree)}
    assert subjects(root, "feat") == ["Batch 2: Multiplication", "Batch 1: Subtraction", "initial"]
    assert subjects(root, "main") == ["initial"]
    assert git(root, "status", "--porcelain").splitlines() == ["?? notes.txt"]
    assert len(git(root, "worktree", "list").splitlines()) == 1
    assert not worktree.exists()
    data = status(root, env)
    assert data["run"]["state"] == "succeeded"
    assert [b["attempts"] for b in data["batches"]] == [1, 2]
