"""``build --dry-run``: every check before the first attempt, then what would
be built, without an agent (no model server at all), a run or a commit."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from tests.integration.support import GIT_ENV, git, make_project, run_nightcrew

# Nothing listens there: an agent started by mistake could not reach a model.
NO_SERVER = {"ANTHROPIC_BASE_URL": "http://127.0.0.1:9", "ANTHROPIC_API_KEY": "sk-ant-none"}


def runs(root: Path) -> list[str]:
    with sqlite3.connect(root / ".nightcrew" / "nightcrew.db") as conn:
        return [r[0] for r in conn.execute("SELECT id FROM runs")]


def test_build_dry_run_lists_the_ready_features_and_starts_nothing(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", "")
    env = {**os.environ, **GIT_ENV, **NO_SERVER}
    for args in (
        ("Subtraction", "-d", "calc.sub(a, b) returns a - b", "--accept", "python -c 'x=1'"),
        ("Multiplication", "--after", "1", "--accept", "true"),
    ):
        added = run_nightcrew(root, env, "backlog", "add", *args)
        assert added.returncode == 0, added.stderr

    result = run_nightcrew(root, env, "build", "--dry-run", "--show-prompt", "--model", "m-1")

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "feature #1 'Subtraction'" in out
    assert "  acceptance 1: `python -c 'x=1'`" in out
    assert "Multiplication" not in out.split("prompt (attempt 1)")[0]  # waits on #1: not ready
    assert "  gate clean:" in out
    assert "    | # Feature #1 " in out  # the prompt itself, with the feature's own text
    assert "calc.sub(a, b) returns a - b" in out
    assert "ready: 1 feature(s) ready to build" in out
    assert runs(root) == []
    assert git(root, "log", "--format=%s").splitlines() == ["initial"]
    assert git(root, "status", "--porcelain", "--", ".", ":!.nightcrew") == ""

    (root / "NOTES.md").write_text("mine\n")
    refused = run_nightcrew(root, env, "build", "--dry-run")

    assert refused.returncode == 2, refused.stdout + refused.stderr
    line = refused.stderr.strip()
    assert line.startswith("nightcrew: the working tree has uncommitted changes: NOTES.md")
    assert "\n" not in line and "--allow-dirty" in line
    assert runs(root) == []


def config(root: Path, text: str) -> None:
    (root / "nightcrew.toml").write_text(text)
    git(root, "add", "nightcrew.toml")
    git(root, "commit", "-q", "-m", "config")


def test_build_dry_run_shows_the_lanes_and_the_worktree_setup(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", "")
    env = {**os.environ, **GIT_ENV, **NO_SERVER}
    config(
        root,
        "parallel = 3\nport_base = 4000\n"
        "worktree_setup = ['cp \"$NIGHTCREW_PROJECT_ROOT/.env\" .env', 'no-such-tool-x install']\n",
    )
    added = run_nightcrew(root, env, "backlog", "add", "Sub", "--accept", "true")
    assert added.returncode == 0, added.stderr

    result = run_nightcrew(root, env, "build", "--dry-run")

    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "lanes: 6 for 3 agents (ports 4000-4009, 4010-4019, 4020-4029, 4030-4039, 4040-4049,"
        " 4050-4059)"
    ) in result.stdout
    assert '  1: `cp "$NIGHTCREW_PROJECT_ROOT/.env" .env`' in result.stdout
    assert "  2: `no-such-tool-x install`" in result.stdout
    assert result.stderr.strip() == (
        "warning: worktree_setup item 2: `no-such-tool-x` is not on PATH;"
        " the command may fail in the worktree"
    )

    config(root, "worktree_setup = ['npm ci', 'echo \"unclosed']\n")
    refused = run_nightcrew(root, env, "build", "--dry-run")

    assert refused.returncode == 2, refused.stdout + refused.stderr
    line = refused.stderr.strip()
    assert line.startswith("nightcrew: worktree_setup item 2: the shell cannot read it: ")
    assert "\n" not in line
    assert runs(root) == []
