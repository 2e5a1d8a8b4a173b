"""What a run tells the person and the agent, on the real CLI and nightcrew.sim:
a batch that changed nothing, and the console's lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SimStarter
from tests.integration.support import (
    GIT_ENV,
    MODEL,
    USAGE_DONE,
    git,
    nightcrew_env,
    run_nightcrew,
    script,
    status,
    work_turns,
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


IDLE = [{"text": "Nothing needed doing.", "usage": dict(USAGE_DONE)}]


def prompts(root: Path) -> list[str]:
    found = sorted((root / ".nightcrew" / "runs").glob("*/batch-1/attempt-*/prompt.txt"))
    return [p.read_text() for p in found]


def test_a_batch_that_changed_nothing_fails_and_the_retry_is_told_why(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = untested_project(tmp_path / "p", "## Batch 1: Write notes\n\nAdd notes.txt.\n")
    _, sim = sim_env(
        {
            "scripts": [
                script(
                    "retry",
                    ["Batch 1 of 1", "the agent changed nothing"],
                    work_turns("echo hello > notes.txt"),
                ),
                # The first attempt only touches the plan, which is not a change.
                script("idle", ["Batch 1 of 1"], work_turns("echo '- [x] done' >> PLAN.md")),
            ]
        }
    )
    env = nightcrew_env(sim)

    result = run_nightcrew(root, env, "run", "PLAN.md", "--model", MODEL)

    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "gate changes: FAILED — the agent changed nothing" in out
    data = status(root, env)
    assert data["batches"][0]["state"] == "passed"
    assert data["batches"][0]["attempts"] == 2
    first, second = prompts(root)
    assert "the agent changed nothing" not in first
    assert "the agent changed nothing" in second
    assert (root / "notes.txt").read_text() == "hello\n"


def test_a_no_change_ok_batch_passes_without_a_change(tmp_path: Path, sim_env: SimStarter) -> None:
    plan = "## Batch 1: Check the notes\n\nno-change-ok\n\nRead README.md.\n"
    root = untested_project(tmp_path / "p", plan)
    _, sim = sim_env({"scripts": [script("idle", ["Batch 1 of 1"], IDLE)]})
    env = nightcrew_env(sim)

    result = run_nightcrew(root, env, "run", "PLAN.md", "--model", MODEL)

    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "gate changes" not in out
    assert [b["state"] for b in status(root, env)["batches"]] == ["passed"]


def test_with_a_gate_command_an_unchanged_batch_is_judged_by_the_gate(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = untested_project(tmp_path / "p", "## Batch 1: Check\n\nLook.\n")
    _, sim = sim_env({"scripts": [script("idle", ["Batch 1 of 1"], IDLE)]})
    env = {**nightcrew_env(sim), **GIT_ENV}

    result = run_nightcrew(root, env, "run", "PLAN.md", "--model", MODEL, "--gate", "true")

    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "gate changes" not in out
    assert "tests: " not in out  # --gate replaces the tests gate: no detection line


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


def test_stuck_after_a_resume_names_the_attempts_as_the_log_and_status_do(
    tmp_path: Path, sim_env: SimStarter
) -> None:
    root = untested_project(tmp_path / "p", "## Batch 1: Hard\n\nMake the gate pass.\n")
    _, sim = sim_env({"scripts": [script("b1", ["Batch 1 of 1"], work_turns("echo x >> n.txt"))]})
    env = nightcrew_env(sim)
    args = ("run", "PLAN.md", "--model", MODEL, "--gate", "echo never; exit 1")
    first = run_nightcrew(root, env, *args, "--on-failure", "stop")
    assert first.returncode != 0, first.stdout + first.stderr

    again = run_nightcrew(root, env, *args, "--resume")

    out = again.stdout + again.stderr
    assert "'Hard': attempt 2 with" in out
    assert "'Hard': attempt 3 with" in out
    assert "stuck: attempts 2 and 3 failed the same way" in out
    assert status(root, env)["batches"][0]["attempts"] == 3
