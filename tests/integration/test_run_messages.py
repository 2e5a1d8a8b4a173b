"""What a run's log shows of the agent's tool calls, on the real CLI and nightcrew.sim
(a refusal by Claude Code itself, a repeated call). The loop's messages (a batch
that changed nothing, no-change-ok, stuck) are tested in tests/unit/test_run_command.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SimStarter
from tests.integration.support import (
    MODEL,
    USAGE_DONE,
    git,
    nightcrew_env,
    run_nightcrew,
    script,
)

pytestmark = pytest.mark.cli


def untested_project(root: Path, plan: str) -> Path:
    """A repository with no test runner nightcrew could detect."""
    root.mkdir(parents=True)
    (root / "README.md").write_text("notes\n")
    (root / "PLAN.md").write_text(plan)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def test_the_log_shows_refused_tool_calls_and_repeated_ones(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = untested_project(tmp_path / "p", "## Batch 1: Notes\n\nAppend to notes.txt.\n")
    append = {"name": "Bash", "input": {"command": "echo hi >> notes.txt"}}
    write = {"name": "Write", "input": {"file_path": str(root / "README.md"), "content": "x"}}
    turns = [
        # README.md exists and was never read: Claude Code refuses to overwrite it.
        {
            "text": "Rewriting the readme.",
            "tool": write,
            "usage": dict(USAGE_DONE),
        },
        {"text": "Appending.", "tool": append, "usage": dict(USAGE_DONE)},
        {"text": "Appending again.", "tool": append, "usage": dict(USAGE_DONE)},
        {"text": "Done.", "usage": dict(USAGE_DONE)},
    ]
    _, sim = sim_env({"scripts": [script("work", ["Batch 1 of 1"], turns)]})
    env = nightcrew_env(sim)

    result = run_nightcrew(root, env, "run", "PLAN.md", "--model", MODEL)

    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert (root / "README.md").read_text() == "notes\n"
    assert "batch 1 › Write: README.md failed: " in out  # named from the project's root
    assert out.count("batch 1 › Bash: echo hi >> notes.txt") == 2
    assert (root / "notes.txt").read_text() == "hi\nhi\n"
