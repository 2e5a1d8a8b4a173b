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
