"""``nightcrew run``'s options and the loop's user-visible behaviour, through the
real command line in-process (tests/unit/run_cli.py): real git, real pytest
gates, the real store; the agent is the fake backend, running the same Bash
the nightcrew.sim scenarios of tests/integration scripted.

Moved from tests/integration/test_run_options.py and test_run_messages.py:
none of them tests the Claude Code CLI's seam, only the loop."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.integration.support import (
    MODEL,
    add_function,
    git,
    make_project,
    plan_text,
)
from tests.unit.run_cli import Agent, Cli, MakeCli, Turns

pytestmark = pytest.mark.cli


def sub(n: int, total: int) -> Turns:
    return Turns(
        f"b{n}",
        [f"Batch {n} of {total}"],
        add_function(f"f{n}", str(n), f"calc.f{n}(0, 0) == {n}"),
    )


def attempts(root: Path) -> list[tuple[int, str, str | None]]:
    with sqlite3.connect(root / ".nightcrew" / "nightcrew.db") as conn:
        rows = conn.execute(
            "SELECT i.number, a.state, a.model FROM attempts a"
            " JOIN work_items i ON i.id = a.item_id ORDER BY a.id"
        ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> MakeCli:
    def make(root: Path, *turns: Turns) -> Cli:
        return Cli(root, Agent(*turns), monkeypatch, capsys)

    return make


def test_no_commit_leaves_changes_in_the_tree(tmp_path: Path, cli: MakeCli) -> None:
    root = make_project(tmp_path / "p", plan_text(["A", "B"]))
    run = cli(root, sub(1, 2), sub(2, 2))

    result = run("run", "PLAN.md", "--model", MODEL, "--no-commit")

    assert result.returncode == 0, result.stdout + result.stderr
    assert git(root, "log", "--format=%s").splitlines() == ["initial"]
    assert "def f1" in (root / "calc.py").read_text()
    assert "def f2" in (root / "calc.py").read_text()
    assert sorted(git(root, "status", "--porcelain").split()) == [
        "M",
        "M",
        "calc.py",
        "tests/test_calc.py",
    ]
    assert [b["commit"] for b in run.status()["batches"]] == [None, None]


def test_batch_range_then_resume_runs_only_what_is_left(tmp_path: Path, cli: MakeCli) -> None:
    root = make_project(tmp_path / "p", plan_text(["A", "B", "C"]))
    run = cli(root, sub(1, 3), sub(2, 3), sub(3, 3))

    first = run("run", "PLAN.md", "--model", MODEL, "--end-batch", "2")

    assert first.returncode == 0, first.stdout + first.stderr
    assert [b["state"] for b in run.status()["batches"]] == ["passed", "passed", "pending"]

    second = run("run", "PLAN.md", "--model", MODEL, "--resume")

    assert second.returncode == 0, second.stdout + second.stderr
    assert "batch 1 already passed" in second.stdout
    assert [n for n, _, _ in attempts(root)] == [1, 2, 3]  # 1 and 2 were not redone
    assert git(root, "log", "--format=%s").splitlines()[0] == "Batch 3: C"

    third = run("run", "PLAN.md", "--model", MODEL, "--resume")

    assert third.returncode == 0
    assert "nothing to resume" in third.stdout + third.stderr
    assert len(attempts(root)) == 3


def test_resume_reruns_a_passed_batch_whose_text_changed(tmp_path: Path, cli: MakeCli) -> None:
    root = make_project(tmp_path / "p", plan_text(["A", "B"]))
    run = cli(root, sub(1, 2), sub(2, 2))
    assert run("run", "PLAN.md", "--model", MODEL, "--end-batch", "1").returncode == 0
    plan = root / "PLAN.md"
    plan.write_text(plan.read_text().replace("### Task 1: A", "### Task 1: A, but better"))

    result = run("run", "PLAN.md", "--model", MODEL, "--resume")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "PLAN.md changed since run" in result.stdout
    assert "batch 1 passed before but its text changed: it runs again" in result.stdout
    assert [n for n, _, _ in attempts(root)] == [1, 1, 2]


def test_secrets_are_never_committed(tmp_path: Path, cli: MakeCli) -> None:
    root = make_project(tmp_path / "p", plan_text(["Config"]))
    leak = "printf 'API_KEY=sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123\\n' > .env"
    run = cli(root, Turns("leak", ["Batch 1 of 1"], leak))

    result = run("run", "PLAN.md", "--model", MODEL, "--max-retries", "0")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "refusing to commit .env" in result.stdout
    assert git(root, "log", "--format=%s").splitlines() == ["initial"]
    assert ".env" not in git(root, "ls-files")


def test_gates_from_config_and_command_line(tmp_path: Path, cli: MakeCli) -> None:
    root = make_project(tmp_path / "p", plan_text(["A"]))
    (root / "nightcrew.toml").write_text(
        f'model = "{MODEL}"\ngates = ["grep -q never-there calc.py"]\nmax_retries = 0\n'
    )
    git(root, "add", "nightcrew.toml")
    git(root, "commit", "-qm", "config")
    run = cli(root, sub(1, 1))

    failing = run("run", "PLAN.md")  # the config's gate fails

    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "gate 1: grep -q never-there calc.py: FAILED" in failing.stdout
    with sqlite3.connect(root / ".nightcrew" / "nightcrew.db") as conn:
        digest = conn.execute("SELECT digest FROM attempts").fetchone()[0]
    assert "grep -q never-there calc.py" in digest
    assert {r.model for r in run.agent.backend.requests} == {MODEL}  # the config's model

    passing = run("run", "PLAN.md", "--resume", "--gate", "grep -q f1 calc.py")

    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert run.status()["batches"][0]["state"] == "passed"


def test_empty_batch_is_skipped_with_a_warning(tmp_path: Path, cli: MakeCli) -> None:
    plan = "# Plan\n\n## Batch 1: Nothing here\n\n## Batch 2: Real\n\n### Task 1: do it\n"
    root = make_project(tmp_path / "p", plan)
    run = cli(root, sub(2, 2))

    result = run("run", "PLAN.md", "--model", MODEL)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "batch 1 is empty: skipped" in result.stdout
    assert [b["state"] for b in run.status()["batches"]] == ["skipped", "passed"]
    assert run.agent.answered == ["b2"]  # no tokens spent on the empty batch


def test_an_unwritable_usage_registry_costs_a_warning_not_the_run(
    tmp_path: Path,
    cli: MakeCli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = make_project(tmp_path / "p", plan_text(["A"]))
    run = cli(root, sub(1, 1))
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the user data dir should be\n")
    monkeypatch.setenv("NIGHTCREW_HOME", str(blocker))

    result = run("run", "PLAN.md", "--model", MODEL)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "could not add this project to the usage registry" in result.stdout
    assert git(root, "log", "--format=%s").splitlines()[0] == "Batch 1: A"
    assert blocker.read_text() == "a file where the user data dir should be\n"


def untested_project(root: Path, plan: str) -> Path:
    """A repository with no test runner nightcrew could detect."""
    root.mkdir(parents=True)
    (root / "README.md").write_text("notes\n")
    (root / "PLAN.md").write_text(plan)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def prompts(root: Path) -> list[str]:
    found = sorted((root / ".nightcrew" / "runs").glob("*/batch-1/attempt-*/prompt.txt"))
    return [p.read_text() for p in found]


def test_a_batch_that_changed_nothing_fails_and_the_retry_is_told_why(
    tmp_path: Path, cli: MakeCli
) -> None:
    root = untested_project(tmp_path / "p", "## Batch 1: Write notes\n\nAdd notes.txt.\n")
    run = cli(
        root,
        Turns("retry", ["Batch 1 of 1", "the agent changed nothing"], "echo hello > notes.txt"),
        # The first attempt only touches the plan, which is not a change.
        Turns("idle", ["Batch 1 of 1"], "echo '- [x] done' >> PLAN.md"),
    )

    result = run("run", "PLAN.md", "--model", MODEL)

    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "gate changes: FAILED — the agent changed nothing" in out
    data = run.status()
    assert data["batches"][0]["state"] == "passed"
    assert data["batches"][0]["attempts"] == 2
    assert run.agent.answered == ["idle", "retry"]
    first, second = prompts(root)
    assert "the agent changed nothing" not in first
    assert "the agent changed nothing" in second
    assert (root / "notes.txt").read_text() == "hello\n"


def test_a_no_change_ok_batch_passes_without_a_change(tmp_path: Path, cli: MakeCli) -> None:
    plan = "## Batch 1: Check the notes\n\nno-change-ok\n\nRead README.md.\n"
    root = untested_project(tmp_path / "p", plan)
    run = cli(root, Turns("idle", ["Batch 1 of 1"]))

    result = run("run", "PLAN.md", "--model", MODEL)

    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "gate changes" not in out
    assert [b["state"] for b in run.status()["batches"]] == ["passed"]


def test_with_a_gate_command_an_unchanged_batch_is_judged_by_the_gate(
    tmp_path: Path, cli: MakeCli
) -> None:
    root = untested_project(tmp_path / "p", "## Batch 1: Check\n\nLook.\n")
    run = cli(root, Turns("idle", ["Batch 1 of 1"]))

    result = run("run", "PLAN.md", "--model", MODEL, "--gate", "true")

    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "gate changes" not in out
    assert "tests: " not in out  # --gate replaces the tests gate: no detection line
    assert [b["state"] for b in run.status()["batches"]] == ["passed"]


def test_stuck_after_a_resume_names_the_attempts_as_the_log_and_status_do(
    tmp_path: Path,
    cli: MakeCli,
) -> None:
    root = untested_project(tmp_path / "p", "## Batch 1: Hard\n\nMake the gate pass.\n")
    run = cli(root, Turns("b1", ["Batch 1 of 1"], "echo x >> n.txt"))
    args = ("run", "PLAN.md", "--model", MODEL, "--gate", "echo never; exit 1")
    first = run(*args, "--on-failure", "stop")
    assert first.returncode != 0, first.stdout + first.stderr

    again = run(*args, "--resume")

    out = again.stdout + again.stderr
    assert "'Hard': attempt 2 with" in out
    assert "'Hard': attempt 3 with" in out
    assert "stuck: attempts 2 and 3 failed the same way" in out
    assert run.status()["batches"][0]["attempts"] == 3
