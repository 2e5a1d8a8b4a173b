"""Before the first attempt, through ``nightcrew run`` in-process on the fake
backend (tests/unit/run_cli.py): the user's own work is never taken, lost or
paid for twice (a dirty tree, a secret that is not ignored, an unfinished run,
the abandoned patch, and the dry run that checks all of it).

Moved from tests/integration/test_preflight.py: the refusals happen before any
agent starts and the rest is the loop's git handling, so the Claude Code CLI
added only its start-up. What needs a real agent process (a killed agent's
unfinished writes) stays there."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from nightcrew.testing import Script, usage
from tests.integration.support import (
    MODEL,
    add_function,
    git,
    make_project,
    plan_text,
)
from tests.unit.run_cli import Agent, Cli, MakeCli, Turns

pytestmark = pytest.mark.cli


def runs(root: Path) -> list[tuple[str, str]]:
    path = root / ".nightcrew" / "nightcrew.db"
    if not path.exists():
        return []
    with sqlite3.connect(path) as conn:
        return [(r[0], r[1]) for r in conn.execute("SELECT id, state FROM runs ORDER BY rowid")]


SUB = Turns("b1", ["Batch 1 of"], add_function("sub", "a - b", "calc.sub(5, 3) == 2"))


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> MakeCli:
    def make(root: Path, *turns: Turns) -> Cli:
        return Cli(root, Agent(*turns), monkeypatch, capsys)

    return make


def test_dirty_tree_is_refused_before_any_agent(tmp_path: Path, cli: MakeCli) -> None:
    root = make_project(tmp_path / "proj", plan_text(["Subtraction"]))
    (root / "calc.py").write_text((root / "calc.py").read_text() + "# my work in progress\n")
    (root / "NOTES.md").write_text("mine\n")
    run = cli(root, SUB)

    result = run("run", "PLAN.md", "--model", MODEL)

    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nightcrew: ")
    assert "calc.py (modified)" in lines[0] and "NOTES.md (untracked)" in lines[0]
    assert "--allow-dirty" in lines[0]
    assert run.agent.backend.requests == []
    assert runs(root) == []
    assert git(root, "log", "--format=%s").splitlines() == ["initial"]
    assert "# my work in progress" in (root / "calc.py").read_text()


def test_allow_dirty_commits_only_what_the_attempt_changed(tmp_path: Path, cli: MakeCli) -> None:
    root = make_project(tmp_path / "proj", plan_text(["Subtraction"]))
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "# trying something\n")
    git(root, "add", "pyproject.toml")  # staged work in progress stays staged
    (root / "scratch.txt").write_text("mine\n")
    run = cli(root, SUB)

    result = run("run", "PLAN.md", "--model", MODEL, "--allow-dirty")

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


def test_untracked_secret_is_refused_before_spending(tmp_path: Path, cli: MakeCli) -> None:
    root = make_project(tmp_path / "proj", plan_text(["Subtraction"]))
    (root / ".env").write_text("API_TOKEN=abc\n")
    run = cli(root, SUB)

    result = run("run", "PLAN.md", "--model", MODEL, "--allow-dirty")

    assert result.returncode == 2, result.stdout + result.stderr
    line = result.stderr.strip()
    assert line.startswith("nightcrew: ") and "\n" not in line
    assert ".env (looks like a secrets file)" in line and ".gitignore" in line
    assert run.agent.backend.requests == []
    assert runs(root) == []


def costly(n: int, name: str, value: str) -> Turns:
    """Batch ``n`` of 2 adds a function; its two responses cost about $0.31 each."""
    spent = tuple(usage(MODEL, f"b{n}-{i}", input=100_000, output=500) for i in (1, 2))
    return Turns(
        f"b{n}",
        [f"Batch {n} of 2"],
        add_function(name, value, f"calc.{name}(0, 0) == {value}"),
        Script(events=spent),
    )


def test_unfinished_run_is_refused_and_new_abandons_it(tmp_path: Path, cli: MakeCli) -> None:
    root = make_project(tmp_path / "proj", plan_text(["One", "Two"]))
    run = cli(root, costly(1, "one", "1"), costly(2, "two", "2"))
    stopped = run("run", "PLAN.md", "--model", MODEL, "--max-budget-usd", "0.9")
    assert stopped.returncode == 3, stopped.stdout + stopped.stderr
    git(root, "checkout", "--", ".")  # the person throws the half-done batch 2 away
    git(root, "clean", "-fdq", "-e", ".nightcrew")
    ((first_id, _),) = runs(root)

    again = run("run", "PLAN.md", "--model", MODEL)

    assert again.returncode == 2, again.stdout + again.stderr
    assert again.stderr.strip() == (
        f"nightcrew: run {first_id} of PLAN.md is unfinished (batch 2 of 2; it stopped at a"
        " budget): continue with --resume, or start over with --new"
    )
    assert runs(root) == [(first_id, "budget_exceeded")]

    fresh = run("run", "PLAN.md", "--model", MODEL, "--new")

    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    (old, old_state), (_, new_state) = runs(root)
    assert (old, old_state, new_state) == (first_id, "abandoned", "succeeded")
    resumed = run("run", "PLAN.md", "--model", MODEL, "--resume")
    assert resumed.returncode == 0  # the new run succeeded: nothing to resume
    assert "nothing to resume" in resumed.stdout + resumed.stderr


def test_dry_run_shows_what_would_run_and_starts_nothing(tmp_path: Path, cli: MakeCli) -> None:
    root = make_project(tmp_path / "proj", plan_text(["One", "Two"]))
    run = cli(root, SUB)

    result = run("run", "PLAN.md", "--dry-run", "--show-prompt", "--max-budget-usd", "2")

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "batch 1/2 'One'" in out and "batch 2/2 'Two'" in out
    assert "gate clean:" in out
    assert "Batch 1 of 2" in out and "Batch 2 of 2" in out  # the prompts themselves
    assert "this run: $2" in out
    assert "ready: 2 batch(es) would run" in out
    assert run.agent.backend.requests == []
    assert runs(root) == []

    (root / "NOTES.md").write_text("mine\n")
    refused = run("run", "PLAN.md", "--dry-run")
    assert refused.returncode == 2
    assert refused.stderr.startswith("nightcrew: the working tree has uncommitted changes:")
    assert "NOTES.md (untracked)" in refused.stderr


def test_dry_run_shows_each_batch_as_the_run_would_treat_it(tmp_path: Path, cli: MakeCli) -> None:
    plan = (
        "# Plan\n\n## Batch 1: Notes\n\n### Task 1: write notes\n\n"
        "## Batch 2: CRITICAL Migrate\n\nno-change-ok\n\n### Task 1: migrate\n\n"
        "## Batch 3:\n"
    )
    root = make_project(tmp_path / "proj", plan)
    git(root, "rm", "-rq", "tests", "pyproject.toml")  # no tests: the work must change a file
    git(root, "commit", "-qm", "no tests")
    run = cli(root, SUB)

    result = run("run", "PLAN.md", "--dry-run")

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
    assert run.agent.backend.requests == []


def test_the_abandoned_patch_holds_the_attempts_work_not_the_users_files(
    tmp_path: Path,
    cli: MakeCli,
) -> None:
    root = make_project(tmp_path / "proj", plan_text(["Broken"]))
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "# trying something\n")
    (root / "scratch.txt").write_text("mine\n")
    broken = add_function("sub", "a + b", "calc.sub(5, 3) == 2")
    run = cli(root, Turns("b1", ["Batch 1 of 1"], broken))

    result = run(
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
