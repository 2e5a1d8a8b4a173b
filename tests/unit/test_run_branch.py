"""Where ``run --branch NAME [--worktree]`` works, against real git
repositories: which branches it refuses, what it checks out or adds, and when
a run's worktree goes away."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nightcrew import proc
from nightcrew.core.errors import BadInput
from nightcrew.engine.run_branch import RunBranch


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def git(root: Path, *args: str) -> str:
    done = proc.run(["git", "-C", str(root), *args], cwd=root, timeout_s=60)
    assert done.exit_code == 0, done.output
    return done.output.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Alice")
    git(root, "config", "user.email", "alice@example.com")
    (root / "a.txt").write_text("a\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def test_options_are_checked_before_any_git() -> None:
    assert RunBranch.of(None, False) is None
    assert RunBranch.of("feat/x", True) == RunBranch("feat/x", True)
    with pytest.raises(BadInput, match=r"^--worktree needs --branch NAME$"):
        RunBranch.of(None, True)
    with pytest.raises(BadInput, match="not a valid branch name"):
        RunBranch.of("a..b", False)


def test_the_placement_survives_in_the_run_config() -> None:
    placed = RunBranch("feat", True)
    assert RunBranch.stored({"model": "x", **placed.snapshot()}) == placed
    assert RunBranch.stored({"model": "x"}) is None
    assert placed.flags() == "--branch feat --worktree"


def test_a_branch_without_head_needs_resume(repo: Path) -> None:
    git(repo, "branch", "ahead")
    git(repo, "checkout", "-q", "-b", "side")
    git(repo, "commit", "-q", "--allow-empty", "-m", "side")
    git(repo, "checkout", "-q", "main")
    git(repo, "commit", "-q", "--allow-empty", "-m", "main moved on")

    assert RunBranch("new").problems(repo, resume=False) == []
    (problem,) = RunBranch("side").problems(repo, resume=False)
    assert problem.startswith("branch side exists and does not contain HEAD")
    assert RunBranch("side").problems(repo, resume=True) == []
    git(repo, "branch", "-f", "ahead", "HEAD")  # contains HEAD: simply continued
    assert RunBranch("ahead", True).problems(repo, resume=False) == []


def test_a_worktree_run_needs_a_branch_nobody_has_out(repo: Path) -> None:
    (problem,) = RunBranch("main", True).problems(repo, resume=False)
    assert problem.startswith("branch main is checked out in your checkout")
    assert RunBranch("main").problems(repo, resume=False) == []  # in place: already there


def test_in_place_checks_the_branch_out_keeping_uncommitted_files(repo: Path) -> None:
    (repo / "a.txt").write_text("mine\n")

    where = RunBranch("feat").enter(repo)

    assert where == repo
    assert git(repo, "branch", "--show-current") == "feat"
    assert (repo / "a.txt").read_text() == "mine\n"


def test_worktree_is_reused_kept_while_unfinished_and_removed_when_done(repo: Path) -> None:
    placed = RunBranch("feat/x", True)
    (repo / "a.txt").write_text("mine\n")

    where = placed.enter(repo)

    assert where == repo / ".nightcrew" / "worktrees" / "run-feat-x"
    assert git(where, "branch", "--show-current") == "feat/x"
    assert git(repo, "branch", "--show-current") == "main"
    (where / "b.txt").write_text("b\n")
    git(where, "add", "b.txt")
    git(where, "commit", "-q", "-m", "batch 1")
    (where / "c.txt").write_text("half done\n")
    said = placed.leave(repo, finished=False)
    assert said == f"work is on branch feat/x; uncommitted work is kept in {where}"
    assert placed.enter(repo) == where and (where / "c.txt").exists()  # resumed: same files
    (where / "c.txt").unlink()
    assert placed.leave(repo, finished=False).endswith(f"its worktree {where} is kept for --resume")

    assert placed.leave(repo, finished=True) == "work is on branch feat/x"

    assert not where.exists()
    assert git(repo, "worktree", "list").count("\n") == 0
    assert git(repo, "log", "--format=%s", "feat/x").splitlines() == ["batch 1", "initial"]
    assert (repo / "a.txt").read_text() == "mine\n"
